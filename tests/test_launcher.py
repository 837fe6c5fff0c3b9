"""Auto-start of the local backend, as both plug-ins use it."""
import sys

import pytest

from facesketch_client import BackendError, Client, launcher
from facesketch_client import settings as fs_settings

from conftest import free_port


@pytest.fixture
def user(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESKETCH_SETTINGS", str(tmp_path / "settings.json"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    s = fs_settings.Settings(address=f"tcp://127.0.0.1:{free_port()}",
                             backend_command=[sys.executable, "-m", "facesketch", "serve", "--device", "cpu"])
    return s


def test_autostart_starts_answers_and_stops(user):
    proc = launcher.ensure_backend(user, wait_s=60)
    try:
        assert proc is not None and proc.running()
        with Client.from_settings(user) as c:
            assert c.hello()["protocol"] == 1
        assert launcher.ensure_backend(user) is None  # already answering: nothing more is started
    finally:
        assert launcher.stop_local_backend() is True
    assert not proc.running()
    assert launcher.answers(user, timeout_s=0.5) is None


def test_autostart_off_starts_nothing(user):
    user.autostart = False
    assert launcher.ensure_backend(user) is None
    assert launcher.answers(user, timeout_s=0.5) is None


def test_backend_that_dies_on_start_is_reported_with_its_last_words(user):
    user.backend_command = [sys.executable, "-c", "import sys; print('no GPU driver today', file=sys.stderr); sys.exit(3)"]
    with pytest.raises(BackendError) as err:
        launcher.ensure_backend(user, wait_s=20)
    assert "stopped while starting" in str(err.value) and "no GPU driver today" in str(err.value)


def test_remote_address_is_never_autostarted(user):
    user.address = "tcp://192.0.2.1:5557"  # TEST-NET: never contacted, the check refuses first
    with pytest.raises(BackendError) as err:
        launcher.start_backend(user)
    assert "not local" in str(err.value)
