"""The settings file the plug-ins and the CLI share (rules in facesketch_client/settings.py): the
installer creates it and keeps its backend_command pointing at this checkout's venv."""
from __future__ import annotations

import os
import re
from typing import Optional

from . import client_module
from .ops import Ops
from .venv import venv_script

fs_settings = client_module("settings")


def path(home: Optional[str] = None) -> str:
    return fs_settings.path(home=os.path.abspath(home) if home else None)


def default_backend_command(venv: str) -> list:
    """What auto-start runs: the venv's console script, [<venv>/bin/facesketch, "serve"]."""
    return [venv_script(venv), "serve"]


def installer_written(cmd: list) -> Optional[list]:
    """The arguments after `serve` when `cmd` has the form an install wrote: this one's
    `<venv>/bin/facesketch serve ...`, or an earlier one's `<python> -m backend serve ...` or
    `<python> -m facesketch serve ...`. None for a command of the user's own."""
    exe = os.path.basename(cmd[0]).lower() if cmd else ""
    if exe in ("facesketch", "facesketch.exe") and cmd[1:2] == ["serve"]:
        return cmd[2:]
    if re.fullmatch(r"python[\d.]*(\.exe)?", exe) and len(cmd) >= 4 and cmd[1] == "-m" \
            and cmd[2] in ("backend", "facesketch") and cmd[3] == "serve":
        return cmd[4:]
    return None


def write_default_settings(ops: Ops, settings_path: str, venv: str, create_only: bool = False) -> None:
    """Create the settings file; in an existing one, point a backend_command an install wrote at this
    venv's `facesketch serve` (keeping arguments the user added). A command of the user's own, and every
    other value, is kept. `create_only` (install.py --test) leaves an existing file exactly as it is."""
    cmd = default_backend_command(venv)
    exists = os.path.exists(settings_path)
    if exists and create_only:
        ops.say(f"==> Settings {settings_path}: kept as they are (--test only creates a missing file)")
        return
    s = fs_settings.load(settings_path)
    if exists and s.load_warning:
        ops.say(f"==> Settings {settings_path}: {s.load_warning} Leaving it alone; fix or delete it.")
        return
    before = list(s.backend_command)
    extra = installer_written(before)
    if not before:
        s.backend_command = cmd
    elif extra is not None:
        s.backend_command = cmd + extra
    if exists and s.backend_command == before:
        ops.say(f"==> Settings {settings_path}: kept as they are")
        return
    ops.say(f"==> Settings {settings_path}: " + ("backend_command updated" if exists else "new file"))
    if ops.act(f"write {settings_path} (backend_command = {' '.join(s.backend_command)})"):
        fs_settings.save(s, settings_path)
