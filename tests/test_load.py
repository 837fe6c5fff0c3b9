"""Load and faults through a real backend on loopback: many clients at once, every reply its own; a backend
killed under waiting clients and restarted; engines that run out of memory. (Vanishing clients and an engine
that raises are covered in tests/test_service.py.) Every loop is bounded in count and time."""
import hashlib
import threading
import time

import msgpack
import pytest
import zmq

from facesketch_client import AsyncClient, BackendError, Client, Image, protocol
from facesketch_client.protocol import ErrorCode

from conftest import BackendProcess
from rawwire import Raw

CLIENTS, REQUESTS = 32, 20


def payload(client: int, i: int) -> Image:
    """A distinct image per request: its own size and bytes."""
    w, h = 8 + (client * 7 + i) % 41, 5 + (client + i * 3) % 17
    seed = client * 1000 + i
    data = bytes((j * 131 + seed * 17 + (j >> 8)) & 0xFF for j in range(w * h * 4))
    return Image(w, h, "RGBA8", data)


def run_header(request_id, img, **fields):
    return {"v": protocol.PROTOCOL_VERSION, "op": "run", "id": request_id, "engine": "echo",
            "images": [protocol.image_spec("image", img.width, img.height, img.format)], **fields}


@pytest.fixture(scope="module")
def load_backend(tmp_path_factory):
    b = BackendProcess(tmp_path_factory.mktemp("load"), ["--queue-size", "64"]).start()
    yield b
    b.stop()


def test_32_clients_each_get_their_own_replies(load_backend):
    """32 sockets x 20 echo requests, each with its own payload: every reply carries its request's id and
    bytes (sha256), none lost, none duplicated, nothing extra on any socket."""
    results, problems = {}, []
    barrier = threading.Barrier(CLIENTS)

    def work(c):
        raw = Raw(load_backend.address)
        try:
            barrier.wait(30)
            for i in range(REQUESTS):
                img = payload(c, i)
                rid = f"c{c}-r{i}"
                raw.send(msgpack.packb(run_header(rid, img)), img.data)
                deadline = time.monotonic() + 60
                while True:
                    assert time.monotonic() < deadline, f"{rid}: no result"
                    header, frames = raw.recv(timeout=max(0.1, deadline - time.monotonic()))
                    if header.get("kind") in ("accepted", "progress"):
                        assert header["id"] == rid, header
                        continue
                    break
                assert header["kind"] == "result" and header["id"] == rid, header
                key = (c, i)
                assert key not in results, f"{rid}: a second result"
                results[key] = (hashlib.sha256(frames[0]).hexdigest(), header["images"][0]["width"],
                                header["images"][0]["height"])
            assert not raw.sock.poll(200), "a reply nobody asked for"
        except Exception as exc:  # reported below
            problems.append(f"client {c}: {exc!r}")
        finally:
            raw.close()

    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = time.monotonic() - started
    assert not problems, problems[:5]
    assert len(results) == CLIENTS * REQUESTS
    for (c, i), (digest, w, h) in results.items():
        img = payload(c, i)
        assert (digest, w, h) == (hashlib.sha256(img.data).hexdigest(), img.width, img.height), (c, i)
    print(f"\nload: {CLIENTS} clients x {REQUESTS} echo requests in {elapsed:.1f} s "
          f"({CLIENTS * REQUESTS / elapsed:.0f} requests/s)")


