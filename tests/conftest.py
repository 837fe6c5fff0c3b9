"""Shared fixtures: a real backend process on a free loopback port, with its own settings and state."""
import os
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUPPORT = os.path.join(ROOT, "tests", "support")


def pytest_addoption(parser):
    parser.addoption("--fuzz-count", type=int, default=5000, metavar="N",
                     help="malformed requests tests/test_fuzz.py sends (default 5000, what CI runs; more for a "
                          "longer local run)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BackendProcess:
    """`facesketch serve` as a user would run it; stopped (or killed) by the test."""

    def __init__(self, tmp_path, extra_args=(), port=None, env=None):
        self.port = port or free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        self.env.update({
            "FACESKETCH_SETTINGS": str(tmp_path / "settings.json"),
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "PYTHONPATH": SUPPORT,  # the test engines, registered through FACESKETCH_EXTRA_ENGINES
            "FACESKETCH_EXTRA_ENGINES": "engines_for_tests,engines_not_ready",
            "PYTHONUNBUFFERED": "1",
        })
        self.env.update(env or {})
        self.extra_args = list(extra_args)
        self.log_path = tmp_path / f"backend-{self.port}.log"
        self.proc = None

    def start(self, timeout=60):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "facesketch", "serve", "--bind", self.address, "--device", "cpu", *self.extra_args],
            cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=self.log)
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline().decode()
        if "ready on" not in line:
            self.proc.kill()
            raise RuntimeError(f"backend did not start: {line!r}; log:\n{self.log_path.read_text()}")
        assert time.monotonic() < deadline
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.proc.stdout.close()
            self.log.close()

    def kill(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    b = BackendProcess(tmp_path_factory.mktemp("backend"), ["--max-pixels", "20000000", "--queue-size", "4"]).start()
    yield b
    b.stop()


@pytest.fixture
def make_backend(tmp_path):
    started = []

    def factory(*args, **kwargs):
        b = BackendProcess(tmp_path, *args, **kwargs).start()
        started.append(b)
        return b

    yield factory
    for b in started:
        b.stop()
