"""The Krita plug-in's Connection without Krita: Qt replaced by a stand-in, so the test sees what runs on
the GUI thread. Stopping a local backend must never wait there (it waits for the process to exit)."""
import importlib
import os
import sys
import time
import types

import pytest

from conftest import ROOT

KRITA_PLUGIN = os.path.join(ROOT, "plugin", "krita", "facesketch")
PKG = "facesketch_krita_under_test"


class _Signal:
    def __init__(self, *types_):
        self.slots = []

    def connect(self, fn):
        self.slots.append(fn)

    def emit(self, *args):
        for fn in self.slots:
            fn(*args)


class _QObject:
    def __init__(self, parent=None):
        pass


class _QTimer(_QObject):
    def __init__(self, parent=None):
        self.timeout = _Signal()
        self.active = False

    def setInterval(self, ms):
        pass

    def start(self, *a):
        self.active = True

    def stop(self):
        self.active = False

    @staticmethod
    def singleShot(ms, fn):
        fn()


class _QSocketNotifier(_QObject):
    def __init__(self, fd, kind, parent=None):
        self.activated = _Signal()

    def setEnabled(self, on):
        pass

    def deleteLater(self):
        pass


@pytest.fixture
def connection_module(monkeypatch, tmp_path):
    monkeypatch.setenv("FACESKETCH_SETTINGS", str(tmp_path / "settings.json"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    import facesketch_client
    from facesketch_client import jobs, launcher  # noqa: F401  (attributes of the package the plug-in imports)

    pkg = types.ModuleType(PKG)
    pkg.__path__ = [KRITA_PLUGIN]
    qt = types.ModuleType(PKG + ".qt")
    qt.QObject, qt.QTimer, qt.QSocketNotifier, qt.Signal, qt.SOCKET_READ = _QObject, _QTimer, _QSocketNotifier, \
        _Signal, 0
    for name, module in ((PKG, pkg), (PKG + ".qt", qt), (PKG + ".facesketch_client", facesketch_client)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, PKG + ".connection", raising=False)
    return importlib.import_module(PKG + ".connection")


def pump_until(conn, until, timeout=10):
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "timed out"
        conn._pump()
        time.sleep(0.02)


def test_stopping_a_local_backend_never_waits_on_the_gui_thread(connection_module):
    conn = connection_module.Connection()

    class SlowToStop:  # a backend handle whose stop waits for the process, as the launcher's does
        stopped = False

        def stop(self):
            time.sleep(1.0)
            SlowToStop.stopped = True

    conn.backend_handle = SlowToStop()
    done = []
    started = time.monotonic()
    assert conn.stop_local_backend(on_done=done.append) is True
    assert time.monotonic() - started < 0.3, "stop_local_backend waited on the GUI thread"
    assert "Stopping" in conn.message and not SlowToStop.stopped
    conn._pump()  # the GUI thread's timer tick: returns at once while the helper still waits
    assert time.monotonic() - started < 0.5 and not done
    pump_until(conn, lambda: done)
    assert done == [True] and SlowToStop.stopped
    assert conn.state == "disconnected" and conn.message == "The local backend was stopped."
    # nothing to stop: said at once, no thread
    assert conn.stop_local_backend() is False and conn._stopper is None


def test_stopping_a_backend_another_process_started_goes_through_the_launcher(connection_module):

    from facesketch_client import launcher
    from facesketch_client import settings as fs_settings
    from conftest import free_port

    s = fs_settings.Settings(address=f"tcp://127.0.0.1:{free_port()}",
                             backend_command=[sys.executable, "-m", "facesketch", "serve", "--device", "cpu"])
    fs_settings.save(s)
    proc = launcher.ensure_backend(s, wait_s=60)  # as GIMP's auto-start leaves it: a pid file
    try:
        conn = connection_module.Connection()
        done = []
        started = time.monotonic()
        assert conn.stop_local_backend(on_done=done.append) is True
        assert time.monotonic() - started < 0.3
        pump_until(conn, lambda: done, timeout=20)
        assert done == [True] and proc.popen.wait(10) == 0
    finally:
        if proc.running():
            proc.popen.kill()
            proc.popen.wait()

