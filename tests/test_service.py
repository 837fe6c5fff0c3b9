"""The service and the clients, through real ZeroMQ sockets to a real `facesketch serve` process."""
import os
import subprocess
import sys
import threading
import time

import msgpack
import pytest
import zmq

from facesketch_client import AsyncClient, BackendError, BackendUnreachable, Client, Image, protocol
from facesketch_client.protocol import ErrorCode

from conftest import ROOT, BackendProcess, free_port


def pattern(n: int, seed: int = 0) -> bytes:
    return bytes((i * 131 + seed * 17 + (i >> 8)) & 0xFF for i in range(n))


def rows(img: Image) -> list[bytes]:
    row = img.width * protocol.bytes_per_pixel(img.format)
    mv = memoryview(img.data).cast("B")
    return [bytes(mv[y * img.stride: y * img.stride + row]) for y in range(img.height)]


def echo(client: Client, img: Image, **kw) -> Image:
    return client.run("echo", {"image": img}, **kw)["image"]


class Raw:
    """A bare DEALER socket for sending what a well-behaved client never would."""

    def __init__(self, address):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(address)

    def send(self, *frames):
        self.sock.send_multipart(list(frames))

    def send_header(self, header, *frames):
        header = {"v": protocol.PROTOCOL_VERSION, **header}
        self.send(msgpack.packb(header), *frames)

    def recv(self, timeout=10):
        assert self.sock.poll(timeout * 1000), "no reply from the backend"
        frames = self.sock.recv_multipart()
        return msgpack.unpackb(frames[0]), frames[1:]

    def recv_kind(self, kind, timeout=10):
        while True:
            header, frames = self.recv(timeout)
            if header["kind"] == kind:
                return header, frames

    def close(self):
        self.sock.close(0)


@pytest.fixture
def client(backend):
    c = Client(backend.address, timeout_s=30)
    yield c
    c.close()


# -- pixel formats ------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", list(protocol.PIXEL_FORMATS))
@pytest.mark.parametrize("size", [(1, 1), (4097, 3), (3, 4097), (37, 23)])
def test_round_trip_every_format_and_odd_size(client, fmt, size):
    w, h = size
    bpp = protocol.bytes_per_pixel(fmt)
    if fmt in ("GRAY8", "GRAYA8") or fmt == "RGB8":
        data = pattern(w * h * bpp, seed=3)
    else:
        data = pattern(w * h * bpp)
    out = echo(client, Image(w, h, fmt, data))
    assert (out.width, out.height, out.format) == (w, h, fmt)
    assert out.tobytes() == data


@pytest.mark.parametrize("fmt", ["RGBA8", "BGRA8", "GRAY8", "RGBA16"])
def test_stride_wider_than_row(client, fmt):
    w, h, bpp = 13, 7, protocol.bytes_per_pixel(fmt)
    stride = w * bpp + 11
    padded = pattern(stride * h, seed=5)
    out = echo(client, Image(w, h, fmt, padded, stride=stride))
    assert rows(out) == rows(Image(w, h, fmt, padded, stride=stride))
    # The last row need not carry its padding.
    trimmed = padded[: stride * (h - 1) + w * bpp]
    assert rows(echo(client, Image(w, h, fmt, trimmed, stride=stride))) == rows(out)


def test_conversion_to_another_format(client):
    bgra = bytes([10, 20, 30, 40, 1, 2, 3, 4])
    out = client.run("echo", {"image": Image(2, 1, "BGRA8", bgra)}, reply_format="RGBA8")["image"]
    assert out.tobytes() == bytes([30, 20, 10, 40, 3, 2, 1, 4])
    gray = client.run("echo", {"image": Image(2, 1, "GRAY8", bytes([0, 200]))}, reply_format="RGBA16")["image"]
    assert gray.tobytes() == b"".join(v.to_bytes(2, sys.byteorder) for v in (0, 0, 0, 65535, 200 * 257,
                                                                                200 * 257, 200 * 257, 65535))


# -- every error, each followed by a good request -----------------------------------------------

def expect_error(raw: Raw, code: str, request_id=None):
    header, _ = raw.recv_kind("error")
    assert header["code"] == code, header
    assert header["message"] and len(header["message"]) > 10
    if request_id is not None:
        assert header["id"] == request_id
    return header


def good_run(raw: Raw, request_id="ok"):
    raw.send_header({"op": "run", "id": request_id, "engine": "echo",
                     "images": [protocol.image_spec("image", 2, 1, "RGBA8")]}, b"12345678")
    header, frames = raw.recv_kind("result")
    assert header["id"] == request_id and frames == [b"12345678"]


