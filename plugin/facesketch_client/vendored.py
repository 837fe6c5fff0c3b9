"""Find the pyzmq/msgpack wheels that install.py unpacked for this host's own Python.

Pure standard library: it runs inside GIMP's and Krita's Python before anything else is importable.
Each plug-in calls `load(<its folder>)` once at start; nothing here runs at import time.
Hosts bring their own Python without pip (Krita, GIMP on Windows/macOS) or a system Python we must
not touch, so install.py downloads binary wheels for the host's Python version and platform and
unpacks each into `<plugin_dir>/_vendor/<tag>/`. The tag names the interpreter and platform:

    cp311-linux_x86_64    cp312-win_amd64    cp313-macosx_arm64    cp313t-linux_aarch64 (free-threaded)

install.py builds the same names with `tag_for(...)` from this module, so the two never drift.
"""
from __future__ import annotations

import os
import platform as _platform
import sys
import sysconfig
from typing import Optional

VENDOR_DIR = "_vendor"
SUPPORTED_VERSIONS = ("3.10", "3.11", "3.12", "3.13")  # what hosts ship today; install.py vendors these when unsure


def platform_key(sys_platform: Optional[str] = None, machine: Optional[str] = None) -> str:
    """'linux_x86_64', 'linux_aarch64', 'win_amd64', 'win_arm64', 'win32', 'macosx_arm64', 'macosx_x86_64'
    for the running interpreter, or for the given sys.platform value and machine name."""
    sp = sys_platform or sys.platform
    if sp.startswith("win"):
        m = (machine or sysconfig.get_platform()).lower()  # 'win-amd64', 'win32', 'win-arm64'
        if "arm64" in m or "aarch64" in m:
            return "win_arm64"
        if "amd64" in m or "x86_64" in m or "x64" in m:
            return "win_amd64"
        return "win32"
    if sp == "darwin":
        m = (machine or _platform.machine() or "x86_64").lower()  # the running arch, also under universal2
        return "macosx_" + ("arm64" if m in ("arm64", "aarch64") else "x86_64")
    if machine is None:
        # sysconfig says what the interpreter was built for (a 32-bit Python on a 64-bit kernel)
        plat = sysconfig.get_platform()  # 'linux-x86_64'
        machine = plat.split("-", 1)[1] if plat.startswith("linux-") else _platform.machine()
    m = machine.lower()
    m = {"amd64": "x86_64", "arm64": "aarch64", "i386": "i686"}.get(m, m)
    return "linux_" + m


def tag_for(version: str, plat_key: str, free_threaded: bool = False) -> str:
    """The vendor folder name for Python `version` ('3.11') on `plat_key` (see platform_key)."""
    major, minor = version.split(".")[:2]
    return f"cp{major}{minor}{'t' if free_threaded else ''}-{plat_key}"


def current_tag() -> str:
    """The vendor folder name for the interpreter running this code."""
    ft = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    return tag_for(f"{sys.version_info[0]}.{sys.version_info[1]}", platform_key(), ft)


def vendor_path(plugin_dir: str) -> str:
    """Where this interpreter's wheels would be inside `plugin_dir` (it may not exist)."""
    return os.path.join(plugin_dir, VENDOR_DIR, current_tag())


def add_vendored_wheels(plugin_dir: str) -> Optional[str]:
    """Put `<plugin_dir>/_vendor/<tag for this interpreter>` first on sys.path, if it exists.

    Returns the folder added (or already present), or None when there is none for this Python;
    then the host's own pyzmq/msgpack, if any, are used."""
    folder = vendor_path(os.path.abspath(plugin_dir))
    if not os.path.isdir(folder):
        return None
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)
    return folder


def load(plugin_dir: str) -> Optional[str]:
    """The one call a host plug-in makes at start, before it imports anything else of the client.

    Puts this interpreter's vendored wheels on sys.path (see add_vendored_wheels) and checks that pyzmq
    and msgpack import; when they don't, raises ImportError with a sentence the user can act on (Krita
    shows it as the plug-in's tooltip, GIMP in its error console). Returns the folder added, or None when
    the host's own packages are used."""
    folder = add_vendored_wheels(plugin_dir)
    try:
        import msgpack  # noqa: F401
        import zmq  # noqa: F401
    except ImportError as exc:
        raise ImportError(missing_dependency_message(plugin_dir, exc.name or "pyzmq")) from exc
    return folder


def available_tags(plugin_dir: str) -> list:
    """The vendor folders install.py put into `plugin_dir`, sorted."""
    root = os.path.join(plugin_dir, VENDOR_DIR)
    try:
        return sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)))
    except OSError:
        return []


def missing_dependency_message(plugin_dir: Optional[str] = None, missing: str = "pyzmq") -> str:
    """A sentence for the user when pyzmq or msgpack cannot be imported in the host's Python."""
    v = f"{sys.version_info[0]}.{sys.version_info[1]}"
    msg = (f"Face sketch needs the {missing} package, which is missing for this program's Python {v} "
           f"({current_tag()}). Re-run `python3 install.py` in the facesketch folder (with the program "
           f"closed), then restart the program.")
    if plugin_dir is not None:
        tags = available_tags(plugin_dir)
        if tags:
            msg += f" Installed for: {', '.join(tags)}; if the program's Python was not detected, run " \
                   f"`python3 install.py --host-python {v}`."
        else:
            msg += " No bundled packages were found next to the plug-in."
    return msg
