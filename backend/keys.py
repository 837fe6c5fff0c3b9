"""CURVE key folders for a backend reachable over the network (`facesketch keys`, `serve --curve KEYDIR`).

The layout follows pyzmq's own certificate example (zmq.auth, examples/security): public halves and
secret halves never share a folder, and the server's secret never sits next to a client's.

    KEYDIR/public_keys/NAME.key               the allow-list: one public key per client the backend lets in
    KEYDIR/private_keys/server.key_secret     the backend's key pair (and server.key, its public half)
    KEYDIR/client_keys/NAME/NAME.key_secret   a client's key pair, to copy to that artist's machine (or into
                                              its settings with --write-settings) and then delete here

Every folder holding a secret is 0700 and every secret file 0600 (on POSIX); the allow-list is public.
A KEYDIR in the layout of earlier versions (server.key_secret at the top, the allow-list in clients/) is
moved into this one by `facesketch keys --dir KEYDIR`; `serve` refuses it with a sentence saying so.
"""
from __future__ import annotations

import glob
import os
import shutil

PUBLIC_DIR = "public_keys"
PRIVATE_DIR = "private_keys"
CLIENTS_DIR = "client_keys"
SERVER = "server"


class KeyDirError(Exception):
    """A key folder problem, in words (the CLI prints it)."""


def secure_dir(path: str) -> str:
    os.makedirs(path, mode=0o700, exist_ok=True)
    if os.name == "posix":
        os.chmod(path, 0o700)
    return path


def secure_file(path: str) -> None:
    if os.name == "posix":
        os.chmod(path, 0o600)


def _new_pair(folder: str, name: str) -> tuple[str, str]:
    """A key pair made inside a 0700 folder, the secret tightened to 0600 at once: nobody else can read it
    even for the moment between writing and chmod."""
    import zmq.auth

    secure_dir(folder)
    public_file, secret_file = zmq.auth.create_certificates(folder, name)
    secure_file(secret_file)
    return public_file, secret_file


def server_secret_file(keydir: str) -> str:
    return os.path.join(keydir, PRIVATE_DIR, f"{SERVER}.key_secret")


def old_layout(keydir: str) -> bool:
    return os.path.isfile(os.path.join(keydir, f"{SERVER}.key_secret"))


def migrate(keydir: str) -> list[str]:
    """Move an earlier version's KEYDIR into the layout above; returns what was moved, in words."""
    moved = []
    if not old_layout(keydir):
        return moved
    private = secure_dir(os.path.join(keydir, PRIVATE_DIR))
    for suffix in (".key_secret", ".key"):
        src = os.path.join(keydir, SERVER + suffix)
        if os.path.isfile(src):
            os.replace(src, os.path.join(private, SERVER + suffix))
    secure_file(server_secret_file(keydir))
    moved.append(f"the server's key pair -> {private}")
    public = os.path.join(keydir, PUBLIC_DIR)
    os.makedirs(public, exist_ok=True)
    old_allow = os.path.join(keydir, "clients")
    for src in sorted(glob.glob(os.path.join(old_allow, "*.key"))):
        os.replace(src, os.path.join(public, os.path.basename(src)))
        moved.append(f"allow-list entry {os.path.basename(src)} -> {public}")
    if os.path.isdir(old_allow) and not os.listdir(old_allow):
        os.rmdir(old_allow)
    for secret in sorted(glob.glob(os.path.join(keydir, "*.key_secret"))):
        name = os.path.basename(secret)[: -len(".key_secret")]
        folder = secure_dir(os.path.join(keydir, CLIENTS_DIR, name))
        os.replace(secret, os.path.join(folder, os.path.basename(secret)))
        secure_file(os.path.join(folder, os.path.basename(secret)))
        public_file = os.path.join(keydir, name + ".key")
        if os.path.isfile(public_file):
            os.replace(public_file, os.path.join(folder, name + ".key"))
        moved.append(f"client {name}'s key pair -> {folder}")
    return moved


def make(keydir: str, client: str) -> dict:
    """Make the server's key pair (once) and a key pair for `client`, and put the client on the allow-list.

    Returns {"server_public_key", "client_public_key", "client_secret_key", "client_dir"}."""
    import zmq.auth

    if not client or os.sep in client or (os.altsep and os.altsep in client) or client in (".", ".."):
        raise KeyDirError(f"--client {client!r}: give a plain name (no folders)")
    if client == SERVER:
        raise KeyDirError("--client server: that name is the backend's own key; choose another")
    os.makedirs(keydir, exist_ok=True)
    migrate(keydir)
    private = os.path.join(keydir, PRIVATE_DIR)
    if not os.path.isfile(server_secret_file(keydir)):
        _new_pair(private, SERVER)
    secure_dir(private)
    secure_file(server_secret_file(keydir))
    client_dir = os.path.join(keydir, CLIENTS_DIR, client)
    secure_dir(os.path.join(keydir, CLIENTS_DIR))
    public_file, secret_file = _new_pair(client_dir, client)
    public = os.path.join(keydir, PUBLIC_DIR)
    os.makedirs(public, exist_ok=True)
    shutil.copyfile(public_file, os.path.join(public, os.path.basename(public_file)))
    server_public, _ = zmq.auth.load_certificate(server_secret_file(keydir))
    client_public, client_secret = zmq.auth.load_certificate(secret_file)
    return {"server_public_key": server_public.decode(), "client_public_key": client_public.decode(),
            "client_secret_key": client_secret.decode(), "client_dir": client_dir}


def load_server(keydir: str) -> tuple[bytes, bytes, str, list[str]]:
    """(server public, server secret, allow-list folder, warnings) for `serve --curve KEYDIR`."""
    import zmq.auth

    if old_layout(keydir):
        raise KeyDirError(f"--curve {keydir}: these keys are in the layout of an earlier version (the server's "
                        "secret key next to the clients' keys); move them once with: facesketch keys --dir "
                        f"{keydir}  (it also makes one more client key pair, which you may delete)")
    secret_file = server_secret_file(keydir)
    public = os.path.join(keydir, PUBLIC_DIR)
    if not os.path.isfile(secret_file) or not os.path.isdir(public):
        raise KeyDirError(f"--curve {keydir}: expected {PRIVATE_DIR}/{SERVER}.key_secret and a {PUBLIC_DIR}/ "
                        f"allow-list there; make them with: facesketch keys --dir {keydir}")
    warnings = []
    if os.name == "posix" and os.stat(secret_file).st_mode & 0o077:
        warnings.append(f"{secret_file} can be read by other users of this computer: chmod 600 it "
                        f"(and chmod 700 {os.path.dirname(secret_file)})")
    server_public, server_secret = zmq.auth.load_certificate(secret_file)
    if server_secret is None:
        raise KeyDirError(f"--curve {keydir}: {secret_file} holds no secret key")
    return server_public, server_secret, public, warnings
