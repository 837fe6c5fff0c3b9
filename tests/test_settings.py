"""The shared settings file: defaults, round trip, bad files, where it lives."""
import json
import os

import pytest

from facesketch_client import settings as fs


@pytest.fixture
def settings_file(tmp_path, monkeypatch):
    p = tmp_path / "conf" / "settings.json"
    monkeypatch.setenv(fs.ENV_PATH, str(p))
    return p


def test_missing_file_gives_defaults(settings_file):
    s = fs.load()
    assert s == fs.Settings()
    assert s.address == "tcp://127.0.0.1:5557"
    assert s.timeout_s == 120.0 and s.connect_timeout_s == 2.0
    assert s.autostart is True and s.backend_command == [] and s.log_level == "info"
    assert s.server_public_key == s.client_public_key == s.client_secret_key == ""
    assert s.load_warning == ""


def test_env_variable_overrides_path(settings_file):
    assert fs.path() == str(settings_file)
    fs.save(fs.Settings(address="tcp://10.0.0.2:6000"))
    assert json.loads(settings_file.read_text())["address"] == "tcp://10.0.0.2:6000"


def test_round_trip_keeps_every_field_and_unknown_keys(settings_file):
    s = fs.Settings(address="tcp://192.168.1.5:7000", timeout_s=33.5, connect_timeout_s=0.5,
                    server_public_key="S" * 40, client_public_key="P" * 40, client_secret_key="K" * 40,
                    autostart=False, backend_command=["/x/python", "-m", "facesketch", "serve"], log_level="debug")
    fs.save(s)
    data = json.loads(settings_file.read_text())
    data["from_a_newer_version"] = {"a": 1}
    settings_file.write_text(json.dumps(data))
    back = fs.load()
    assert back == s
    assert back.load_warning == ""
    assert back.extra == {"from_a_newer_version": {"a": 1}}
    fs.save(back)  # unknown keys survive a save by this version
    assert json.loads(settings_file.read_text())["from_a_newer_version"] == {"a": 1}
    # a file holding a secret key is not readable by others
    assert os.stat(settings_file).st_mode & 0o077 == 0


def test_save_is_atomic_and_leaves_no_temp_files(settings_file):
    fs.save(fs.Settings())
    fs.save(fs.Settings(log_level="error"))
    assert sorted(os.listdir(settings_file.parent)) == ["settings.json"]
    assert fs.load().log_level == "error"


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "\x00\x01garbage"])
def test_corrupt_file_gives_defaults_and_a_warning(settings_file, text):
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text(text)
    s = fs.load()
    assert s == fs.Settings()
    assert "could not be read" in s.load_warning and str(settings_file) in s.load_warning


def test_bad_values_fall_back_per_field(settings_file):
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text(json.dumps({"timeout_s": "soon", "log_level": "LOUD", "autostart": "false",
                                         "address": "tcp://127.0.0.1:9999", "connect_timeout_s": 5}))
    s = fs.load()
    assert s.address == "tcp://127.0.0.1:9999"
    assert s.connect_timeout_s == 5.0 and isinstance(s.connect_timeout_s, float)
    assert s.autostart is False
    assert s.timeout_s == 120.0 and s.log_level == "info"
    assert "timeout_s" in s.load_warning and "log_level" in s.load_warning


def test_load_warning_is_never_written(settings_file):
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text("{broken")
    s = fs.load()
    fs.save(s)
    data = json.loads(settings_file.read_text())
    assert "load_warning" not in data and "extra" not in data
    assert fs.load().load_warning == ""


def test_paths_per_platform(monkeypatch):
    monkeypatch.delenv(fs.ENV_PATH, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", "/xdg/conf")
    monkeypatch.setenv("XDG_STATE_HOME", "/xdg/state")
    assert fs.path(platform="linux") == "/xdg/conf/facesketch/settings.json"
    assert fs.state_dir(platform="linux") == "/xdg/state/facesketch"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", "/home/u")
    assert fs.path(platform="linux") == "/home/u/.config/facesketch/settings.json"
    assert fs.state_dir(platform="linux") == "/home/u/.local/state/facesketch"
    # an explicit home ignores the real user's XDG variables
    monkeypatch.setenv("XDG_CONFIG_HOME", "/xdg/conf")
    assert fs.path(home="/h", platform="linux") == "/h/.config/facesketch/settings.json"
    assert fs.path(home="/h", platform="darwin") == "/h/Library/Application Support/facesketch/settings.json"
    assert fs.state_dir(home="/h", platform="darwin") == "/h/Library/Logs/facesketch"
    assert fs.path(home="/h", platform="win32") == os.path.join("/h", "AppData", "Roaming", "facesketch", "settings.json")
    assert fs.state_dir(home="/h", platform="win32") == os.path.join("/h", "AppData", "Local", "facesketch")
    monkeypatch.setenv("APPDATA", "/appdata")
    monkeypatch.setenv("LOCALAPPDATA", "/localappdata")
    assert fs.path(platform="win32") == os.path.join("/appdata", "facesketch", "settings.json")
    assert fs.state_dir(platform="win32") == os.path.join("/localappdata", "facesketch")


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_secret_saved_into_an_existing_readable_file_makes_it_private(settings_file):
    fs.save(fs.Settings())
    os.chmod(settings_file, 0o644)
    fs.save(fs.Settings(client_secret_key="K" * 40))  # e.g. the settings dialog, later
    assert os.stat(settings_file).st_mode & 0o777 == 0o600
    os.chmod(settings_file, 0o640)  # without a secret the user's own choice stays
    fs.save(fs.Settings(log_level="debug"))
    assert os.stat(settings_file).st_mode & 0o777 == 0o640