ONE_PIXEL = [protocol.image_spec("image", 1, 1, "RGBA8")]

ERROR_CASES = [
    ("unknown_op", lambda r: r.send_header({"op": "dance", "id": 1}), ErrorCode.UNKNOWN_OP),
    ("not msgpack", lambda r: r.send(b"\xc1\xc1 not msgpack"), ErrorCode.BAD_HEADER),
    ("header not a map", lambda r: r.send(msgpack.packb([1, 2, 3])), ErrorCode.BAD_HEADER),
    ("no id", lambda r: r.send(msgpack.packb({"v": 1, "op": "hello"})), ErrorCode.BAD_HEADER),
    ("old protocol", lambda r: r.send(msgpack.packb({"v": 0, "op": "hello", "id": 2})), ErrorCode.VERSION_MISMATCH),
    ("missing frame", lambda r: r.send_header({"op": "run", "id": 3, "engine": "echo", "images": ONE_PIXEL}),
     ErrorCode.BAD_FRAMES),
    ("extra frame", lambda r: r.send_header({"op": "run", "id": 4, "engine": "echo", "images": ONE_PIXEL},
                                            b"1234", b"5678"), ErrorCode.BAD_FRAMES),
    ("size mismatch", lambda r: r.send_header({"op": "run", "id": 5, "engine": "echo", "images": ONE_PIXEL},
                                              b"123"), ErrorCode.SIZE_MISMATCH),
    ("stride too short", lambda r: r.send_header(
        {"op": "run", "id": 6, "engine": "echo", "images": [dict(ONE_PIXEL[0], stride=2)]}, b"1234"),
     ErrorCode.SIZE_MISMATCH),
    ("unknown format", lambda r: r.send_header(
        {"op": "run", "id": 7, "engine": "echo", "images": [dict(ONE_PIXEL[0], format="CMYK8")]}, b"1234"),
     ErrorCode.BAD_HEADER),
    ("too large", lambda r: r.send_header(
        {"op": "run", "id": 8, "engine": "echo", "images": [protocol.image_spec("image", 5000, 5000, "GRAY8")]},
        b"\0" * 25_000_000), ErrorCode.TOO_LARGE),
    ("empty", lambda r: r.send_header(
        {"op": "run", "id": 9, "engine": "echo", "images": [protocol.image_spec("image", 0, 5, "RGBA8")]}, b""),
     ErrorCode.EMPTY_IMAGE),
    ("unknown engine", lambda r: r.send_header({"op": "run", "id": 10, "engine": "nope", "images": ONE_PIXEL},
                                               b"1234"), ErrorCode.UNKNOWN_ENGINE),
    ("unknown parameter", lambda r: r.send_header(
        {"op": "run", "id": 11, "engine": "echo", "params": {"colour": 1}, "images": ONE_PIXEL}, b"1234"),
     ErrorCode.UNKNOWN_PARAM),
    ("bad parameter", lambda r: r.send_header(
        {"op": "run", "id": 12, "engine": "echo", "params": {"delay": -1}, "images": ONE_PIXEL}, b"1234"),
     ErrorCode.BAD_PARAM),
    ("bad parameter type", lambda r: r.send_header(
        {"op": "run", "id": 13, "engine": "echo", "params": {"delay": "soon"}, "images": ONE_PIXEL}, b"1234"),
     ErrorCode.BAD_PARAM),
    ("not ready", lambda r: r.send_header({"op": "run", "id": 14, "engine": "notready", "images": ONE_PIXEL},
                                          b"1234"), ErrorCode.NOT_READY),
    ("engine crashes", lambda r: r.send_header({"op": "run", "id": 15, "engine": "failing", "images": ONE_PIXEL},
                                               b"1234"), ErrorCode.INTERNAL),
    ("unknown output", lambda r: r.send_header(
        {"op": "run", "id": 16, "engine": "echo", "outputs": ["face"], "images": ONE_PIXEL}, b"1234"),
     ErrorCode.BAD_HEADER),
    ("huge header", lambda r: r.send(msgpack.packb({"v": 1, "op": "hello", "id": 17, "pad": "x" * (2 << 20)})),
     ErrorCode.BAD_HEADER),
]


