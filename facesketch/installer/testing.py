"""What `python3 install.py --test` adds after the ordinary setup (which it runs with
requirements-test.txt): the Debian packages the host tests use (tests/apt-packages.txt; only as root,
only with apt), then pytest in the backend venv. Not part of installing facesketch."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from . import REPO
from .ops import Ops

APT_PACKAGES = os.path.join(REPO, "tests", "apt-packages.txt")


def read_apt_packages(path: str = APT_PACKAGES) -> list:
    try:
        with open(path, encoding="utf-8") as fh:
            return [w for line in fh for w in line.split("#", 1)[0].split()]
    except FileNotFoundError:
        return []


def apt_install(ops: Ops, packages: list) -> None:
    """apt-get install -y the Debian packages not installed yet (only as root, only with apt)."""
    if not packages:
        return
    if not shutil.which("apt-get") or not shutil.which("dpkg-query"):
        ops.say(f"  no apt-get here; host tests needing {' '.join(packages)} will skip themselves")
        return
    missing = []
    for p in packages:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True)
        if "install ok installed" not in r.stdout:
            missing.append(p)
    if not missing:
        return
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        ops.say(f"  not root: not installing {' '.join(missing)} (host tests that need them will skip)")
        return
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends", *missing]
    if ops.run(cmd, env=env, what="Debian packages for the host tests") != 0:
        ops.run(["apt-get", "update"], env=env)
        if ops.run(cmd, env=env) != 0:
            ops.say(f"  apt-get could not install {' '.join(missing)}; host tests that need them will skip")


def run_pytest(ops: Ops, py: str, args: list) -> int:
    """pytest with `args` in the repo; no tests collected counts as a failure."""
    ops.say("==> Tests")
    rc = ops.run([py, "-m", "pytest", *args], cwd=REPO)
    if rc == 5:
        print("install.py: pytest collected no tests; that counts as a failure.", file=sys.stderr)
        return 1
    return rc


def run(ops: Ops, py: str, args: list, apt: bool = True) -> int:
    """The test step of install.py --test."""
    if apt:
        apt_install(ops, read_apt_packages())
    return run_pytest(ops, py, args)
