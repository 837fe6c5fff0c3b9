"""`facesketch serve --ray`: the ZeroMQ front end with jobs on Ray actors, on a real local Ray instance with two
CPU actors. Requests spread over both actors, every reply its own; cancel and supersede keep their meaning;
killing an actor mid-run loses only its job (worker_lost) and later requests succeed."""
import os
import re
import signal
import threading
import time

import msgpack
import pytest

pytest.importorskip("ray", reason="Ray is optional (scale-out only): .venv/bin/pip install ray to run these tests")

from facesketch_client import BackendError, Client, Image, protocol  # noqa: E402
from facesketch_client.protocol import ErrorCode  # noqa: E402

from conftest import BackendProcess  # noqa: E402
from rawwire import Raw  # noqa: E402
from test_load import payload, run_header  # noqa: E402

ONE = [protocol.image_spec("image", 1, 1, "RGBA8")]


@pytest.fixture(scope="module")
def ray_backend(tmp_path_factory):
    b = BackendProcess(tmp_path_factory.mktemp("ray"), ["--ray", "--ray-actors", "2", "--queue-size", "64"],
                       env={"RAY_DISABLE_USAGE_STATS": "1"}).start(timeout=300)
    m = re.search(r"Ray: 2 CPU worker\(s\) \(pids (\d+), (\d+)\)", b.log_path.read_text())
    assert m, b.log_path.read_text()[-2000:]
    b.actor_pids = [int(m.group(1)), int(m.group(2))]
    yield b
    b.stop()


def final(raw, request_id, timeout=60):
    return raw.recv_final(request_id, timeout)


def test_hello_and_validation_are_the_front_ends(ray_backend):
    with Client(ray_backend.address, timeout_s=30) as c:
        caps = c.hello()
        assert caps["device"] == "cpu" and {e["name"] for e in caps["engines"]} >= {"echo", "face", "notready"}
        assert next(e for e in caps["engines"] if e["name"] == "notready")["ready"] is False
        with pytest.raises(BackendError) as err:
            c.run("echo", {"image": Image(1, 1, "RGBA8", b"1234")}, {"delay": float("nan")})
        assert err.value.code == ErrorCode.BAD_PARAM
        with pytest.raises(BackendError) as err:
            c.run("notready", {"image": Image(1, 1, "RGBA8", b"1234")})
        assert err.value.code == ErrorCode.NOT_READY


def test_load_spreads_over_both_actors_and_every_reply_is_its_own(ray_backend):
    clients, requests = 16, 10
    served, problems = {}, []

    def work(c):
        raw = Raw(ray_backend.address)
        try:
            for i in range(requests):
                img = payload(c, i)
                rid = f"c{c}-r{i}"
                raw.send(msgpack.packb(run_header(rid, img, params={"delay": 0.01})), img.data)
                header, frames = final(raw, rid)
                assert header["kind"] == "result", header
                assert frames == [img.data] and header["images"][0]["width"] == img.width, rid
                assert (c, i) not in served
                served[(c, i)] = header["worker"]
            assert not raw.sock.poll(200), "a reply nobody asked for"
        except Exception as exc:
            problems.append(f"client {c}: {exc!r}")
        finally:
            raw.close()

    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not problems, problems[:5]
    assert len(served) == clients * requests
    per_actor = [list(served.values()).count(k) for k in (0, 1)]
    print(f"\nray load: {clients * requests} requests in {time.monotonic() - started:.1f} s; per actor {per_actor}")
    assert all(n > 0 for n in per_actor), per_actor


def test_supersede_and_cancel_keep_their_meaning(ray_backend):
    raw = Raw(ray_backend.address)
    try:
        for k in range(2):  # both actors busy, so the strokes queue in the front end
            raw.send_header({"op": "run", "id": f"busy{k}", "engine": "echo", "params": {"delay": 1.5},
                             "images": ONE}, b"1234")
        for k in range(2):
            assert raw.recv()[0]["kind"] == "accepted"
        time.sleep(0.3)
        for i in range(3):
            raw.send_header({"op": "run", "id": f"stroke{i}", "engine": "echo", "supersede": "live",
                             "images": ONE}, bytes([i]) * 4)
        outcomes = {}
        while len(outcomes) < 5:
            header, frames = raw.recv(30)
            if header["kind"] == "result":
                outcomes[header["id"]] = frames
            elif header["kind"] == "error":
                outcomes[header["id"]] = header["code"]
        assert outcomes == {"busy0": [b"1234"], "busy1": [b"1234"], "stroke0": ErrorCode.SUPERSEDED,
                            "stroke1": ErrorCode.SUPERSEDED, "stroke2": [b"\2" * 4]}
    finally:
        raw.close()
    with Client(ray_backend.address, timeout_s=30) as c:
        cancel_at = time.monotonic() + 0.5
        started = time.monotonic()
        with pytest.raises(BackendError) as err:
            c.run("echo", {"image": Image(1, 1, "RGBA8", b"1234")}, {"delay": 20},
                  is_cancelled=lambda: time.monotonic() > cancel_at)
        assert err.value.code == ErrorCode.CANCELLED and time.monotonic() - started < 5


def test_killing_an_actor_mid_run_loses_only_its_job(ray_backend):
    raw = Raw(ray_backend.address)
    try:
        for k in range(2):
            raw.send_header({"op": "run", "id": f"long{k}", "engine": "echo", "params": {"delay": 3.0},
                             "images": ONE}, b"1234")
        running = set()
        deadline = time.monotonic() + 30
        while len(running) < 2:  # both jobs report progress: one on each actor
            assert time.monotonic() < deadline, "the jobs did not start on both actors"
            header, _ = raw.recv(30)
            if header["kind"] == "progress":
                running.add(header["id"])
        victim = ray_backend.actor_pids[0]
        os.kill(victim, signal.SIGKILL)
        outcomes = {}
        while len(outcomes) < 2:
            header, frames = raw.recv(60)
            if header["kind"] in ("result", "error"):
                outcomes[header["id"]] = header.get("code") or ("result", header["worker"])
        assert sorted(outcomes.values(), key=str) == sorted([ErrorCode.WORKER_LOST, ("result", 1)], key=str), outcomes
        # later requests succeed, and the restarted actor serves again
        seen, deadline = set(), time.monotonic() + 120
        i = 0
        while seen != {0, 1}:
            assert time.monotonic() < deadline, f"the restarted actor did not come back (served by {seen})"
            i += 1
            raw.send_header({"op": "run", "id": f"after{i}", "engine": "echo", "params": {"delay": 0.05},
                             "images": ONE}, b"abcd")
            header, frames = final(raw, f"after{i}")
            assert header["kind"] == "result" and frames == [b"abcd"], header
            seen.add(header["worker"])
    finally:
        raw.close()
    assert ray_backend.proc.poll() is None