@pytest.mark.parametrize("name,send,code", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_every_error_is_typed_and_the_service_keeps_running(backend, name, send, code):
    raw = Raw(backend.address)
    try:
        send(raw)
        expect_error(raw, code)
        good_run(raw)
    finally:
        raw.close()
    assert backend.proc.poll() is None


def test_not_ready_message_names_the_reason(client):
    with pytest.raises(BackendError) as err:
        client.run("notready", {"image": Image(1, 1, "RGBA8", b"1234")})
    assert err.value.code == ErrorCode.NOT_READY
    assert "no trained weights" in str(err.value)


def test_hello_lists_engines_with_readiness(client):
    caps = client.hello()
    assert caps["protocol"] == protocol.PROTOCOL_VERSION and caps["device"] == "cpu"
    engines = {e["name"]: e for e in caps["engines"]}
    assert engines["echo"]["ready"] is True
    assert engines["notready"]["ready"] is False and "no trained weights" in engines["notready"]["reason"]
    assert engines["echo"]["params"][0]["name"] == "delay"


def test_hello_details_tell_hosts_the_face_canvas_template_and_defaults(client, make_backend, tmp_path):
    """What the plug-ins draw and preset comes from the backend (models/data/face_template.py), not from copies."""
    from facesketch.models.data.face_template import crop_boxes
    engines = {e["name"]: e for e in client.hello()["engines"]}
    face = engines["face"]["details"]
    boxes = crop_boxes(face["canvas"])
    assert face["boxes"] == {"left_eye": list(boxes["eye1"]), "right_eye": list(boxes["eye2"]),
                             "nose": list(boxes["nose"]), "mouth": list(boxes["mouth"])}
    assert face["defaults"] == {p["name"]: p["default"] for p in engines["face"]["params"]}
    assert face["defaults"]["gender"] == "female" and face["defaults"]["blend_nose"] == 1.0
    assert engines["echo"]["details"] == {"defaults": {"delay": 0.0}}
    # without weights the face engine is not ready, and still says where the face goes
    empty = tmp_path / "no-weights"
    empty.mkdir()
    bare = make_backend(env={"FACESKETCH_WEIGHTS_DIR": str(empty)})
    with Client(bare.address, timeout_s=30) as c:
        caps = c.hello()
    face2 = next(e for e in caps["engines"] if e["name"] == "face")
    assert face2["ready"] is False and face2["details"]["canvas"] == face["canvas"]
    assert face2["details"]["boxes"] == face["boxes"]


def test_duplicate_request_id_is_refused(backend):
    raw = Raw(backend.address)
    try:
        header = {"op": "run", "id": "same", "engine": "echo", "params": {"delay": 1.0}, "images": ONE_PIXEL}
        raw.send_header(header, b"1234")
        raw.recv_kind("accepted")
        raw.send_header(header, b"1234")
        expect_error(raw, ErrorCode.BAD_HEADER)
        raw.recv_kind("result")
    finally:
        raw.close()


# -- cancel, supersede, busy, vanishing clients -------------------------------------------------

def test_cancel_running_job(backend, client):
    cancel_at = time.monotonic() + 0.3
    started = time.monotonic()
    with pytest.raises(BackendError) as err:
        echo(client, Image(1, 1, "RGBA8", b"1234"), params={"delay": 20},
             is_cancelled=lambda: time.monotonic() > cancel_at)
    assert err.value.code == ErrorCode.CANCELLED
    assert time.monotonic() - started < 3


def test_cancel_queued_job(backend):
    raw = Raw(backend.address)
    try:
        raw.send_header({"op": "run", "id": "long", "engine": "echo", "params": {"delay": 1.0}, "images": ONE_PIXEL},
                        b"1234")
        raw.send_header({"op": "run", "id": "queued", "engine": "echo", "images": ONE_PIXEL}, b"1234")
        raw.send_header({"op": "cancel", "id": "queued"})
        expect_error(raw, ErrorCode.CANCELLED, "queued")
        header, _ = raw.recv_kind("result")
        assert header["id"] == "long"
        raw.send_header({"op": "cancel", "id": "finished-long-ago"})
        header, _ = raw.recv_kind("cancel")
        assert header["found"] is False
    finally:
        raw.close()


def test_supersede_drops_older_queued_requests(backend):
    raw = Raw(backend.address)
    try:
        raw.send_header({"op": "run", "id": "busy", "engine": "echo", "params": {"delay": 0.8}, "images": ONE_PIXEL},
                        b"1234")
        for i in range(3):
            raw.send_header({"op": "run", "id": f"stroke{i}", "engine": "echo", "supersede": "live",
                             "images": ONE_PIXEL}, bytes([i]) * 4)
        results, superseded = {}, []
        while len(results) < 2:
            header, frames = raw.recv()
            if header["kind"] == "result":
                results[header["id"]] = frames
            elif header["kind"] == "error":
                assert header["code"] == ErrorCode.SUPERSEDED
                superseded.append(header["id"])
        assert sorted(superseded) == ["stroke0", "stroke1"]
        assert results == {"busy": [b"1234"], "stroke2": [b"\2" * 4]}
    finally:
        raw.close()


def test_supersede_is_per_client(backend):
    a, b = Raw(backend.address), Raw(backend.address)
    try:
        a.send_header({"op": "run", "id": "hold", "engine": "echo", "params": {"delay": 0.5}, "images": ONE_PIXEL},
                      b"1234")
        a.recv_kind("accepted")
        a.send_header({"op": "run", "id": "a", "engine": "echo", "supersede": "live", "images": ONE_PIXEL}, b"aaaa")
        a.recv_kind("accepted")
        b.send_header({"op": "run", "id": "b", "engine": "echo", "supersede": "live", "images": ONE_PIXEL}, b"bbbb")
        assert b.recv_kind("result")[1] == [b"bbbb"]
        header, frames = a.recv_kind("result")
        header, frames = (header, frames) if header["id"] == "a" else a.recv_kind("result")
        assert frames == [b"aaaa"]
    finally:
        a.close()
        b.close()


def test_busy_when_queue_is_full(backend):
    raw = Raw(backend.address)   # the fixture's backend has --queue-size 4
    try:
        raw.send_header({"op": "run", "id": "run", "engine": "echo", "params": {"delay": 1.0}, "images": ONE_PIXEL},
                        b"1234")
        raw.recv_kind("accepted")
        time.sleep(0.2)  # let the worker take it, so the queue is empty
        for i in range(4):
            raw.send_header({"op": "run", "id": f"q{i}", "engine": "echo", "images": ONE_PIXEL}, b"1234")
        raw.send_header({"op": "run", "id": "one-too-many", "engine": "echo", "images": ONE_PIXEL}, b"1234")
        header = expect_error(raw, ErrorCode.BUSY, "one-too-many")
        assert "busy" in header["message"]
        done = set()
        while len(done) < 5:
            header, _ = raw.recv()
            if header["kind"] == "result":
                done.add(header["id"])
        good_run(raw)
    finally:
        raw.close()


def test_client_vanishing_mid_job_costs_only_the_job(backend, client):
    raw = Raw(backend.address)
    raw.send_header({"op": "run", "id": "gone", "engine": "echo", "params": {"delay": 30}, "images": ONE_PIXEL},
                    b"1234")
    raw.send_header({"op": "run", "id": "gone-queued", "engine": "echo", "params": {"delay": 30},
                     "images": ONE_PIXEL}, b"1234")
    raw.recv_kind("accepted")
    raw.close()  # vanish while the first job runs and the second waits
    started = time.monotonic()
    out = echo(client, Image(1, 1, "RGBA8", b"abcd"), timeout=20)
    assert out.tobytes() == b"abcd"
    assert time.monotonic() - started < 5, "the vanished client's jobs were not dropped"
    assert backend.proc.poll() is None


def test_progress_events_arrive_before_the_result(client):
    seen = []
    echo(client, Image(1, 1, "RGBA8", b"1234"), params={"delay": 0.5}, on_progress=lambda f, m: seen.append(f))
    assert len(seen) >= 3 and all(0 <= f < 1 for f in seen) and seen == sorted(seen)


def test_many_clients_at_once(backend):
    errors = []

    def work(seed):
        try:
            with Client(backend.address, timeout_s=30) as c:
                for i in range(5):
                    data = pattern(16 * 16 * 4, seed + i)
                    assert echo(c, Image(16, 16, "RGBA8", data)).tobytes() == data
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]  # within --queue-size 4
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# -- backend down, restarted, dying mid-job ------------------------------------------------------

