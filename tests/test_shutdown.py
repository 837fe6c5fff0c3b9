"""Stopping a backend: the protocol's shutdown op (loopback or an allow-listed CURVE key only), and the
launcher, which never signals a process that is not `facesketch serve` (a pid file can outlive its pid)."""
import os
import subprocess
import sys
import time

import pytest
import zmq

from facesketch_client import BackendError, Client, launcher
from facesketch_client import settings as fs_settings
from facesketch_client.protocol import ErrorCode

from conftest import ROOT, free_port
from rawwire import Raw

ONE = [{"name": "image", "width": 1, "height": 1, "format": "RGBA8", "stride": 4}]


def wait_exit(proc, timeout=15):
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the backend did not exit")


def test_shutdown_from_loopback_stops_the_backend_and_answers_its_jobs(make_backend):
    b = make_backend()
    raw = Raw(b.address)
    try:
        raw.send_header({"op": "run", "id": "running", "engine": "echo", "params": {"delay": 30}, "images": ONE},
                        b"1234")
        raw.send_header({"op": "run", "id": "queued", "engine": "echo", "images": ONE}, b"1234")
        accepted = set()
        deadline = time.monotonic() + 10
        while len(accepted) < 2 and time.monotonic() < deadline:  # both accepted before the shutdown
            header, _ = raw.recv()  # the running job's progress may come before the second acceptance
            if header["kind"] == "accepted":
                accepted.add(header["id"])
        assert accepted == {"running", "queued"}
        with Client(b.address) as c:
            reply = c.shutdown()
        assert reply["kind"] == "shutdown" and reply["stopping"] is True
        codes = {}
        deadline = time.monotonic() + 10
        while len(codes) < 2 and time.monotonic() < deadline:
            header, _ = raw.recv()
            if header["kind"] == "error":
                codes[header["id"]] = header["code"]
        assert codes == {"running": ErrorCode.CANCELLED, "queued": ErrorCode.CANCELLED}
    finally:
        raw.close()
    assert wait_exit(b.proc) == 0
    assert "shutdown requested" in b.log_path.read_text()


def test_who_may_shut_down():
    from facesketch.backend.service import CurveConfig, Service

    def service(bind, curve=None):
        s = Service(bind, {}, curve=curve)
        s.ctx.term()
        return s

    plain = service("tcp://127.0.0.1:5557")
    for peer in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        assert plain.shutdown_allowed(peer, None), peer
    for peer in ("10.0.0.5", "192.168.1.20", "2001:db8::1", "::ffff:10.0.0.5", "", None):
        assert not plain.shutdown_allowed(peer, None), peer
    assert service("ipc:///tmp/facesketch-test.sock").shutdown_allowed(None, None)
    public, secret = zmq.curve_keypair()
    curved = service("tcp://127.0.0.1:5557", CurveConfig(public, secret, "/nonexistent"))
    assert curved.shutdown_allowed("10.0.0.5", "an allow-listed key")
    assert not curved.shutdown_allowed("127.0.0.1", None)


def test_an_allow_listed_curve_key_may_shut_down(make_backend, tmp_path):
    keydir = tmp_path / "keys"
    env = dict(os.environ, FACESKETCH_SETTINGS=str(tmp_path / "s.json"))
    out = subprocess.run([sys.executable, "-m", "facesketch", "keys", "--dir", str(keydir)], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True, timeout=60).stdout
    keys = dict(line.strip().split(": ") for line in out.splitlines() if line.startswith("  "))
    b = make_backend(["--curve", str(keydir)])
    with Client(b.address, **keys) as c:
        assert c.shutdown()["stopping"] is True
    assert wait_exit(b.proc) == 0


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESKETCH_SETTINGS", str(tmp_path / "settings.json"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    os.makedirs(fs_settings.state_dir(), exist_ok=True)
    return tmp_path


def write_pid_file(pid, address):
    with open(os.path.join(fs_settings.state_dir(), "backend.pid"), "w") as f:
        f.write(f"{pid}\n{address}\n")


def test_a_stale_pid_file_never_kills_a_stranger(state):
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # took the pid after a reboot
    try:
        write_pid_file(stranger.pid, f"tcp://127.0.0.1:{free_port()}")  # and no backend answers there
        started = time.monotonic()
        assert launcher.stop_local_backend(timeout_s=5) is False
        assert time.monotonic() - started < 5
        time.sleep(0.2)
        assert stranger.poll() is None, "the launcher signalled a process that is not facesketch serve"
        assert not launcher.has_local_backend()  # the stale file is gone
    finally:
        stranger.kill()
        stranger.wait()


def test_a_backend_that_does_not_answer_is_signalled_after_its_command_line_is_checked(state):
    # a hung `facesketch serve` (it never answers the shutdown op): its command line names it
    hung = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "facesketch", "serve"])
    try:
        deadline = time.monotonic() + 10  # until the child has exec'd (before, it shows the parent's command line)
        while not launcher.is_facesketch_backend(hung.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert launcher.is_facesketch_backend(hung.pid)
        assert not launcher.is_facesketch_backend(os.getpid())
        write_pid_file(hung.pid, f"tcp://127.0.0.1:{free_port()}")
        assert launcher.stop_local_backend(timeout_s=5) is True
        assert hung.wait(10) != 0  # SIGTERM
    finally:
        if hung.poll() is None:
            hung.kill()
            hung.wait()


def test_stop_local_backend_uses_the_shutdown_op(state):
    s = fs_settings.Settings(address=f"tcp://127.0.0.1:{free_port()}",
                             backend_command=[sys.executable, "-m", "facesketch", "serve", "--device", "cpu"])
    proc = launcher.ensure_backend(s, wait_s=60)
    assert proc is not None
    assert launcher.stop_local_backend(timeout_s=10, settings=s) is True
    assert proc.popen.wait(10) == 0
    with open(os.path.join(fs_settings.state_dir(), "backend-autostart.log")) as f:
        assert "shutdown requested" in f.read()
    assert launcher.answers(s, timeout_s=0.5) is None
    # the handle of a backend started here stops the same way
    proc = launcher.ensure_backend(s, wait_s=60)
    proc.stop()
    assert proc.popen.returncode == 0 and not launcher.has_local_backend()


def test_shutdown_of_nothing_is_unreachable():
    with Client(f"tcp://127.0.0.1:{free_port()}") as c:
        with pytest.raises(BackendError) as err:
            c.shutdown(timeout=1)
    assert err.value.code == ErrorCode.UNREACHABLE
