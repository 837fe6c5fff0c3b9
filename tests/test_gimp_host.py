"""The GIMP 3 plug-in in real GIMP 3.0 (Debian trixie chroot), talking to a real backend on loopback.

Setup (module fixture, once): the cached chroot (tests/gimp_host/chroot.py; built in ~2 min on a clean
machine), a fresh GIMP profile with our plug-in installed by install.py's own functions (wheels for the
chroot's Python 3.13), a backend started as `facesketch serve` outside the chroot. Then two
headless GIMP runs of tests/gimp_host/driver.py, which calls our procedures through the PDB like any
script and writes a JSON report plus raw pixel dumps:
  run 1 (backend up): settings, Sketchify on an FS2K photo, the same through the `echo` engine on the
         photo / with a selection / on an offset layer smaller than the canvas / in grayscale, indexed,
         16-bit and float images, Sketch to face on an FS2K sketch (the face found in the layer, and the
         layer as the face template), the same through `echo_face` (tests/support/engines_host_echo_face.py,
         the face engine's parameters, a journal of what it received, a note, no_face for a blank layer),
         an image above the pixel limit;
  run 2 (backend stopped): Sketchify must fail with our "not reachable" message and add nothing;
  run 3 (plug-in without its bundled pyzmq): Sketchify fails with the friendly missing-package message.
When the sketch/face engines have no trained weights the backend reports them not ready: the tests
then assert the plug-in passes that reason on and adds no layer, and the layer machinery is checked
through the echo engine (the same code path with an engine that returns its input).
"""
from __future__ import annotations

import array
import io
import json
import os
import shutil
import subprocess
import sys
import time
import zlib

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

pytestmark = [pytest.mark.host, pytest.mark.timeout(1500)]

LAYER_RGBA, LAYER_GRAYA, LAYER_INDEXEDA = 1, 3, 5   # Gimp.ImageType values
SKETCHIFY, FACE = "facesketch-sketchify", "facesketch-sketch-to-face"
ELLIPSE = [40, 50, 120, 90]                            # x, y, w, h of the selection scenario
SMALL_RECT, SMALL_OFFSETS = [10, 20, 100, 80], [37, 121]
MAX_PIXELS = 1_000_000                                 # the test backend's limit (the "too large" case)


def _sample(kind: str) -> str:
    from gimp_host import harness
    path = harness.fs2k_sample(kind)
    if path is None:
        pytest.skip(f"no FS2K {kind} sample (tests/data/fs2k_samples or ../shared/datasets/fs2k)")
    return path


def _png_bytes(path: str) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    with Image.open(path) as im:
        im.convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def _skip_reason() -> str | None:
    if not sys.platform.startswith("linux"):
        return "the GIMP host test runs GIMP 3 in a Debian chroot: Linux only"
    if os.geteuid() != 0:
        return "the GIMP host test needs root (debootstrap, chroot, mount)"
    return None