def test_backend_down_is_reported_within_two_seconds():
    address = f"tcp://127.0.0.1:{free_port()}"
    with Client(address) as c:
        started = time.monotonic()
        with pytest.raises(BackendUnreachable) as err:
            c.hello()
        assert time.monotonic() - started < 2.5
    assert f"backend not reachable at {address}" in str(err.value)


def test_backend_restart_client_reconnects_and_death_mid_job_is_reported(make_backend, tmp_path):
    b = make_backend()
    c = Client(b.address, timeout_s=60)
    try:
        assert echo(c, Image(1, 1, "RGBA8", b"1234")).tobytes() == b"1234"
        killer = threading.Timer(0.5, b.kill)
        killer.start()
        started = time.monotonic()
        with pytest.raises(BackendError) as err:
            echo(c, Image(1, 1, "RGBA8", b"1234"), params={"delay": 30})
        assert err.value.code == ErrorCode.DISCONNECTED and "went away" in str(err.value)
        assert time.monotonic() - started < 5
        with pytest.raises(BackendUnreachable):
            c.hello()
        again = BackendProcess(tmp_path, port=b.port).start()
        try:
            assert echo(c, Image(1, 1, "RGBA8", b"5678")).tobytes() == b"5678"  # the same client object
        finally:
            again.stop()
    finally:
        c.close()


