"""A Debian trixie chroot with GIMP 3 in it, built once per machine and cached.

Why a chroot: the machine runs Debian bookworm, whose GIMP is 2.10; trixie ships GIMP 3.0.x with the
Python (PyGObject) plug-in support we target. The recipe follows ../shared/hosts/gimp. Our own plug-in
dependencies (pyzmq, msgpack) are deliberately NOT installed from Debian: install.py must vendor them.

Usage (root only):
    root = ensure_chroot()            # builds or reuses /var/cache/facesketch/gimp-chroot
    with mounted(root): run_in_chroot(root, [...])
    python tests/gimp_host/chroot.py  # build/refresh the cache from the command line
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time

CACHE_DIR = os.environ.get("FACESKETCH_GIMP_CHROOT", "/var/cache/facesketch/gimp-chroot")
MIRROR = "http://deb.debian.org/debian"
SUITE = "trixie"
# gimp + Python plug-in support; xvfb, xauth, x11-apps (xwd), x11-utils (xwininfo) for the dialog screenshot;
# fonts so the dialog has text.
PACKAGES = ["gimp", "python3-gi", "gir1.2-gimp-3.0", "xvfb", "xauth", "x11-apps", "x11-utils", "fonts-dejavu-core"]
# Change this when the recipe changes: a cached chroot with another stamp is rebuilt.
RECIPE = f"v1 {SUITE} " + " ".join(PACKAGES)
STAMP = "facesketch-chroot.stamp"


class ChrootUnavailable(RuntimeError):
    """This machine can't build the chroot (not root, no debootstrap, no network to the mirror)."""


def _log(msg: str) -> None:
    print(f"[gimp-chroot] {msg}", file=sys.stderr, flush=True)


def _mounts_under(root: str) -> list[str]:
    root = os.path.realpath(root)
    found = []
    with open("/proc/self/mounts") as f:
        for line in f:
            target = line.split()[1].replace("\\040", " ")
            if target == root or target.startswith(root + "/"):
                found.append(target)
    return sorted(found, key=len, reverse=True)


def unmount_all(root: str) -> None:
    for target in _mounts_under(root):
        subprocess.run(["umount", "-l", target], check=False)


def _is_healthy(root: str) -> bool:
    try:
        with open(os.path.join(root, STAMP)) as f:
            if f.read().strip() != RECIPE:
                return False
    except OSError:
        return False
    for rel in ("usr/bin/gimp-console-3.0", "usr/bin/python3", "usr/bin/Xvfb", "usr/bin/xwd", "usr/bin/xwininfo"):
        if not os.path.exists(os.path.join(root, rel)):
            return False
    return True


def _remove_tree(root: str) -> None:
    unmount_all(root)
    if _mounts_under(root):
        raise RuntimeError(f"refusing to delete {root}: something is still mounted under it")
    shutil.rmtree(root, ignore_errors=True)


def _sh(cmd: list[str], log: str, **kw) -> None:
    """Run a build step with its output in the build log (printed in part only when it fails)."""
    _log("$ " + " ".join(cmd))
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT, **kw)


def _tail(log: str, n: int = 15) -> str:
    try:
        with open(log, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def _build(root: str) -> None:
    if os.geteuid() != 0:
        raise ChrootUnavailable("building the GIMP chroot needs root (debootstrap, chroot, mount)")
    if shutil.which("debootstrap") is None:
        _log("installing debootstrap on the host")
        # other tools may hold the dpkg lock for a while: wait for it instead of failing
        install = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends", "debootstrap"]
        r = subprocess.run(install)
        if r.returncode != 0:
            subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "update"], check=False)
            r = subprocess.run(install)
        if r.returncode != 0 or shutil.which("debootstrap") is None:
            raise ChrootUnavailable("debootstrap is not installed and apt-get could not install it")
    tmp = root + ".building"
    log = root + ".build.log"
    if os.path.exists(tmp):
        _remove_tree(tmp)
    os.makedirs(os.path.dirname(root), exist_ok=True)
    with open(log, "w"):
        pass
    t0 = time.time()
    try:
        _sh(["debootstrap", "--variant=minbase", SUITE, tmp, MIRROR], log)
    except subprocess.CalledProcessError as e:
        _remove_tree(tmp)
        raise ChrootUnavailable(f"debootstrap of Debian {SUITE} from {MIRROR} failed (exit {e.returncode}; "
                                f"no network to the mirror?); last lines of {log}:\n{_tail(log)}")
    _log(f"debootstrap done in {time.time() - t0:.0f} s")
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
    try:
        with mounted(tmp):
            try:
                _sh(["chroot", tmp, "apt-get", "update"], log, env=env)
            except subprocess.CalledProcessError as e:
                raise ChrootUnavailable(f"apt-get update inside the {SUITE} chroot failed (exit {e.returncode}; "
                                        f"no network to the mirror?); last lines of {log}:\n{_tail(log)}")
            install = ["chroot", tmp, "apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
            try:
                _sh(install, log, env=env)
            except subprocess.CalledProcessError:
                _log("apt-get install failed; retrying once")
                _sh(install, log, env=env)
            _sh(["chroot", tmp, "apt-get", "clean"], log, env=env)
    except subprocess.CalledProcessError as e:
        _remove_tree(tmp)
        # not a skip: the mirror answered, so the recipe itself is broken
        raise RuntimeError(f"installing GIMP inside the {SUITE} chroot failed (exit {e.returncode}); "
                           f"last lines of {log}:\n{_tail(log)}")
    except ChrootUnavailable:
        _remove_tree(tmp)
        raise
    with open(os.path.join(tmp, STAMP), "w") as f:
        f.write(RECIPE + "\n")
    if os.path.exists(root):
        _remove_tree(root)
    os.rename(tmp, root)
    _log(f"chroot ready at {root} in {time.time() - t0:.0f} s (build log: {log})")


@contextlib.contextmanager
def _lock(root: str):
    os.makedirs(os.path.dirname(root), exist_ok=True)
    with open(root + ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_chroot(root: str = CACHE_DIR) -> str:
    """Return the path of a healthy GIMP chroot, building it (a few minutes) when missing or stale."""
    with _lock(root):
        if not _is_healthy(root):
            if os.path.exists(root):
                _log(f"cached chroot at {root} is stale or broken: rebuilding")
                _remove_tree(root)
            _build(root)
    return root


@contextlib.contextmanager
def mounted(root: str):
    """/proc and a /dev/shm tmpfs inside the chroot for the duration (GLib and Python's multiprocessing use them)."""
    done = []
    try:
        for target, args in (("proc", ["-t", "proc", "proc"]), ("dev/shm", ["-t", "tmpfs", "-o", "size=256m", "shm"])):
            path = os.path.join(root, target)
            os.makedirs(path, exist_ok=True)
            if not os.path.ismount(path):
                subprocess.run(["mount", *args, path], check=True)
                done.append(path)
        yield root
    finally:
        for path in reversed(done):
            subprocess.run(["umount", "-l", path], check=False)


def chroot_cmd(root: str, argv: list[str], env: dict[str, str]) -> list[str]:
    """argv for running `argv` inside the chroot with exactly `env` (plus a sane PATH)."""
    full = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"}
    full.update(env)
    return ["chroot", root, "env", "-i", *[f"{k}={v}" for k, v in full.items()], *argv]


if __name__ == "__main__":
    t = time.time()
    print(ensure_chroot(), f"({time.time() - t:.0f} s)")