@pytest.fixture(scope="module")
def gimp(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from conftest import BackendProcess
    from gimp_host import chroot, harness
    from facesketch_client import Client, Image

    t0 = time.monotonic()
    try:
        root = chroot.ensure_chroot()
    except chroot.ChrootUnavailable as exc:
        pytest.skip(f"cannot set up GIMP 3: {exc}")
    timings = {"chroot_s": round(time.monotonic() - t0, 1)}
    session = harness.GimpSession(root)
    backend = None
    try:
        t1 = time.monotonic()
        session.install_plugin()
        timings["install_s"] = round(time.monotonic() - t1, 1)
        # the real backend, as a user runs it (its own engines), plus the face engine's echo stand-in under its
        # own name "echo_face", which journals what it received
        backend_dir = tmp_path_factory.mktemp("gimp-backend")
        journal = backend_dir / "journal.jsonl"
        backend = BackendProcess(backend_dir, ["--max-pixels", str(MAX_PIXELS)],
                                 env={"FACESKETCH_EXTRA_ENGINES": "engines_host_echo_face",
                                      "FACESKETCH_TEST_JOURNAL": str(journal)}).start()
        client = Client(backend.address, timeout_s=60)
        caps = client.hello()
        client.close()
        engines = {e["name"]: e for e in caps["engines"]}

        photo = session.put("photo.png", _png_bytes(_sample("photo")))
        sketch = session.put("sketch.png", _png_bytes(_sample("sketch")))
        echo = {"engine": "echo"}
        echo_face = {"engine": "echo_face"}
        scenarios = [
            {"tag": "settings", "kind": "settings", "address": backend.address, "autostart": "off", "timeout": 300.0},
            {"tag": "sketch", "kind": "photo", "photo": photo, "proc": SKETCHIFY, "args": {}},
            {"tag": "sketch_depth", "kind": "selection", "photo": photo, "proc": SKETCHIFY, "ellipse": ELLIPSE,
             "args": {"style": "mix", "mix_1": 0.2, "mix_2": 0.3, "mix_3": 0.5, "add_depth": True}},
            {"tag": "echo", "kind": "photo", "photo": photo, "proc": SKETCHIFY, "args": dict(echo, opacity=70.0)},
            {"tag": "echo_sel", "kind": "selection", "photo": photo, "proc": SKETCHIFY, "ellipse": ELLIPSE,
             "args": echo},
            {"tag": "echo_off", "kind": "offset_layer", "photo": photo, "proc": SKETCHIFY, "rect": SMALL_RECT,
             "offsets": SMALL_OFFSETS, "args": echo},
            *[{"tag": f"echo_{m}", "kind": "mode", "mode": m, "photo": photo, "proc": SKETCHIFY, "args": echo}
              for m in ("gray", "indexed", "u16", "float")],
            # progress reports while the backend works, then a job that outlives the timeout
            {"tag": "echo_progress", "kind": "photo", "photo": photo, "proc": SKETCHIFY,
             "args": dict(echo, extra_params='{"delay": 1.5}')},
            {"tag": "timeout", "kind": "with_timeout", "timeout": 1.0, "restore": 300.0, "photo": photo,
             "proc": SKETCHIFY, "args": dict(echo, extra_params='{"delay": 4}')},
            # cancel in GIMP = the plug-in process is killed mid-job; the backend must take the next job
            {"tag": "killed", "kind": "killed", "photo": photo, "proc": SKETCHIFY,
             "args": dict(echo, extra_params='{"delay": 8}')},
            {"tag": "after_kill", "kind": "photo", "photo": photo, "proc": SKETCHIFY, "args": echo},
            {"tag": "face", "kind": "photo", "photo": sketch, "proc": FACE, "args": {}},
            {"tag": "face_echo", "kind": "photo", "photo": sketch, "proc": FACE, "args": echo},
            {"tag": "face_template", "kind": "photo", "photo": sketch, "proc": FACE, "args": {"align": "template"}},
            # what Sketch to face sends and how it places what comes back, through the face engine's stand-in
            {"tag": "face_auto_echo", "kind": "photo", "photo": sketch, "proc": FACE, "args": echo_face},
            {"tag": "face_paper_echo", "kind": "photo", "photo": photo, "proc": FACE,
             "args": dict(echo_face, outside="paper")},
            {"tag": "face_sel_echo", "kind": "selection", "photo": sketch, "proc": FACE, "ellipse": ELLIPSE,
             "args": echo_face},
            {"tag": "face_off_echo", "kind": "offset_layer", "photo": sketch, "proc": FACE, "rect": SMALL_RECT,
             "offsets": SMALL_OFFSETS, "args": dict(echo_face, align="template")},
            {"tag": "no_face", "kind": "blank", "size": [200, 150], "proc": FACE, "args": echo_face},
            {"tag": "big", "kind": "big", "size": [1100, 1000], "proc": SKETCHIFY, "args": echo},
        ]
        t1 = time.monotonic()
        killer = session.kill_plugin_when_asked("run1")
        run1 = session.run_driver(scenarios, "run1")
        killer.join(5)
        run1["killed_pid"] = killer.killed
        timings["gimp_run1_s"] = round(time.monotonic() - t1, 1)

        # the CLI's answer for the very pixels GIMP read, while the backend is still up
        cli = {}
        echo_src = run1["scenarios"]["echo"].get("source")
        if echo_src:  # the echo engine through the client library the CLI uses
            client = Client(backend.address, timeout_s=60)
            out = client.run("echo", {"image": Image(echo_src["width"], echo_src["height"], "RGBA8",
                                                     session.read_out(run1, echo_src["dump"]))},
                             reply_format="RGBA8")
            client.close()
            cli["echo"] = out["image"].tobytes()
        if engines.get("sketch", {}).get("ready") and run1["scenarios"]["sketch"].get("source"):
            cli["sketch"] = _cli_sketchify(session, run1, backend.address, tmp_path_factory.mktemp("cli"))

        backend.stop()
        stopped_address = backend.address
        backend = None
        t1 = time.monotonic()
        run2 = session.run_driver([
            {"tag": "stopped", "kind": "photo", "photo": photo, "proc": SKETCHIFY, "args": {}},
            {"tag": "stopped_settings", "kind": "settings", "address": stopped_address, "save": False},
        ], "run2", timeout=240)
        timings["gimp_run2_s"] = round(time.monotonic() - t1, 1)

        # run 3: the plug-in without its bundled pyzmq/msgpack (e.g. copied from a source checkout)
        shutil.rmtree(os.path.join(session.plugin_dir, "_vendor"))
        t1 = time.monotonic()
        run3 = session.run_driver([
            {"tag": "no_zmq", "kind": "photo", "photo": photo, "proc": SKETCHIFY, "args": {}},
        ], "run3", timeout=240)
        timings["gimp_run3_s"] = round(time.monotonic() - t1, 1)
        print(f"\nGIMP host test timings: {timings}", file=sys.stderr)
        yield {"session": session, "run1": run1, "run2": run2, "run3": run3, "engines": engines, "cli": cli,
               "address": stopped_address, "timings": timings, "journal": str(journal)}
    finally:
        if backend is not None:
            backend.stop()
        if os.environ.get("FACESKETCH_KEEP_GIMP_SESSION"):
            print(f"kept GIMP session at {session.base}", file=sys.stderr)
        else:
            session.cleanup()


def _cli_sketchify(session, run1, address, tmp) -> bytes:
    """`facesketch sketchify IN OUT --server ADDR` on the layer GIMP sent; RGBA bytes of OUT."""
    from PIL import Image
    rec = run1["scenarios"]["sketch"]
    src = rec["source"]
    raw = session.read_out(run1, src["dump"])
    inp, out = str(tmp / "in.png"), str(tmp / "out.png")
    Image.frombytes("RGBA", (src["width"], src["height"]), raw).save(inp)
    proc = subprocess.run([sys.executable, "-m", "facesketch", "sketchify", inp, out, "--server", address],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    with Image.open(out) as im:
        return im.convert("RGBA").tobytes()


def _scenario(gimp, tag, run="run1"):
    rec = gimp[run]["scenarios"].get(tag)
    assert rec is not None, f"scenario {tag} did not run; GIMP log:\n{gimp[run]['log'][-4000:]}"
    assert rec["status"] != "DRIVER_CRASH", rec["message"]
    return rec


def _assert_nothing_added(rec):
    assert rec["layers_after"] == rec["layers_before"], "a layer was added although the procedure failed"
    assert rec["new_layers"] == []
    assert rec["source_unchanged"]


def _assert_success(rec, n_new=1):
    assert rec["status"] == "SUCCESS", rec["message"]
    assert rec["source_unchanged"], "the original layer changed"
    assert len(rec["new_layers"]) == n_new, rec["new_layers"]
    # new layers sit directly above the source, the main result on top
    assert sorted(rec["new_positions"]) == list(range(rec["source_position"] - n_new, rec["source_position"]))


def _dump(gimp, name, run="run1"):
    return gimp["session"].read_out(gimp[run], name)


def _crop_rgba(data: bytes, width: int, x: int, y: int, w: int, h: int) -> bytes:
    return b"".join(data[((y + r) * width + x) * 4:((y + r) * width + x + w) * 4] for r in range(h))


def _journal(gimp) -> list:
    """What the echo_face stand-in received and how each job ended (one JSON line per event)."""
    with open(gimp["journal"], encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _echo_face_job(gimp, sent: bytes) -> dict:
    """The echo_face journal entry of the one job that received exactly these RGBA bytes."""
    crc = zlib.crc32(sent)
    hits = [e for e in _journal(gimp) if e["engine"] == "echo_face" and e["event"] == "start" and e["crc32"] == crc]
    assert len(hits) == 1, _journal(gimp)
    return hits[0]


def _locator_ready() -> bool:
    """Whether the backend has the face locator's weights (align auto with the real face engine needs them)."""
    from facesketch.backend.engines.face_placement import LocatorCache
    return LocatorCache().ready()[0]


# ---------------------------------------------------------------------------------------------

def test_plugin_registers_and_settings_procedure_reaches_backend(gimp):
    rec = _scenario(gimp, "settings")
    assert rec["status"] == "SUCCESS", rec["message"]
    assert rec["connected"] is True
    assert f"Connected to the facesketch backend at {gimp['address']}" in rec["answer"]
    assert "echo: ready" in rec["answer"]
    for name, info in gimp["engines"].items():
        if name != "echo" and not info["ready"]:
            assert f"{name}: not ready" in rec["answer"]   # the reason is shown in plain words
    # the settings procedure wrote the file the Krita plug-in reads too
    import json
    path = gimp["session"].host_path(gimp["session"].home + "/.config/facesketch/settings.json")
    saved = json.load(open(path))
    assert saved["address"] == gimp["address"] and saved["autostart"] is False and saved["timeout_s"] == 300.0


def _assert_engine_unavailable(rec, info, engine):
    """The run failed with the backend's reason (no such engine, or not ready and why), and nothing was added."""
    assert rec["status"] == "EXECUTION_ERROR"
    if info is None:
        assert f"has no '{engine}' engine" in rec["message"]
    else:
        assert f"'{engine}' engine is not ready" in rec["message"]
        assert info["reason"].strip() in rec["message"]
    _assert_nothing_added(rec)


def test_sketchify_photo(gimp):
    rec = _scenario(gimp, "sketch")
    info = gimp["engines"].get("sketch")
    if info is None or not info["ready"]:
        # no trained weights: the backend's own reason reaches the user, and nothing is added
        _assert_engine_unavailable(rec, info, "sketch")
        return
    _assert_success(rec)
    new = rec["new_layers"][0]
    src = rec["source"]
    assert new["name"] == "Sketch (style 1) of Background"
    assert (new["width"], new["height"], new["offsets"]) == (src["width"], src["height"], src["offsets"])
    assert _dump(gimp, new["dump"]) == gimp["cli"]["sketch"], "GIMP's layer differs from the CLI's result"


def test_sketchify_with_depth_and_selection(gimp):
    rec = _scenario(gimp, "sketch_depth")
    info = gimp["engines"].get("sketch")
    if info is None or not info["ready"]:
        assert rec["status"] == "EXECUTION_ERROR"
        _assert_nothing_added(rec)
        return
    _assert_success(rec, n_new=2)
    names = sorted(l["name"] for l in rec["new_layers"])
    assert names == ["Depth map of Background", "Sketch (style mix 0.2/0.3/0.5) of Background"]
    assert rec["new_layers"][0]["name"].startswith("Sketch")          # the sketch on top, the depth map below
    for layer in rec["new_layers"]:
        assert layer["offsets"] == ELLIPSE[:2] and [layer["width"], layer["height"]] == ELLIPSE[2:]
        assert "mask" in layer


def test_echo_layer_equals_input_and_client(gimp):
    """The whole transport through GIMP: new layer == the pixels GIMP read == what the client returns."""
    rec = _scenario(gimp, "echo")
    _assert_success(rec)
    new, src = rec["new_layers"][0], rec["source"]
    assert new["name"] == "Backend echo of Background"
    assert new["opacity"] == pytest.approx(70.0)
    assert new["type"] == LAYER_RGBA
    assert (new["width"], new["height"], new["offsets"]) == (src["width"], src["height"], src["offsets"])
    sent = _dump(gimp, src["dump"])
    assert _dump(gimp, new["dump"]) == sent
    assert gimp["cli"]["echo"] == sent, "the client outside GIMP got other pixels back"
    assert len(set(sent[0::4])) > 20, "the sample photo should not be flat"


def test_selection_bounds_and_mask(gimp):
    rec = _scenario(gimp, "echo_sel")
    _assert_success(rec)
    new, src = rec["new_layers"][0], rec["source"]
    x, y, w, h = ELLIPSE
    assert rec["selection_bounds"] == [x, y, x + w, y + h]
    assert new["offsets"] == [x, y] and (new["width"], new["height"]) == (w, h)
    assert _dump(gimp, new["dump"]) == _crop_rgba(_dump(gimp, src["dump"]), src["width"], x, y, w, h)
    # the mask is the selection: outside it the new layer is transparent, inside it opaque
    mask = _dump(gimp, new["mask"])
    canvas_w = rec["canvas"][0]
    selection = array.array("f", _dump(gimp, rec["selection_dump"]))
    sel = [selection[(y + r) * canvas_w + x + c] for r in range(h) for c in range(w)]
    assert len(mask) == w * h
    assert all((s == 0.0) == (m == 0) for s, m in zip(sel, mask)), "mask and selection disagree on 'outside'"
    assert all((s == 1.0) == (m == 255) for s, m in zip(sel, mask)), "mask and selection disagree on 'inside'"
    assert mask[0] == 0 and mask[w - 1] == 0 and mask[-1] == 0          # ellipse corners: outside
    assert mask[(h // 2) * w + w // 2] == 255                           # centre: inside
    assert 0 < sum(m == 0 for m in mask) < w * h // 3                   # roughly 1 - pi/4 of the box


def test_offset_layer_smaller_than_canvas(gimp):
    rec = _scenario(gimp, "echo_off")
    _assert_success(rec)
    new, src = rec["new_layers"][0], rec["source"]
    assert src["offsets"] == SMALL_OFFSETS and [src["width"], src["height"]] == SMALL_RECT[2:]
    assert new["offsets"] == SMALL_OFFSETS and [new["width"], new["height"]] == SMALL_RECT[2:]
    assert new["name"] == "Backend echo of small offset layer"
    assert _dump(gimp, new["dump"]) == _dump(gimp, src["dump"])


@pytest.mark.parametrize("mode, layer_type", [("gray", LAYER_GRAYA), ("indexed", LAYER_INDEXEDA),
                                              ("u16", LAYER_RGBA), ("float", LAYER_RGBA)])
def test_image_modes_and_precisions(gimp, mode, layer_type):
    rec = _scenario(gimp, f"echo_{mode}")
    _assert_success(rec)
    new, src = rec["new_layers"][0], rec["source"]
    assert new["type"] == layer_type, "the new layer must match the image's base type"
    assert _dump(gimp, new["dump"]) == _dump(gimp, src["dump"]), f"{mode}: pixels changed on the way"


def test_sketch_to_face(gimp):
    info = gimp["engines"].get("face")
    if info is None or not info["ready"]:
        for tag in ("face", "face_template"):
            _assert_engine_unavailable(_scenario(gimp, tag), info, "face")
    else:
        # the layer as the face template (the behaviour before the engine could find faces)
        rec = _scenario(gimp, "face_template")
        _assert_success(rec)
        assert rec["new_layers"][0]["name"].startswith("Face (female) of ")
        # the default: the face found in the layer, which needs the locator's weights
        rec = _scenario(gimp, "face")
        if _locator_ready():
            _assert_success(rec)
            new, src = rec["new_layers"][0], rec["source"]
            assert (new["width"], new["height"], new["offsets"]) == (src["width"], src["height"], src["offsets"])
            assert new["has_alpha"]
        else:
            assert rec["status"] == "EXECUTION_ERROR" and "locator" in rec["message"], rec["message"]
            _assert_nothing_added(rec)
    # the face procedure's own layer machinery, through the echo engine
    rec = _scenario(gimp, "face_echo")
    _assert_success(rec)
    assert _dump(gimp, rec["new_layers"][0]["dump"]) == _dump(gimp, rec["source"]["dump"])


def test_sketch_to_face_finds_the_face_in_the_layer_by_default(gimp):
    rec = _scenario(gimp, "face_auto_echo")
    _assert_success(rec)
    new, src = rec["new_layers"][0], rec["source"]
    sent = _dump(gimp, src["dump"])
    job = _echo_face_job(gimp, sent)
    assert job["params"]["align"] == "auto" and job["params"]["outside"] == "transparent", job["params"]
    assert job["params"]["gender"] == "female" and job["outputs"] == ["face"]
    # the result layer: where the input is, with its alpha (the stand-in returns the layer itself)
    assert new["name"] == "Face (female) of Background"
    assert (new["width"], new["height"], new["offsets"]) == (src["width"], src["height"], src["offsets"])
    assert new["has_alpha"] and new["type"] == LAYER_RGBA
    assert _dump(gimp, new["dump"]) == sent
    # the engine's note reaches the user (Gimp.message: on the console in batch mode)
    assert f"Drew the face at x 0, y 0, {src['width']} x {src['height']} pixels." in gimp["run1"]["log"]


def test_sketch_to_face_paper_around_the_face(gimp):
    rec = _scenario(gimp, "face_paper_echo")
    _assert_success(rec)
    job = _echo_face_job(gimp, _dump(gimp, rec["source"]["dump"]))
    assert job["params"]["align"] == "auto" and job["params"]["outside"] == "paper", job["params"]


def test_sketch_to_face_on_a_selection_and_an_offset_layer(gimp):
    rec = _scenario(gimp, "face_sel_echo")
    _assert_success(rec)
    new, src = rec["new_layers"][0], rec["source"]
    x, y, w, h = ELLIPSE
    sent = _crop_rgba(_dump(gimp, src["dump"]), src["width"], x, y, w, h)
    assert _echo_face_job(gimp, sent)["params"]["align"] == "auto"
    assert new["offsets"] == [x, y] and (new["width"], new["height"]) == (w, h) and "mask" in new
    assert _dump(gimp, new["dump"]) == sent
    assert f"Drew the face at x 0, y 0, {w} x {h} pixels." in gimp["run1"]["log"]
    # the layer as the face template, on a layer smaller than the canvas and away from its origin
    rec = _scenario(gimp, "face_off_echo")
    _assert_success(rec)
    new, src = rec["new_layers"][0], rec["source"]
    sent = _dump(gimp, src["dump"])
    assert _echo_face_job(gimp, sent)["params"]["align"] == "template"
    assert new["offsets"] == SMALL_OFFSETS and [new["width"], new["height"]] == SMALL_RECT[2:]
    assert _dump(gimp, new["dump"]) == sent


def test_no_face_is_explained_and_the_image_is_unchanged(gimp):
    from facesketch_client import jobs
    rec = _scenario(gimp, "no_face")
    assert rec["status"] == "EXECUTION_ERROR"
    assert rec["message"] == jobs.no_face_message("GIMP"), rec["message"]
    assert rec["message"].startswith("No face was found in this layer. Draw the face as a line drawing")
    assert "\u201cThe layer is the face template\u201d" in rec["message"] and "Traceback" not in rec["message"]
    _assert_nothing_added(rec)
    refused = [e for e in _journal(gimp) if e["engine"] == "echo_face" and e["event"] == "no_face"]
    assert len(refused) == 1 and refused[0]["shape"] == [150, 200, 4] and refused[0]["params"]["align"] == "auto"


def test_progress_and_timeout(gimp):
    rec = _scenario(gimp, "echo_progress")
    _assert_success(rec)
    assert rec["seconds"] >= 1.5
    assert _dump(gimp, rec["new_layers"][0]["dump"]) == _dump(gimp, rec["source"]["dump"])
    rec = _scenario(gimp, "timeout")
    assert rec["status"] == "EXECUTION_ERROR"
    assert "did not answer within 1 s" in rec["message"] and "raise the timeout in Filters" in rec["message"]
    _assert_nothing_added(rec)
    # the backend was not left stuck: the scenarios after it (face_echo, big) got answers
    assert _scenario(gimp, "face_echo")["status"] == "SUCCESS"


def test_cancel_kills_plugin_and_backend_goes_on(gimp):
    assert gimp["run1"]["killed_pid"], "the test found no facesketch.py process to kill"
    rec = _scenario(gimp, "killed")
    assert rec["status"] != "SUCCESS"
    _assert_nothing_added(rec)
    after = _scenario(gimp, "after_kill")
    _assert_success(after)
    # the 8 s job of the vanished plug-in was dropped, not finished first
    assert after["seconds"] < 6, f"the next job waited {after['seconds']} s"
    assert _dump(gimp, after["new_layers"][0]["dump"]) == _dump(gimp, after["source"]["dump"])


def test_too_large_image_is_refused_in_plain_words(gimp):
    rec = _scenario(gimp, "big")
    assert rec["status"] == "EXECUTION_ERROR"
    assert "1100x1000 = 1.1 megapixels" in rec["message"] and "at most 1.0 megapixels" in rec["message"]
    assert rec["layers_after"] == 1


def test_backend_stopped(gimp):
    rec = _scenario(gimp, "stopped", "run2")
    assert rec["status"] == "EXECUTION_ERROR"
    assert f"Backend not reachable at {gimp['address']}" in rec["message"]
    assert "Start a local backend automatically" in rec["message"] and "Face sketch backend" in rec["message"]
    assert "Traceback" not in rec["message"]
    _assert_nothing_added(rec)
    settings = _scenario(gimp, "stopped_settings", "run2")
    assert settings["status"] == "SUCCESS" and settings["connected"] is False
    assert "not reachable" in settings["answer"]


def test_missing_pyzmq_is_explained(gimp):
    rec = _scenario(gimp, "no_zmq", "run3")
    assert rec["status"] == "EXECUTION_ERROR"
    assert "Face sketch needs the pyzmq package" in rec["message"] or "needs the msgpack package" in rec["message"]
    assert "install.py" in rec["message"] and "Traceback" not in rec["message"]
    _assert_nothing_added(rec)
