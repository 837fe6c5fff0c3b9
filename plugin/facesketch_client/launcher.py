"""Start and stop the local backend that install.py set up, for the plug-ins' auto-start option.

The backend runs detached from the host (a GIMP filter is a short-lived process; the backend keeps
its model loaded for the next call). Its pid goes to the state folder so either host can stop it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from . import settings as fs_settings
from .client import BackendError, Client
from .protocol import ErrorCode, is_loopback


def _pid_file() -> str:
    return os.path.join(fs_settings.state_dir(), "backend.pid")


def _log_file() -> str:
    return os.path.join(fs_settings.state_dir(), "backend-autostart.log")


def answers(settings, timeout_s: float = 2.0) -> dict | None:
    """The backend's hello if one answers at settings.address within timeout_s, else None."""
    client = Client.from_settings(settings, connect_timeout_s=timeout_s)
    try:
        return client.hello(timeout=timeout_s + 3)
    except BackendError:
        return None
    finally:
        client.close()


class BackendProcess:
    def __init__(self, popen: subprocess.Popen):
        self.popen = popen
        self.pid = popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        _terminate(self.popen.pid, self.popen, timeout_s)


def start_backend(settings) -> BackendProcess:
    """Start settings.backend_command listening on settings.address; does not wait for it."""
    if not settings.backend_command:
        raise BackendError(ErrorCode.UNREACHABLE, "no local backend is set up: run python3 install.py first")
    if not is_loopback(settings.address):
        raise BackendError(ErrorCode.UNREACHABLE,
                           f"auto-start only starts a backend on this computer, and {settings.address} is not local")
    os.makedirs(fs_settings.state_dir(), exist_ok=True)
    argv = list(settings.backend_command) + ["--bind", settings.address, "--log-level", settings.log_level]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    kwargs = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = 0x08000000 | 0x00000200  # CREATE_NO_WINDOW | CREATE_NEW_PROCESS_GROUP
    else:
        kwargs["start_new_session"] = True  # not killed with GIMP's short-lived plug-in process
    with open(_log_file(), "ab") as log:
        try:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     close_fds=True, **kwargs)
        except OSError as exc:
            raise BackendError(ErrorCode.UNREACHABLE,
                               f"could not start the local backend ({argv[0]}: {exc.strerror}); "
                               "re-run python3 install.py") from exc
    with open(_pid_file(), "w") as f:
        f.write(str(popen.pid))
    return BackendProcess(popen)


def ensure_backend(settings, wait_s: float = 60.0) -> BackendProcess | None:
    """Make sure a backend answers at settings.address.

    Returns None if one already answers (or auto-start is off: the caller's next request then
    reports "not reachable"), or the handle of the backend it started once that one answers.
    Raises BackendError with the backend's own last words if it exits before answering.
    """
    if answers(settings, timeout_s=min(settings.connect_timeout_s, 2.0)) is not None:
        return None
    if not settings.autostart or not settings.backend_command or not is_loopback(settings.address):
        return None
    proc = start_backend(settings)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if not proc.running():
            raise BackendError(ErrorCode.UNREACHABLE,
                               f"the local backend stopped while starting: {_tail(_log_file())} "
                               f"(full log: {_log_file()})")
        if answers(settings, timeout_s=1.0) is not None:
            return proc
    proc.stop()
    raise BackendError(ErrorCode.UNREACHABLE,
                       f"the local backend did not answer within {wait_s:g} s (log: {_log_file()})")


def stop_local_backend(timeout_s: float = 10.0) -> bool:
    """Stop the backend that auto-start launched (from any process); True if one was stopped."""
    try:
        with open(_pid_file()) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return False
    os.remove(_pid_file())
    return _terminate(pid, None, timeout_s)


def _terminate(pid: int, popen, timeout_s: float) -> bool:
    try:
        os.kill(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError, OSError):
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if popen is not None:
            if popen.poll() is not None:
                return True
        else:
            try:
                os.kill(pid, 0)
            except OSError:
                return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
    except OSError:
        pass
    return True


def _tail(path: str, lines: int = 3) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4000))
            text = f.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:])
