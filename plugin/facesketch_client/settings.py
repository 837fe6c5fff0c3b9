"""The one settings file that the GIMP plug-in, the Krita plug-in, the CLI and install.py share.

Pure standard library: this module runs inside the hosts' own Python, before pyzmq is importable.

Where the file lives (the environment variable FACESKETCH_SETTINGS overrides all of these):
  Linux    $XDG_CONFIG_HOME/facesketch/settings.json   (default ~/.config/facesketch/settings.json)
  macOS    ~/Library/Application Support/facesketch/settings.json
  Windows  %APPDATA%\\facesketch\\settings.json

It is plain JSON so that a person can edit it; keys this version does not know are ignored (and kept
when the file is saved again), and a file that cannot be read gives the defaults plus `load_warning`.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import tempfile
from typing import Any, Optional

ENV_PATH = "FACESKETCH_SETTINGS"
APP = "facesketch"
FILE_NAME = "settings.json"
DEFAULT_ADDRESS = "tcp://127.0.0.1:5557"
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclasses.dataclass
class Settings:
    address: str = DEFAULT_ADDRESS
    timeout_s: float = 120.0  # a whole request (upload, inference, download)
    connect_timeout_s: float = 2.0  # how long "is anybody there?" may take
    server_public_key: str = ""  # z85, 40 characters; empty = no CURVE encryption
    client_public_key: str = ""
    client_secret_key: str = ""
    autostart: bool = True  # start backend_command when nothing answers at a loopback address
    backend_command: list = dataclasses.field(default_factory=list)  # argv, written by install.py
    log_level: str = "info"
    # Set by load() when the file existed but could not be used; never written to the file.
    load_warning: str = dataclasses.field(default="", compare=False, repr=False)
    # Keys found in the file that this version does not know; written back unchanged by save().
    extra: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in _INTERNAL}
        d["backend_command"] = list(self.backend_command)
        return d


_INTERNAL = ("load_warning", "extra")
_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name not in _INTERNAL}


def _platform_kind(platform: Optional[str] = None) -> str:
    p = platform or sys.platform
    if p.startswith("win"):
        return "windows"
    if p == "darwin":
        return "macos"
    return "linux"


def config_dir(home: Optional[str] = None, platform: Optional[str] = None) -> str:
    """The user's folder for facesketch configuration.

    `home` treats another folder as the user's home (install.py --home, tests); the XDG/APPDATA
    variables of the real user are then ignored, since they point into the real home.
    """
    kind = _platform_kind(platform)
    h = home if home is not None else os.path.expanduser("~")
    if kind == "windows":
        base = (None if home is not None else os.environ.get("APPDATA")) or os.path.join(h, "AppData", "Roaming")
        return os.path.join(base, APP)
    if kind == "macos":
        return os.path.join(h, "Library", "Application Support", APP)
    base = (None if home is not None else os.environ.get("XDG_CONFIG_HOME")) or os.path.join(h, ".config")
    return os.path.join(base, APP)


def path(home: Optional[str] = None, platform: Optional[str] = None) -> str:
    """Where the settings file is (it may not exist yet)."""
    env = os.environ.get(ENV_PATH)
    if env:
        return os.path.abspath(os.path.expanduser(env))
    return os.path.join(config_dir(home, platform), FILE_NAME)


def state_dir(home: Optional[str] = None, platform: Optional[str] = None) -> str:
    """The user's folder for logs and other state (not created here)."""
    kind = _platform_kind(platform)
    h = home if home is not None else os.path.expanduser("~")
    if kind == "windows":
        base = (None if home is not None else os.environ.get("LOCALAPPDATA")) or os.path.join(h, "AppData", "Local")
        return os.path.join(base, APP)
    if kind == "macos":
        return os.path.join(h, "Library", "Logs", APP)
    base = (None if home is not None else os.environ.get("XDG_STATE_HOME")) or os.path.join(h, ".local", "state")
    return os.path.join(base, APP)


_default_path = path  # load() and save() take a `path` argument that hides the function


class SettingsError(ValueError):
    """Settings that cannot be saved or used, said in words a plug-in can show as they are."""


_HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?)*$")