# -- the non-blocking client --------------------------------------------------------------------

def pump(ac: AsyncClient, until, timeout=10):
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "timed out pumping the async client"
        zmq.select([ac.fileno()], [], [], 0.05)
        ac.process()


def test_async_client_supersede_progress_and_results(backend):
    ac = AsyncClient(backend.address)
    try:
        results, errors, progress = {}, {}, []
        on_result = lambda job, images: results.__setitem__(job, images["image"].tobytes())
        on_error = lambda job, err: errors.__setitem__(job, err.code)
        # the first job runs long enough that the three strokes surely queue behind it, even on a loaded machine
        first = ac.submit("echo", {"image": Image(1, 1, "BGRA8", b"0000")}, params={"delay": 2.0},
                          on_result=on_result, on_error=on_error,
                          on_progress=lambda job, f, m: progress.append(f))
        strokes = [ac.submit("echo", {"image": Image(1, 1, "BGRA8", bytes([65 + i]) * 4)}, supersede="live",
                             on_result=on_result, on_error=on_error) for i in range(3)]
        pump(ac, lambda: len(results) + len(errors) == 4)
        assert results == {first: b"0000", strokes[2]: b"CCCC"}
        assert errors == {strokes[0]: ErrorCode.SUPERSEDED, strokes[1]: ErrorCode.SUPERSEDED}
        assert progress
        caps = []
        ac.hello(on_result=caps.append)
        pump(ac, lambda: caps)
        assert caps[0]["kind"] == "hello"
    finally:
        ac.close()


def test_async_client_cancel_and_unreachable(backend):
    ac = AsyncClient(backend.address)
    try:
        errors = {}
        job = ac.submit("echo", {"image": Image(1, 1, "RGBA8", b"0000")}, params={"delay": 20},
                        on_error=lambda j, e: errors.__setitem__(j, e.code))
        pump(ac, lambda: True)
        ac.cancel(job)
        pump(ac, lambda: errors)
        assert errors == {job: ErrorCode.CANCELLED}
    finally:
        ac.close()
    down = AsyncClient(f"tcp://127.0.0.1:{free_port()}")
    try:
        errors = []
        started = time.monotonic()
        down.submit("echo", {"image": Image(1, 1, "RGBA8", b"0000")}, on_error=lambda j, e: errors.append(e))
        pump(down, lambda: errors, timeout=5)
        assert isinstance(errors[0], BackendUnreachable) and time.monotonic() - started < 2.5
    finally:
        down.close()


# -- security -----------------------------------------------------------------------------------

def test_non_loopback_bind_is_refused_without_curve(tmp_path):
    env = dict(os.environ, FACESKETCH_SETTINGS=str(tmp_path / "s.json"), XDG_STATE_HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "facesketch", "serve", "--bind", f"tcp://0.0.0.0:{free_port()}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "refusing to listen" in proc.stderr and "--curve" in proc.stderr


def test_curve_allow_list(make_backend, tmp_path):
    keydir = tmp_path / "keys"
    env = dict(os.environ, FACESKETCH_SETTINGS=str(tmp_path / "s.json"))
    out = subprocess.run([sys.executable, "-m", "facesketch", "keys", "--dir", str(keydir), "--client", "laptop"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    keys = dict(line.strip().split(": ") for line in out.splitlines() if line.startswith("  "))
    b = make_backend(["--curve", str(keydir)])

    with Client(b.address, server_public_key=keys["server_public_key"], client_public_key=keys["client_public_key"],
                client_secret_key=keys["client_secret_key"]) as known:
        assert echo(known, Image(1, 1, "RGBA8", b"1234")).tobytes() == b"1234"

    stranger_public, stranger_secret = (k.decode() for k in zmq.curve_keypair())
    with Client(b.address, server_public_key=keys["server_public_key"], client_public_key=stranger_public,
                client_secret_key=stranger_secret) as stranger:
        with pytest.raises(BackendUnreachable) as err:
            stranger.hello()
        assert "refused this client's key" in str(err.value)

    with Client(b.address) as plain:
        with pytest.raises(BackendUnreachable) as err:
            plain.hello()
        assert "security mechanism" in str(err.value) or "not reachable" in str(err.value)
    assert b.proc.poll() is None
