"""Every change the installer makes goes through Ops, so that --dry-run prints it instead."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Optional


class Ops:
    def __init__(self, dry_run: bool = False, verbose: bool = True, out=None):
        self.dry_run = dry_run
        self.verbose = verbose
        self.out = out or sys.stdout

    def say(self, msg: str) -> None:
        if self.verbose:
            print(msg, file=self.out, flush=True)

    def act(self, msg: str) -> bool:
        """Announce an action; True when it should really happen."""
        self.say(("[dry-run] would " if self.dry_run else "  ") + msg)
        return not self.dry_run

    def mkdir(self, path: str) -> None:
        if not os.path.isdir(path) and self.act(f"create folder {path}"):
            os.makedirs(path, exist_ok=True)

    def write_text(self, path: str, text: str, mode: Optional[int] = None) -> None:
        if self.act(f"write {path}"):
            atomic_write(path, text, mode)

    def remove(self, path: str, why: str = "") -> None:
        if not os.path.lexists(path):
            return
        if self.act(f"remove {path}" + (f"   ({why})" if why else "")):
            rm(path)

    def run(self, cmd: list, env: Optional[dict] = None, cwd: Optional[str] = None, what: str = "") -> int:
        shown = " ".join(quote(c) for c in cmd)
        if env:
            shown = " ".join(f"{k}={quote(v)}" for k, v in env.items()) + " " + shown
        if not self.act(f"run {shown}" + (f"   ({what})" if what else "")):
            return 0
        full_env = dict(os.environ)
        full_env.update(env or {})
        return subprocess.call(cmd, env=full_env, cwd=cwd)


def quote(s: str) -> str:
    return s if re.fullmatch(r"[\w@%+=:,./-]+", s or "x") else "'" + s.replace("'", "'\\''") + "'"


def atomic_write(path: str, text: str, mode: Optional[int] = None) -> None:
    """Write `text` (LF line endings) to a temporary file beside `path`, then rename it over `path`."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + "-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, mode if mode is not None else 0o644)
        os.replace(tmp, path)
    except BaseException:
        rm(tmp)
        raise


def rm(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)
