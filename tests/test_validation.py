"""Malformed fields get their typed error (bad_header / bad_param), never `internal`: through a real backend.

Each case once crashed validation with a TypeError/ValueError (an unhashable list or map where a string
belongs, int(NaN)), which the service answered `internal` with a traceback in its log."""
import math

import pytest

from facesketch_client import protocol
from facesketch_client.protocol import ErrorCode

from rawwire import Raw

PIXEL = protocol.image_spec("image", 1, 1, "RGBA8")


def run(request_id, **fields):
    header = {"op": "run", "id": request_id, "engine": "echo", "images": [dict(PIXEL)]}
    header.update(fields)
    return header


def with_spec(request_id, **spec):
    return run(request_id, images=[dict(PIXEL, **spec)])


CASES = [
    ("reply_format list", run("rf-list", reply_format=["RGBA8"]), ErrorCode.BAD_HEADER),
    ("reply_format map", run("rf-map", reply_format={"a": 1}), ErrorCode.BAD_HEADER),
    ("reply_format int", run("rf-int", reply_format=3), ErrorCode.BAD_HEADER),
    ("format list", with_spec("fmt-list", format=["RGBA8"]), ErrorCode.BAD_HEADER),
    ("format map", with_spec("fmt-map", format={"RGBA8": 1}), ErrorCode.BAD_HEADER),
    ("name list", with_spec("name-list", name=["image"]), ErrorCode.BAD_HEADER),
    ("name map", with_spec("name-map", name={"image": 1}), ErrorCode.BAD_HEADER),
    ("name int", with_spec("name-int", name=7), ErrorCode.BAD_HEADER),
    ("stride string", with_spec("stride-str", stride="4"), ErrorCode.BAD_HEADER),
    ("stride nan", with_spec("stride-nan", stride=math.nan), ErrorCode.BAD_HEADER),
    ("width inf", with_spec("width-inf", width=math.inf), ErrorCode.BAD_HEADER),
    ("outputs of maps", run("out-map", outputs=[{"image": 1}]), ErrorCode.BAD_HEADER),
    ("outputs a map", run("out-map2", outputs={"image": 1}), ErrorCode.BAD_HEADER),
    ("supersede map", run("sup-map", supersede={"a": 1}), ErrorCode.BAD_HEADER),
    ("engine list", run("eng-list", engine=["echo"]), ErrorCode.UNKNOWN_ENGINE),
    ("face k nan", run("k-nan", engine="face", params={"k": math.nan}), ErrorCode.BAD_PARAM),
    ("face k inf", run("k-inf", engine="face", params={"k": math.inf}), ErrorCode.BAD_PARAM),
    ("face k -inf", run("k-minf", engine="face", params={"k": -math.inf}), ErrorCode.BAD_PARAM),
    ("face k list", run("k-list", engine="face", params={"k": [1]}), ErrorCode.BAD_PARAM),
    ("face master inf", run("m-inf", engine="face", params={"master": math.inf}), ErrorCode.BAD_PARAM),
    ("echo delay nan", run("d-nan", params={"delay": math.nan}), ErrorCode.BAD_PARAM),
    ("face gender map", run("g-map", engine="face", params={"gender": {"a": 1}}), ErrorCode.BAD_PARAM),
    ("deeply nested version", {"v": [[[[[[[[1]]]]]]]], "op": "hello", "id": "deep"}, ErrorCode.VERSION_MISMATCH),
]


@pytest.mark.parametrize("name,header,code", CASES, ids=[c[0] for c in CASES])
def test_malformed_field_gets_its_typed_error_not_internal(backend, name, header, code):
    raw = Raw(backend.address)
    try:
        if "v" in header:
            import msgpack
            raw.send(msgpack.packb(header), b"1234")
        else:
            raw.send_header(header, b"1234")
        reply, _ = raw.recv_final(header["id"])
        assert reply["kind"] == "error" and reply["code"] == code, reply
        assert len(reply["message"]) < 400  # the peer's value is quoted short, whatever its size
        raw.send_header(run("after"), b"abcd")
        reply, frames = raw.recv_final("after")
        assert reply["kind"] == "result" and frames == [b"abcd"]
    finally:
        raw.close()
    assert backend.proc.poll() is None
    assert "Traceback" not in backend.log_path.read_text()
