"""Start and stop the local backend that install.py set up, for the plug-ins' auto-start option.

The backend runs detached from the host (a GIMP filter is a short-lived process; the backend keeps
its model loaded for the next call). Its pid and address go to the state folder so either host can
stop it. Stopping asks the backend itself (the protocol's `shutdown` op, accepted from this computer
only). Signals are only a fallback for a backend that does not answer, and only to a process whose
command line says it is `facesketch serve`: after a reboot the pid in the file may be anyone's.
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
    def __init__(self, popen: subprocess.Popen, settings=None):
        self.popen = popen
        self.pid = popen.pid
        self.settings = settings

    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask it to shut down; signals only if it does not (our own child: its pid cannot be anyone else's)."""
        if self.running() and self.settings is not None and request_shutdown(self.settings, self.settings.address):
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                pass
        if self.running():
            _terminate(self.popen.pid, self.popen, timeout_s)
        _forget_pid_file(self.pid)


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
        f.write(f"{popen.pid}\n{settings.address}\n")
    return BackendProcess(popen, settings)


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


def _read_pid_file() -> tuple[int, str] | None:
    """(pid, address) that start_backend wrote; the address is "" in files of earlier versions."""
    try:
        with open(_pid_file()) as f:
            lines = f.read().split()
        return int(lines[0]), (lines[1] if len(lines) > 1 else "")
    except (OSError, ValueError, IndexError):
        return None


def _forget_pid_file(pid: int | None = None) -> None:
    info = _read_pid_file()
    if info is not None and (pid is None or info[0] == pid):
        try:
            os.remove(_pid_file())
        except OSError:
            pass


def has_local_backend() -> bool:
    """True when auto-start left a pid file (a backend it started may still run)."""
    return _read_pid_file() is not None


def request_shutdown(settings, address: str, timeout_s: float = 3.0) -> bool:
    """Send the protocol's shutdown op to `address` (a loopback address only); True when the backend agreed."""
    if not address or not is_loopback(address):
        return False
    try:
        client = Client.from_settings(settings, address=address, connect_timeout_s=min(2.0, timeout_s))
    except BackendError:
        return False
    try:
        return client.shutdown(timeout=timeout_s).get("stopping") is True
    except BackendError:
        return False
    finally:
        client.close()


def process_command_line(pid: int) -> list[str] | None:
    """The argv of process `pid`, or None when it is gone or cannot be read (Linux /proc; `ps` elsewhere)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
        return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return None  # /proc works here and has no such process
    except OSError:
        return None
    if sys.platform == "win32":
        return None  # no cheap, reliable way; the caller then sends no signal
    try:
        out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.split() if out.returncode == 0 and out.stdout.strip() else None


def _exited(pid: int) -> bool:
    """True when process `pid` is gone or has finished (a zombie waiting for its parent counts as finished)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def is_facesketch_backend(pid: int) -> bool:
    """True when process `pid` runs `facesketch serve` (`python -m facesketch serve` or the console script)."""
    argv = process_command_line(pid)
    if not argv:
        return False  # gone, a zombie (no command line), or not ours to tell
    for i, arg in enumerate(argv):
        name = os.path.basename(arg).lower()
        if name in ("facesketch", "facesketch.exe", "facesketch-script.py") and "serve" in argv[i + 1:]:
            return True
    return False


def stop_local_backend(timeout_s: float = 10.0, settings=None) -> bool:
    """Stop the backend that auto-start launched (from any process); True if one was stopped.

    Asks it to shut down at the address it was started on; falls back to SIGTERM (then SIGKILL) only when
    it does not answer and its command line is facesketch serve. A pid file whose process is something
    else (the pid was reused after a reboot) is removed and nothing is signalled. Blocks up to about
    timeout_s: hosts with a GUI call it from a worker thread."""
    info = _read_pid_file()
    if info is None:
        return False
    pid, address = info
    if settings is None:
        settings = fs_settings.load()
    stopped = request_shutdown(settings, address or settings.address)
    deadline = time.monotonic() + timeout_s
    if stopped:
        while time.monotonic() < deadline and not _exited(pid):
            time.sleep(0.05)
    ours = not _exited(pid) and is_facesketch_backend(pid)
    if ours:
        _terminate(pid, None, max(1.0, deadline - time.monotonic()))
    _forget_pid_file(pid)
    return stopped or ours


def _terminate(pid: int, popen, timeout_s: float) -> bool:
    """SIGTERM, then SIGKILL after timeout_s: to our own child (popen), or to a pid whose command line is checked
    before each signal (is_facesketch_backend), so a process that reused the pid is never hit."""
    alive = (lambda: popen.poll() is None) if popen is not None else (lambda: is_facesketch_backend(pid))
    if not alive():
        return popen is not None
    try:
        os.kill(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError, OSError):
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            return True
        time.sleep(0.05)
    if alive():
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