def address_problem(address) -> str:
    """"" when `address` is a ZeroMQ endpoint a client can connect to (tcp://HOST:PORT, ipc://PATH,
    inproc://NAME); else one sentence saying what is wrong and how to write it.

    The one check for backend addresses: settings are checked with it when loaded and saved, and every
    client checks its address with it before touching a socket (ZeroMQ's own error is a bare 'Invalid
    argument')."""
    example = f"for example {DEFAULT_ADDRESS}"
    if not isinstance(address, str) or not address.strip():
        return f"The backend address is empty: write it as tcp://HOST:PORT, {example}."
    a = address.strip()
    scheme, sep, rest = a.partition("://")
    if not sep:
        if re.match(r"^[^/\s]+:\d+$", a):
            return f"The backend address '{a}' lacks its transport: write it as tcp://{a}."
        return f"The backend address '{a}' is not a ZeroMQ address: write it as tcp://HOST:PORT, {example}."
    if scheme in ("ipc", "inproc"):
        return "" if rest.strip() else f"The backend address '{a}' names no {scheme} endpoint after {scheme}://."
    if scheme != "tcp":
        return (f"The backend address '{a}' uses the transport '{scheme}', which the facesketch backend does not "
                f"speak: write it as tcp://HOST:PORT, {example}.")
    host, colon, port = rest.rpartition(":")
    if not colon or not host:
        return f"The backend address '{a}' has no port: write it as tcp://HOST:PORT, {example}."
    if not port.isdigit() or not 0 < int(port) < 65536:
        return f"The backend address '{a}' has the port '{port}': a port is a number from 1 to 65535."
    if host.startswith("["):
        ok = host.endswith("]") and re.match(r"^[0-9A-Fa-f:.]+$", host[1:-1] or "-") is not None
    else:
        ok = _HOST_NAME.match(host) is not None
    if not ok:
        hint = f" (an IPv6 address goes in brackets: tcp://[{host}]:{port})" if ":" in host else ""
        return f"The backend address '{a}' has the host '{host}', which is not a computer name or IP address{hint}."
    return ""


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Return `value` converted to the field's type, or raise ValueError saying why not."""
    if name == "backend_command":
        if isinstance(value, str):  # a hand-edited single string: split like a shell would, roughly
            return value.split()
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ValueError("must be a list of strings")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.strip().lower() in ("true", "yes", "1")
        raise ValueError("must be true or false")
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError("must be a number")
        v = float(value)
        if not v > 0:
            raise ValueError("must be a positive number")
        return v
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if name == "address":
            problem = address_problem(value)
            if problem:
                raise ValueError(f"is not valid ({problem})")
            return value.strip()
        if name == "log_level":
            v = value.strip().lower()
            if v not in LOG_LEVELS:
                raise ValueError("must be one of " + ", ".join(LOG_LEVELS))
            return v
        return value.strip()
    return value


def from_dict(data: dict) -> Settings:
    """Settings from a dict; bad values fall back to their defaults and are listed in load_warning."""
    s = Settings()
    problems = []
    for key, value in data.items():
        f = _FIELDS.get(key)
        if f is None:
            s.extra[key] = value
            continue
        try:
            setattr(s, key, _coerce(key, value, getattr(s, key)))
        except (ValueError, TypeError) as e:
            problems.append(f"{key} {e}")
    if problems:
        s.load_warning = "Some settings were ignored and set to their defaults: " + "; ".join(problems) + "."
    return s


def load(path: Optional[str] = None) -> Settings:
    """Read the settings file. A missing file gives the defaults; an unreadable one gives the
    defaults with `load_warning` set to a sentence the plug-ins can show."""
    p = path or _default_path()
    try:
        with open(p, "r", encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return Settings()
    except OSError as e:
        s = Settings()
        s.load_warning = f"The settings file {p} could not be read ({e.strerror or e}); using the defaults."
        return s
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError as e:
        s = Settings()
        s.load_warning = (f"The settings file {p} could not be read (it is not valid JSON: {e}); "
                          "using the defaults. Saving the settings will replace it.")
        return s
    if not isinstance(data, dict):
        s = Settings()
        s.load_warning = f"The settings file {p} could not be read (it does not hold a JSON object); using the defaults."
        return s
    return from_dict(data)


def _file_mode(settings: Settings, p: str) -> int:
    """0600 for a file holding a secret key, whoever writes it and whatever mode the old file had; otherwise
    the old file's mode (the user's choice), 0644 for a new one."""
    if settings.client_secret_key:
        return 0o600
    try:
        return os.stat(p).st_mode & 0o777
    except OSError:
        return 0o644


def save(settings: Settings, path: Optional[str] = None) -> str:
    """Write the settings atomically (a temporary file in the same folder, then os.replace), so a
    crash or a second writer never leaves half a file. Returns the path written."""
    p = path or _default_path()
    problem = address_problem(settings.address)
    if problem:
        raise SettingsError(problem + " The settings were not saved.")
    folder = os.path.dirname(os.path.abspath(p))
    os.makedirs(folder, exist_ok=True)
    data = dict(settings.extra)
    data.update(settings.to_dict())
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".settings-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode(settings, p))
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return p
