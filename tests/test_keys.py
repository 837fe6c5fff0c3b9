"""`facesketch keys`: secrets readable only by their owner, server and client secrets in separate folders
(pyzmq's public_keys/ private_keys/ layout), old key folders moved, `serve --curve KEYDIR` on the result."""
import os
import stat
import subprocess
import sys

import pytest
import zmq.auth

from facesketch_client import BackendUnreachable, Client, Image

from conftest import ROOT

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def keys_cli(keydir, client, env_dir, *extra):
    env = dict(os.environ, FACESKETCH_SETTINGS=str(env_dir / "settings.json"))
    proc = subprocess.run([sys.executable, "-m", "facesketch", "keys", "--dir", str(keydir), "--client", client,
                           *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: os.umask(0o022))  # a usual umask: the code, not it, makes secrets private
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, dict(line.strip().split(": ") for line in proc.stdout.splitlines() if line.startswith("  "))


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@posix_only
def test_secrets_are_private_and_apart(tmp_path):
    keydir = tmp_path / "keys"
    _, first = keys_cli(keydir, "laptop", tmp_path)
    _, second = keys_cli(keydir, "studio-pc", tmp_path)
    assert first["server_public_key"] == second["server_public_key"]  # the server pair is made once

    secrets = sorted(str(p.relative_to(keydir)) for p in keydir.rglob("*.key_secret"))
    assert secrets == ["client_keys/laptop/laptop.key_secret", "client_keys/studio-pc/studio-pc.key_secret",
                       "private_keys/server.key_secret"]
    for s in secrets:
        assert mode(keydir / s) == 0o600, s
        assert mode((keydir / s).parent) == 0o700, s
    assert mode(keydir / "client_keys") == 0o700
    # the allow-list holds public halves only, one per client
    assert sorted(os.listdir(keydir / "public_keys")) == ["laptop.key", "studio-pc.key"]
    public, secret = zmq.auth.load_certificate(str(keydir / "public_keys" / "laptop.key"))
    assert secret is None and public.decode() == first["client_public_key"]


@posix_only
def test_write_settings_keeps_the_secret_private(tmp_path):
    settings = tmp_path / "settings.json"
    settings.write_text("{}")
    os.chmod(settings, 0o644)  # an existing, world-readable settings file
    out, values = keys_cli(tmp_path / "keys", "laptop", tmp_path, "--write-settings")
    assert "wrote the keys into" in out
    assert mode(settings) == 0o600
    assert values["client_secret_key"] in settings.read_text()


def test_old_layout_is_refused_by_serve_and_moved_by_keys(tmp_path, make_backend):
    keydir = tmp_path / "old"
    (keydir / "clients").mkdir(parents=True)
    zmq.auth.create_certificates(str(keydir), "server")
    pub, sec = zmq.auth.create_certificates(str(keydir), "laptop")  # what earlier versions left behind
    os.replace(pub, keydir / "clients" / "laptop.key")
    env = dict(os.environ, FACESKETCH_SETTINGS=str(tmp_path / "s.json"), XDG_STATE_HOME=str(tmp_path / "state"))
    proc = subprocess.run([sys.executable, "-m", "facesketch", "serve", "--curve", str(keydir)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "earlier version" in proc.stderr and "facesketch keys --dir" in proc.stderr

    out, _ = keys_cli(keydir, "tablet", tmp_path)
    assert "moved the server's key pair" in out and "laptop" in out
    assert not list(keydir.glob("*.key_secret")) and not (keydir / "clients").exists()
    if os.name == "posix":
        assert mode(keydir / "private_keys" / "server.key_secret") == 0o600
        assert mode(keydir / "client_keys" / "laptop" / "laptop.key_secret") == 0o600
    assert sorted(os.listdir(keydir / "public_keys")) == ["laptop.key", "tablet.key"]

    # the moved keys still work: the old client gets in, a stranger does not
    b = make_backend(["--curve", str(keydir)])
    server_public, _ = zmq.auth.load_certificate(str(keydir / "private_keys" / "server.key"))
    laptop_public, laptop_secret = zmq.auth.load_certificate(
        str(keydir / "client_keys" / "laptop" / "laptop.key_secret"))
    with Client(b.address, server_public_key=server_public.decode(), client_public_key=laptop_public.decode(),
                client_secret_key=laptop_secret.decode()) as c:
        assert c.run("echo", {"image": Image(1, 1, "RGBA8", b"1234")})["image"].tobytes() == b"1234"
    stranger_public, stranger_secret = (k.decode() for k in zmq.curve_keypair())
    with Client(b.address, server_public_key=server_public.decode(), client_public_key=stranger_public,
                client_secret_key=stranger_secret) as c:
        with pytest.raises(BackendUnreachable):
            c.hello()


def test_client_name_must_be_plain(tmp_path):
    env = dict(os.environ, FACESKETCH_SETTINGS=str(tmp_path / "s.json"))
    for bad in ("../evil", "server"):
        proc = subprocess.run([sys.executable, "-m", "facesketch", "keys", "--dir", str(tmp_path / "k"), "--client",
                               bad], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "--client" in proc.stderr