def test_8_clients_on_the_face_engine_get_a_face_or_busy(tmp_path):
    """The real face engine with its shipped weights: 8 clients at once, small layers, a short queue. Each
    request is answered: a face of the layer's size, or `busy`."""
    b = BackendProcess(tmp_path, ["--queue-size", "3"]).start()
    try:
        with Client(b.address, timeout_s=60) as c:
            face = next(e for e in c.hello()["engines"] if e["name"] == "face")
        if not face["ready"]:
            pytest.skip(f"the face engine is not ready here: {face['reason']}")
        outcomes, problems = [], []

        def work(k):
            try:
                with Client(b.address, timeout_s=120) as c:
                    for i in range(1):
                        w, h = 48 + 8 * k, 64
                        sketch = bytes([255]) * (w * h * 4)
                        try:
                            out = c.run("face", {"image": Image(w, h, "RGBA8", sketch)},
                                         {"k": 3, "align": "template"})["face"]   # a blank page: no face to find
                            assert (out.width, out.height) == (w, h)
                            outcomes.append("face")
                        except BackendError as exc:
                            assert exc.code == ErrorCode.BUSY, (exc.code, str(exc))
                            outcomes.append("busy")
            except Exception as exc:
                problems.append(repr(exc))

        started = time.monotonic()
        threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert not problems, problems
        assert len(outcomes) == 8 and "face" in outcomes
        print(f"\nface load: 8 clients x 1 in {time.monotonic() - started:.1f} s: "
              f"{outcomes.count('face')} faces, {outcomes.count('busy')} busy")
        assert b.proc.poll() is None
    finally:
        b.stop()


def test_killed_backend_with_waiting_clients_then_restarted(tmp_path):
    """SIGKILL while four blocking clients and one async client wait on jobs: each is told the backend went
    away; after a restart on the same port the same client objects work again."""
    b = BackendProcess(tmp_path).start()
    blocking = [Client(b.address, timeout_s=60) for _ in range(4)]
    ac = AsyncClient(b.address, timeout_s=60)
    try:
        for c in blocking:
            assert c.run("echo", {"image": Image(1, 1, "RGBA8", b"1234")})["image"].tobytes() == b"1234"
        errors = []

        def wait_on_job(c):
            try:
                c.run("echo", {"image": Image(1, 1, "RGBA8", b"1234")}, {"delay": 30})
            except BackendError as exc:
                errors.append(exc.code)

        async_errors = []
        ac.submit("echo", {"image": Image(1, 1, "RGBA8", b"1234")}, {"delay": 30},
                  on_error=lambda j, e: async_errors.append(e.code))
        threads = [threading.Thread(target=wait_on_job, args=(c,)) for c in blocking]
        for t in threads:
            t.start()
        time.sleep(0.8)
        b.kill()
        deadline = time.monotonic() + 10
        while not async_errors and time.monotonic() < deadline:
            zmq.select([ac.fileno()], [], [], 0.05)
            ac.process()
        for t in threads:
            t.join(10)
        assert errors == [ErrorCode.DISCONNECTED] * 4
        assert async_errors == [ErrorCode.DISCONNECTED]
        again = BackendProcess(tmp_path, port=b.port).start()
        try:
            for k, c in enumerate(blocking):
                data = bytes([k]) * 4
                assert c.run("echo", {"image": Image(1, 1, "RGBA8", data)})["image"].tobytes() == data
            got = []
            ac.submit("echo", {"image": Image(1, 1, "RGBA8", b"back")},
                      on_result=lambda j, images: got.append(images["image"].tobytes()))
            deadline = time.monotonic() + 10
            while not got and time.monotonic() < deadline:
                zmq.select([ac.fileno()], [], [], 0.05)
                ac.process()
            assert got == [b"back"]
        finally:
            again.stop()
    finally:
        for c in blocking:
            c.close()
        ac.close()


@pytest.mark.parametrize("engine", ["oom_host", "oom_device"])
def test_an_engine_out_of_memory_is_too_large_and_the_service_lives(tmp_path, engine):
    b = BackendProcess(tmp_path, env={"FACESKETCH_EXTRA_ENGINES": "engines_faults,engines_faults_device"}).start()
    try:
        with Client(b.address, timeout_s=30) as c:
            with pytest.raises(BackendError) as err:
                c.run(engine, {"image": Image(1, 1, "RGBA8", b"1234")})
            assert err.value.code == ErrorCode.TOO_LARGE and "ran out of memory" in str(err.value)
            assert c.run("echo", {"image": Image(1, 1, "RGBA8", b"5678")})["image"].tobytes() == b"5678"
        assert b.proc.poll() is None
        assert "Traceback" not in b.log_path.read_text()
    finally:
        b.stop()
