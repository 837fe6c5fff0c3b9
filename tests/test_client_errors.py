"""What the clients say when a request cannot go through: an image above the backend's per-message
ceiling (ZeroMQ drops the connection; the backend is fine) and a settings address that is not a ZeroMQ
endpoint. Through a real backend where one is involved."""
import json
import time

import pytest
import zmq

from facesketch_client import AsyncClient, BackendError, Client, Image, protocol
from facesketch_client import settings as fs_settings
from facesketch_client.protocol import ErrorCode

MAX_PIXELS = 1000  # a ceiling of 1000 * 8 bytes + 1 MiB per frame


@pytest.fixture(scope="module")
def small_backend(tmp_path_factory):
    from conftest import BackendProcess

    b = BackendProcess(tmp_path_factory.mktemp("small"), ["--max-pixels", str(MAX_PIXELS)]).start()
    yield b
    b.stop()


def big_image():
    w, h = 1000, 600  # 2.4 MB of RGBA8: above the ceiling
    assert w * h * 4 > protocol.max_message_bytes(MAX_PIXELS)
    return Image(w, h, "RGBA8", bytes(w * h * 4))


def pump(ac, until, timeout=10):
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "timed out pumping the async client"
        zmq.select([ac.fileno()], [], [], 0.05)
        ac.process()


def assert_size_message(err):
    assert err.code == ErrorCode.TOO_LARGE, (err.code, str(err))
    text = str(err)
    assert "larger than the backend" in text and "--max-pixels" in text and "went away" not in text
    assert "facesketch serve --max-pixels 600000" in text  # enough for this 1000x600 image


def test_oversized_image_is_said_to_be_too_large_not_a_crash(small_backend):
    with Client(small_backend.address, timeout_s=20) as c:
        # a fresh client knows no limit: ZeroMQ drops the connection, the client asks the backend why
        with pytest.raises(BackendError) as err:
            c.run("echo", {"image": big_image()})
        assert_size_message(err.value)
        assert small_backend.proc.poll() is None
        assert c.run("echo", {"image": Image(1, 1, "RGBA8", b"1234")})["image"].tobytes() == b"1234"
        # now the limit is known: refused before sending
        started = time.monotonic()
        with pytest.raises(BackendError) as err:
            c.run("echo", {"image": big_image()})
        assert_size_message(err.value)
        assert time.monotonic() - started < 0.5


def test_async_client_says_too_large(small_backend):
    ac = AsyncClient(small_backend.address, timeout_s=20)
    try:
        errors = {}
        ac.submit("echo", {"image": big_image()}, on_error=lambda j, e: errors.__setitem__(j, e))
        pump(ac, lambda: errors)
        (first,) = errors.values()
        # without a hello first the async client cannot ask; it says both possibilities
        assert first.code == ErrorCode.DISCONNECTED and "larger than it accepts" in str(first)
        assert "--max-pixels" in str(first)
        caps = []
        ac.hello(on_result=caps.append)
        pump(ac, lambda: caps)
        errors.clear()
        ac.submit("echo", {"image": big_image()}, on_error=lambda j, e: errors.__setitem__(j, e))
        pump(ac, lambda: errors)
        assert_size_message(next(iter(errors.values())))
    finally:
        ac.close()
    assert small_backend.proc.poll() is None


BAD_ADDRESSES = ["localhost:5557", "127.0.0.1", "tcp://127.0.0.1", "tcp://127.0.0.1:http", "tcp://::1:5557",
                 "http://127.0.0.1:5557", "tcp://my host:5557", "", "tcp://127.0.0.1:70000"]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_bad_address_is_a_sentence_not_a_zmq_error(address):
    problem = fs_settings.address_problem(address)
    assert problem and problem.endswith(".")
    for cls in (Client, AsyncClient):
        with pytest.raises(BackendError) as err:
            cls(address)
        assert err.value.code == ErrorCode.BAD_SETTINGS and str(err.value) == problem
    if address == "localhost:5557":
        assert "tcp://localhost:5557" in problem


def test_bad_curve_key_is_a_sentence():
    with pytest.raises(BackendError) as err:
        Client("tcp://127.0.0.1:5557", server_public_key="not a key")
    assert err.value.code == ErrorCode.BAD_SETTINGS and "server public key" in str(err.value)


@pytest.mark.parametrize("good", ["tcp://127.0.0.1:5557", "tcp://localhost:1", "tcp://[::1]:5557",
                                  "tcp://render-01.studio.example:5557", "ipc:///tmp/facesketch.sock"])
def test_good_addresses_pass(good):
    assert fs_settings.address_problem(good) == ""


def test_settings_refuse_a_bad_address_on_save_and_ignore_it_on_load(tmp_path):
    path = tmp_path / "settings.json"
    with pytest.raises(fs_settings.SettingsError) as err:
        fs_settings.save(fs_settings.Settings(address="localhost:5557"), str(path))
    assert "tcp://localhost:5557" in str(err.value) and "not saved" in str(err.value)
    assert not path.exists()
    path.write_text(json.dumps({"address": "localhost:5557", "timeout_s": 9}))
    s = fs_settings.load(str(path))
    assert s.address == fs_settings.DEFAULT_ADDRESS and s.timeout_s == 9.0
    assert "address" in s.load_warning and "tcp://localhost:5557" in s.load_warning
    Client.from_settings(s).close()  # what a loaded file gives always makes a client
