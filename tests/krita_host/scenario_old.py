"""Test hook: a scripted session in real Krita, driven through the docker's widgets and actions.

Runs only when FACESKETCH_KRITA_SCENARIO names a JSON config (tests/test_krita_host.py writes it):
    {"report": path, "backend_pid": int, "screenshot_dir": path or null, "quit": true, "time_limit_s": 240,
     "docs_sketch": optional image drawn into the Sketch layer for the face screenshot}
It writes a JSON report of named checks, then quits Krita. kritarunner and Krita exit 0 whatever
happens inside, so the report is the verdict.

The face and sketch engines may have no trained weights yet. The scenario then checks the real
not-ready path (status line gives the backend's reason, no layers added, strokes intact) and runs the
same docker machinery (live submission with supersede, preview update, shadow guide, Keep, Sketchify
as a new layer, BGRA round trip) with the backend's `echo` engine in their place: the workflows'
`engine` attribute is the hidden, test-only override.
"""
from __future__ import annotations

import json
import os
import signal
import time
import traceback
import zlib

from krita import Krita

from . import app as app_module
from . import layers
from .docker import DOCKER_ID
from .qt import QApplication, QTimer, HORIZONTAL, VERTICAL
from .workflow import FaceCanvas, GUIDE_NAME, PREVIEW_NAME, doc_key

_runner = None


def start(config_path: str, window) -> None:
    global _runner
    with open(config_path, "r", encoding="utf-8") as fh:
        config = json.load(fh)
    _runner = Runner(config, window)
    _runner.start()


class Wait:
    def __init__(self, predicate, timeout: float, what: str):
        self.predicate, self.timeout, self.what = predicate, timeout, what


class Runner:
    def __init__(self, config: dict, window):
        self.config = config
        self.window = window
        self.report = {"checks": [], "events": [], "ok": False, "krita_version": Krita.instance().version()}
        self.t0 = time.monotonic()
        self.gen = None
        self.finished = False

    # -- driver --------------------------------------------------------------------------------

    def start(self) -> None:
        with open(self.config["report"] + ".started", "w") as fh:  # tells the test's watchdog the plug-in runs
            fh.write(str(time.time()))
        self.gen = scenario(self)
        limit = float(self.config.get("time_limit_s", 240))
        QTimer.singleShot(int(limit * 1000), lambda: self.finish(f"scenario time limit of {limit:g} s reached"))
        QTimer.singleShot(0, lambda: self._advance(None))

    def _advance(self, value) -> None:
        if self.finished:
            return
        try:
            request = self.gen.send(value)
        except StopIteration:
            self.finish(None)
            return
        except Exception:
            self.finish("scenario raised:\n" + traceback.format_exc())
            return
        if isinstance(request, Wait):
            deadline = time.monotonic() + request.timeout
            self._poll_wait(request, deadline)
        else:
            QTimer.singleShot(int(float(request) * 1000), lambda: self._advance(None))

    def _poll_wait(self, request: Wait, deadline: float) -> None:
        if self.finished:
            return
        try:
            ok = bool(request.predicate())
        except Exception:
            self.finish(f"waiting for {request.what} raised:\n" + traceback.format_exc())
            return
        if ok or time.monotonic() >= deadline:
            if not ok:
                self.event(f"timed out after {request.timeout:g} s waiting for {request.what}")
            self._advance(ok)
        else:
            QTimer.singleShot(50, lambda: self._poll_wait(request, deadline))

    def check(self, name: str, ok, detail="") -> bool:
        print(f"[facesketch scenario] {'ok ' if ok else 'BAD'} {name}", flush=True)
        self.report["checks"].append({"name": name, "ok": bool(ok), "detail": detail if isinstance(detail, (str, int, float, list, dict)) else repr(detail)})
        return bool(ok)

    def event(self, text: str) -> None:
        self.report["events"].append(f"{time.monotonic() - self.t0:7.2f}s {text}")

    def finish(self, error) -> None:
        if self.finished:
            return
        self.finished = True
        a = app_module.get()
        self.report["error"] = error
        self.report["seconds"] = round(time.monotonic() - self.t0, 2)
        self.report["face_log"] = [_jsonable(e) for e in a.face.log]
        self.report["sketchify_log"] = [_jsonable(e) for e in a.sketchify.log]
        self.report["status_history"] = list(a.status.history)
        self.report["environment"] = _environment(a)
        self.report["ok"] = error is None and all(c["ok"] for c in self.report["checks"])
        path = self.config["report"]
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.report, fh, indent=1)
        os.replace(tmp, path)
        if self.config.get("quit", True):
            QTimer.singleShot(100, _quit)


def _environment(a) -> dict:
    """Where the plug-in's dependencies and settings came from (the test checks they are the vendored ones)."""
    import sys
    import msgpack
    import zmq
    from facesketch_client import settings as fs_settings
    return {"python": sys.version, "zmq": zmq.__version__, "zmq_file": zmq.__file__,
            "msgpack_file": msgpack.__file__, "settings_path": fs_settings.path(),
            "address": a.connection.settings.address, "plugin_file": __file__}


def _jsonable(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))}


def _quit() -> None:
    k = Krita.instance()
    for d in list(k.documents()):
        d.setModified(False)
    action = k.action("file_quit")
    if action is not None:
        action.trigger()
    else:
        QApplication.quit()


# -- pixels ---------------------------------------------------------------------------------------


def stroke(node, size: int, points, radius: int) -> bytes:
    """Draw opaque black discs along a polyline into `node` (the test's 'brush'); returns the layer's bytes."""
    data = bytearray(node.pixelData(0, 0, size, size))
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(steps + 1):
            cx = round(x0 + (x1 - x0) * i / steps)
            cy = round(y0 + (y1 - y0) * i / steps)
            for y in range(max(0, cy - radius), min(size, cy + radius + 1)):
                for x in range(max(0, cx - radius), min(size, cx + radius + 1)):
                    if (x - cx) ** 2 + (y - cy) ** 2 <= radius * radius:
                        o = (y * size + x) * 4
                        data[o:o + 4] = b"\x00\x00\x00\xff"
    node.setPixelData(bytes(data), 0, 0, size, size)
    return bytes(data)


def on_white(data: bytes) -> bytes:
    """Independent re-implementation of 'composite over white' for opaque-or-empty strokes."""
    out = bytearray(len(data))
    for o in range(0, len(data), 4):
        if data[o + 3] == 255:
            out[o:o + 4] = data[o:o + 4]
        else:
            out[o:o + 4] = b"\xff\xff\xff\xff"
    return bytes(out)


def names(doc) -> list:
    """Top-level layer names (Krita shows the global selection as a selection mask there: left out)."""
    return [n.name() for n in doc.topLevelNodes() if n.type() != "selectionmask"]


def find(doc, name):
    return next((n for n in doc.topLevelNodes() if n.name() == name), None)


# -- the scenario ---------------------------------------------------------------------------------


def scenario(r: Runner):
    k = Krita.instance()
    a = app_module.get()
    face, sk, conn, status = a.face, a.sketchify, a.connection, a.status
    qwin = _window().qwindow()
    screen = QApplication.primaryScreen()
    if screen is not None:  # no window manager under Xvfb: 'maximize' by hand
        qwin.setGeometry(screen.availableGeometry())

    docker = next((d for d in k.dockers() if d.objectName() == DOCKER_ID), None)
    r.check("docker registered", docker is not None, [d.objectName() for d in k.dockers()][:60])
    if docker is None:
        return
    docker.setVisible(True)
    docker.raise_()
    for other in k.dockers():  # room for the docker in screenshots: keep only tools and layers beside it
        if other.objectName() not in (DOCKER_ID, "KisLayerBox", "ToolBox"):
            other.setVisible(False)
    layers_docker = next((d for d in k.dockers() if d.objectName() == "KisLayerBox"), None)
    if layers_docker is not None:
        qwin.resizeDocks([layers_docker, docker], [270, 620], VERTICAL)
    qwin.resizeDocks([docker], [400], HORIZONTAL)
    r.check("docker title", docker.windowTitle() == "Face Sketch", docker.windowTitle())
    actions = {i: k.action(i) is not None for i in ("facesketch_sketchify", "facesketch_new_face_canvas",
                                                      "facesketch_generate_face", "facesketch_settings")}
    r.check("actions registered with ids", all(actions.values()), actions)

    ok = yield Wait(lambda: conn.state == "connected", 30, "the backend hello")
    r.check("connected to backend", ok, conn.message)
    if not ok:
        return
    engines = {e["name"]: e for e in conn.caps.get("engines", [])}
    r.report["engines"] = {n: {"ready": e.get("ready"), "reason": e.get("reason")} for n, e in engines.items()}
    r.check("backend has echo, face and sketch engines", {"echo", "face", "sketch"} <= set(engines), sorted(engines))

    # ---- new face canvas
    docker.new_canvas_button.click()
    yield Wait(lambda: FaceCanvas.of(k.activeDocument()) is not None and k.activeDocument().activeNode() is not None
               and k.activeDocument().activeNode().name() == "Sketch", 5, "the new face canvas with Sketch selected")
    doc = k.activeDocument()
    canvas = FaceCanvas.of(doc)
    r.check("new face canvas is the active document with layout metadata", canvas is not None)
    if canvas is None:
        return
    size = canvas.size
    r.check("canvas size from hello (or 256)", size == conn.face_canvas_size() and doc.height() == size
            and doc.width() == 2 * size, [doc.width(), doc.height(), size])
    initial_layers = ["Background", "Face template", GUIDE_NAME, "Sketch", PREVIEW_NAME]
    r.check("layers: background, template, (hidden) guide, sketch, (empty) preview", names(doc) == initial_layers,
            names(doc))
    r.check("guide hidden and preview empty at first", not find(doc, GUIDE_NAME).visible()
            and find(doc, PREVIEW_NAME).bounds().width() <= 0, find(doc, PREVIEW_NAME).bounds().width())
    bg = bytes(find(doc, "Background").pixelData(0, 0, 2 * size, size))
    r.check("background is white", bg == b"\xff" * len(bg))
    template = find(doc, "Face template")
    tpx = bytes(template.pixelData(0, 0, size, size))
    r.check("template is locked and has guides", template.locked() and any(tpx[3::4]))
    sketch = canvas.sketch()
    r.check("sketch layer is empty and active", not any(bytes(sketch.pixelData(0, 0, size, size)))
            and doc.activeNode() is not None and doc.activeNode().name() == "Sketch",
            doc.activeNode().name() if doc.activeNode() else None)

    s = size / 256.0
    eye = [(int(70 * s), int(120 * s)), (int(110 * s), int(112 * s))]
    drawn = stroke(sketch, size, eye, max(1, int(2 * s)))

    # ---- the real face engine (not ready without trained weights)
    face_ready = engines.get("face", {}).get("ready", False)
    docker.generate_button.click()
    entry = face.log[-1] if face.log else None
    ok = yield Wait(lambda: entry is not None and entry["state"] != "submitted", 30, "the face engine's answer")
    if face_ready:
        r.check("real face engine: face generated", ok and entry["state"] == "done", entry and entry["state"])
        r.check("real face engine: preview layer made", find(doc, PREVIEW_NAME) is not None, names(doc))
        if find(doc, PREVIEW_NAME) is not None:
            fpx = bytes(find(doc, PREVIEW_NAME).pixelData(canvas.preview_x, 0, size, size))
            r.check("real face engine: preview is opaque and not blank",
                    min(fpx[3::4]) == 255 and len(set(fpx[0::4])) > 8)
            yield 0.3
            if r.config.get("docs_sketch"):
                yield from _docs_face_shot(r, docker, face, sketch, size)
            else:
                _screenshot(r, "krita-docker-face.png")
        docker.shadow_check.setChecked(True)
        docker.generate_button.click()
        entry = face.log[-1]
        ok = yield Wait(lambda: entry["state"] != "submitted", 60, "the face engine's shadow")
        guide = find(doc, GUIDE_NAME)
        gpx = bytes(guide.pixelData(0, 0, size, size)) if guide is not None else b""
        r.check("real face engine: shadow guide filled from the engine's shadow output",
                ok and entry["state"] == "done" and entry["outputs"] == ["face", "shadow"] and guide.visible()
                and len(gpx) == size * size * 4 and max(gpx[3::4]) > 0,
                {"state": entry["state"], "outputs": entry["outputs"], "visible": guide is not None and guide.visible(),
                 "alpha": [min(gpx[3::4]), max(gpx[3::4])] if gpx else None, "values": len(set(gpx[0::4]))})
        docker.shadow_check.setChecked(False)
    else:
        r.check("not-ready face: backend said not_ready", ok and entry["state"] == "not_ready", entry and entry["state"])
        reason = _reason(entry)
        r.check("not-ready face: status line gives the backend's reason", len(reason) > 10 and reason in status.text,
                {"status": status.text, "reason": reason, "hello": engines.get("face", {}).get("reason")})
        r.check("not-ready face: no layers added, preview still empty", names(doc) == initial_layers
                and find(doc, PREVIEW_NAME).bounds().width() <= 0, names(doc))
        r.check("not-ready face: strokes intact", bytes(sketch.pixelData(0, 0, size, size)) == drawn)
        # live mode on a not-ready engine: one request per new stroke, no retry loop
        n_before = len(face.log)
        docker.live_check.setChecked(True)
        yield 1.0
        r.check("not-ready live: nothing resent for an unchanged sketch", len(face.log) == n_before,
                len(face.log) - n_before)
        drawn = stroke(sketch, size, [(int(100 * s), int(226 * s)), (int(128 * s), int(234 * s)), (int(156 * s), int(226 * s))],
                       max(1, int(2 * s)))  # chin
        yield Wait(lambda: len(face.log) > n_before and face.log[-1]["state"] != "submitted", 10, "not-ready live")
        yield 1.0  # time for a retry loop to show itself, if there were one
        r.check("not-ready live: exactly one request for one stroke",
                len(face.log) == n_before + 1 and face.log[-1]["state"] == "not_ready",
                [_jsonable(e) for e in face.log[n_before:]])
        docker.live_check.setChecked(False)
        r.check("not-ready live: status still gives the reason, no layers added",
                reason in status.text and names(doc) == initial_layers, status.text)

    # ---- the same machinery through the echo engine
    face.engine = "echo"
    face.engine_params_override = {"delay": 0.0}
    docker.generate_button.click()
    entry = face.log[-1]
    ok = yield Wait(lambda: entry["state"] != "submitted", 20, "echo generate")
    r.check("echo generate: done", ok and entry["state"] == "done", entry["state"])
    prev = find(doc, PREVIEW_NAME)
    r.check("preview layer at the top, locked, beside the sketch", prev is not None and names(doc)[-1] == PREVIEW_NAME
            and prev.locked() and prev.bounds().x() == canvas.preview_x, names(doc))
    if prev is not None:
        got = bytes(prev.pixelData(canvas.preview_x, 0, size, size))
        r.check("preview = sketch composited on white, byte-exact (BGRA8 round trip)", got == on_white(drawn))
    yield Wait(lambda: doc.activeNode() is not None and doc.activeNode().name() == "Sketch", 2, "active layer back")
    r.check("sketch stays the active layer after the preview was added",
            doc.activeNode() is not None and doc.activeNode().name() == "Sketch")

    # live mode: two strokes in quick succession (one poll tick) -> one submission with both
    n_before = len(face.log)
    docker.live_check.setChecked(True)
    r.check("live toggle reaches the workflow", face.live)
    yield 0.5
    r.check("live on with an unchanged sketch sends nothing", len(face.log) == n_before, len(face.log) - n_before)
    stroke(sketch, size, [(int(150 * s), int(120 * s)), (int(190 * s), int(112 * s))], max(1, int(2 * s)))
    drawn = stroke(sketch, size, [(int(128 * s), int(150 * s)), (int(124 * s), int(175 * s))], max(1, int(2 * s)))
    ok = yield Wait(lambda: len(face.log) > n_before and face.log[-1]["state"] == "done", 10, "live result")
    live_entries = face.log[n_before:]
    r.check("live: two quick strokes -> one submission of the final sketch (the first never sent)",
            ok and len(live_entries) == 1 and live_entries[0]["kind"] == "live" and live_entries[0]["supersede"] == "live"
            and live_entries[0]["checksum"] == zlib.crc32(drawn),
            [_jsonable(e) for e in live_entries])
    got = bytes(find(doc, PREVIEW_NAME).pixelData(canvas.preview_x, 0, size, size))
    r.check("live: preview updated in place to the final sketch", got == on_white(drawn)
            and names(doc).count(PREVIEW_NAME) == 1, names(doc))

    # live mode: the second stroke arrives while the first is computing -> the backend supersedes it
    face.engine_params_override = {"delay": 5.0}  # long enough to be still running; cancelled early anyway
    n_before = len(face.log)
    first = stroke(sketch, size, [(int(100 * s), int(205 * s)), (int(156 * s), int(205 * s))], max(1, int(2 * s)))
    ok = yield Wait(lambda: len(face.log) > n_before, 5, "first live submission")
    r.check("live: first stroke submitted after it settled", ok and face.log[-1]["checksum"] == zlib.crc32(first))
    face.engine_params_override = {"delay": 0.0}  # the next job runs at once
    yield 0.2
    drawn = stroke(sketch, size, [(int(100 * s), int(215 * s)), (int(156 * s), int(212 * s))], max(1, int(2 * s)))
    ok = yield Wait(lambda: len(face.log) > n_before + 1 and face.log[-1]["state"] == "done", 15, "second live result")
    e1, e2 = (face.log[n_before], face.log[-1]) if len(face.log) > n_before + 1 else (None, None)
    r.check("live: the first job was superseded by the backend, only the last computed",
            ok and e1 is not None and e1["state"] == "superseded" and e2["checksum"] == zlib.crc32(drawn)
            and len(face.log) == n_before + 2, [_jsonable(e) for e in face.log[n_before:]])
    got = bytes(find(doc, PREVIEW_NAME).pixelData(canvas.preview_x, 0, size, size))
    r.check("live: preview shows the last stroke", got == on_white(drawn))

    # a slider change in live mode regenerates (with the new value)
    face.engine_params_override = {"delay": 0.0}
    n_before = len(face.log)
    docker.sliders["blend_nose"].setValue(40)
    ok = yield Wait(lambda: len(face.log) > n_before and face.log[-1]["state"] == "done", 10, "slider regeneration")
    r.check("live: slider change regenerates with the new value", ok and face.params["blend_nose"] == 0.4
            and face.log[-1]["kind"] == "live", face.params)

    # shadow guide: a low-opacity layer under the sketch, updated with each stroke
    n_before = len(face.log)
    docker.shadow_check.setChecked(True)
    ok = yield Wait(lambda: len(face.log) > n_before and face.log[-1]["state"] == "done", 10, "shadow regeneration")
    guide = find(doc, GUIDE_NAME)
    order = names(doc)
    r.check("shadow guide: layer right under the sketch, low opacity, locked",
            ok and guide is not None and order.index(GUIDE_NAME) == order.index("Sketch") - 1 and guide.visible()
            and guide.opacity() < 128 and guide.locked(), {"order": order, "opacity": guide and guide.opacity()})
    if guide is not None:
        r.check("shadow guide shows the engine's shadow output (echo: the sketch)",
                bytes(guide.pixelData(0, 0, size, size)) == on_white(drawn))
    n_before = len(face.log)
    drawn = stroke(sketch, size, [(int(90 * s), int(60 * s)), (int(166 * s), int(60 * s))], max(1, int(2 * s)))
    ok = yield Wait(lambda: len(face.log) > n_before and face.log[-1]["state"] == "done", 10, "stroke with guide")
    guide = find(doc, GUIDE_NAME)
    r.check("shadow guide updated with the stroke", ok and guide is not None
            and bytes(guide.pixelData(0, 0, size, size)) == on_white(drawn))

    # a real, undoable Krita edit on the sketch (Fill with Foreground Color), then Undo: live mode follows both,
    # and undo takes back exactly the user's edit (the plug-in's layer writes are not on the undo stack)
    from krita import Selection
    before_fill, layers_before = bytes(sketch.pixelData(0, 0, size, size)), names(doc)
    sel = Selection()
    sel.select(int(200 * s), int(20 * s), int(30 * s), int(16 * s), 255)
    doc.setSelection(sel)
    n_before = len(face.log)
    k.action("fill_selection_foreground_color").trigger()
    doc.waitForDone()
    filled = bytes(sketch.pixelData(0, 0, size, size))
    r.check("undoable fill on the sketch layer changed it", filled != before_fill)
    ok = yield Wait(lambda: len(face.log) > n_before and face.log[-1]["state"] == "done", 10, "live after fill")
    r.check("live: a Krita fill on the sketch is noticed and computed", ok and face.log[-1]["checksum"] == zlib.crc32(filled)
            and bytes(find(doc, PREVIEW_NAME).pixelData(canvas.preview_x, 0, size, size)) == on_white(filled))
    n_before = len(face.log)
    undo = k.action("edit_undo")
    undo_state = {"enabled": undo.isEnabled(), "text": undo.text()}
    undo.trigger()
    doc.waitForDone()
    yield Wait(lambda: bytes(sketch.pixelData(0, 0, size, size)) != filled, 3, "undo to apply")
    undone = bytes(sketch.pixelData(0, 0, size, size))
    r.check("undo takes back exactly the fill (the top undo step was the user's, not a preview update)",
            undone == before_fill and names(doc) == layers_before and "Fill" in undo_state["text"],
            {"layers": names(doc), "equals_filled": undone == filled, "equals_before": undone == before_fill,
             "undo": undo_state})
    ok = yield Wait(lambda: len(face.log) > n_before and face.log[-1]["state"] == "done", 10, "live after undo")
    r.check("live: the preview follows the undo", ok and bytes(find(doc, PREVIEW_NAME).pixelData(
        canvas.preview_x, 0, size, size)) == on_white(before_fill))
    k.action("deselect").trigger()
    doc.waitForDone()
    yield 0.2
    undo_text = undo.text()
    n_before = len(face.log)
    drawn = stroke(sketch, size, [(int(200 * s), int(120 * s)), (int(203 * s), int(146 * s))], max(1, int(2 * s)))  # ear
    ok = yield Wait(lambda: len(face.log) > n_before and face.log[-1]["state"] == "done", 10, "live update")
    r.check("live preview and guide updates put nothing on the undo stack", ok and undo.text() == undo_text,
            [undo_text, undo.text()])

    yield 0.3
    _screenshot(r, "krita-docker.png")

    # keep: a copy of the preview as a normal layer right under it, as one undo step; the preview carries on
    shown = bytes(find(doc, PREVIEW_NAME).pixelData(canvas.preview_x, 0, size, size))
    docker.keep_button.click()
    yield 0.2
    kept = find(doc, "Face 1")
    r.check("keep: 'Face 1' under the preview, unlocked, same pixels", kept is not None and not kept.locked()
            and names(doc)[-3:] == ["Sketch", "Face 1", PREVIEW_NAME]
            and bytes(kept.pixelData(canvas.preview_x, 0, size, size)) == shown, names(doc))
    r.check("keep is one undo step (Add Layer)", undo.text() != undo_text, [undo_text, undo.text()])
    undo.trigger()
    doc.waitForDone()
    yield Wait(lambda: find(doc, "Face 1") is None, 3, "undo of keep")
    r.check("undo of keep removes the copy only", find(doc, "Face 1") is None and undo.text() == undo_text
            and bytes(sketch.pixelData(0, 0, size, size)) == drawn
            and bytes(find(doc, PREVIEW_NAME).pixelData(canvas.preview_x, 0, size, size)) == shown, names(doc))
    k.action("edit_redo").trigger()
    doc.waitForDone()
    yield Wait(lambda: find(doc, "Face 1") is not None, 3, "redo of keep")
    kept = find(doc, "Face 1")
    r.check("redo of keep brings it back", kept is not None
            and bytes(kept.pixelData(canvas.preview_x, 0, size, size)) == shown, names(doc))
    n_before = len(face.log)
    drawn = stroke(sketch, size, [(int(60 * s), int(240 * s)), (int(196 * s), int(240 * s))], max(1, int(2 * s)))
    ok = yield Wait(lambda: len(face.log) > n_before and face.log[-1]["state"] == "done", 10, "result after keep")
    r.check("keep: the next result goes to the preview above the kept face",
            ok and names(doc)[-2:] == ["Face 1", PREVIEW_NAME] and names(doc).count(PREVIEW_NAME) == 1
            and bytes(find(doc, PREVIEW_NAME).pixelData(canvas.preview_x, 0, size, size)) == on_white(drawn), names(doc))
    r.check("keep: kept face unchanged by the next result", kept is not None
            and bytes(kept.pixelData(canvas.preview_x, 0, size, size)) == shown)
    docker.live_check.setChecked(False)
    undo_text = undo.text()
    docker.shadow_check.setChecked(False)
    r.check("shadow guide off hides the guide (not an undo step)", not find(doc, GUIDE_NAME).visible()
            and undo.text() == undo_text, [undo_text, undo.text()])
    r.check("strokes intact after the whole face session", bytes(sketch.pixelData(0, 0, size, size)) == drawn)

    # progress and Cancel: a slow job shows progress, Cancel stops it, the preview keeps the last result
    shown = bytes(find(doc, PREVIEW_NAME).pixelData(canvas.preview_x, 0, size, size))
    stroke(sketch, size, [(int(20 * s), int(230 * s)), (int(30 * s), int(250 * s))], max(1, int(2 * s)))
    face.engine_params_override = {"delay": 5.0}
    docker.generate_button.click()
    entry = face.log[-1]
    ok = yield Wait(lambda: docker.progress_bar.value() > 0, 5, "progress")
    r.check("progress bar moves and Cancel is enabled while a job runs",
            ok and docker.cancel_button.isEnabled() and entry["state"] == "submitted",
            {"progress": docker.progress_bar.value(), "status": status.text})
    docker.cancel_button.click()
    ok = yield Wait(lambda: entry["state"] != "submitted", 5, "cancel")
    r.check("cancel: the job stops, the status says so, the preview keeps the last result",
            ok and entry["state"] == "cancelled" and status.text == "Cancelled." and not docker.cancel_button.isEnabled()
            and bytes(find(doc, PREVIEW_NAME).pixelData(canvas.preview_x, 0, size, size)) == shown,
            {"state": entry["state"], "status": status.text})
    face.engine_params_override = {"delay": 0.0}

    # ---- Sketchify on a photo layer (menu action and docker button)
    photo_doc = k.createDocument(120, 90, "Photo", "RGBA", "U8", "", 72.0)
    _window().addView(photo_doc)
    k.setActiveDocument(photo_doc)
    photo = photo_doc.createNode("Photo", "paintlayer")
    pw, ph, px, py = 80, 60, 17, 11
    pixels = bytearray()
    for y in range(ph):
        for x in range(pw):  # a gradient with partial transparency: every byte position matters
            pixels += bytes(((x * 3) & 255, (y * 4) & 255, (x * y) & 255, 255 if (x + y) % 7 else 128 + (x % 100)))
    photo.setPixelData(bytes(pixels), px, py, pw, ph)
    photo_doc.rootNode().addChildNode(photo, None)
    top = photo_doc.createNode("Above", "paintlayer")
    photo_doc.rootNode().addChildNode(top, None)
    yield from _activate(photo_doc, "Photo")

    sketch_ready = engines.get("sketch", {}).get("ready", False)
    if sketch_ready:
        n_before = len(sk.log)
        k.action("facesketch_sketchify").trigger()
        ok = yield Wait(lambda: len(sk.log) > n_before and sk.log[-1]["state"] != "submitted", 120, "real sketch")
        real = find(photo_doc, "Photo (sketch)")
        r.check("real sketch engine: result layer above the photo", ok and sk.log[-1]["state"] == "done"
                and names(photo_doc) == ["Background", "Photo", "Photo (sketch)", "Above"], names(photo_doc))
        if real is not None:
            b = real.bounds()
            r.check("real sketch engine: result covers the photo's rectangle",
                    (b.x(), b.y(), b.width(), b.height()) == (px, py, pw, ph), [b.x(), b.y(), b.width(), b.height()])
            real.remove()
        yield from _activate(photo_doc, "Photo")
    else:
        n_before = len(sk.log)
        k.action("facesketch_sketchify").trigger()
        ok = yield Wait(lambda: len(sk.log) > n_before and sk.log[-1]["state"] != "submitted", 20, "sketch not ready")
        reason = _reason(sk.log[-1])
        r.check("not-ready sketch: status line gives the backend's reason, no layer added",
                ok and sk.log[-1]["state"] == "not_ready" and len(reason) > 10 and reason in status.text
                and names(photo_doc) == ["Background", "Photo", "Above"], {"status": status.text, "layers": names(photo_doc)})

    sk.engine = "echo"
    n_before = len(sk.log)
    k.action("facesketch_sketchify").trigger()
    ok = yield Wait(lambda: len(sk.log) > n_before and sk.log[-1]["state"] != "submitted", 20, "sketchify via action")
    r.check("sketchify action: done", ok and sk.log[-1]["state"] == "done", sk.log[-1]["state"] if sk.log else None)
    r.check("sketchify: new layer directly above the source", names(photo_doc) == ["Background", "Photo", "Photo (sketch)", "Above"],
            names(photo_doc))
    result = find(photo_doc, "Photo (sketch)")
    if result is not None:
        b = result.bounds()
        r.check("sketchify: result at the source's offset", (b.x(), b.y(), b.width(), b.height()) == (px, py, pw, ph),
                [b.x(), b.y(), b.width(), b.height()])
        r.check("sketchify: BGRA8 round trip byte-exact (echo)", bytes(result.pixelData(px, py, pw, ph)) == bytes(pixels))
    r.check("sketchify: source layer untouched", bytes(photo.pixelData(px, py, pw, ph)) == bytes(pixels))

    # 16-bit document: sent as RGBA16 and written back exactly
    doc16 = k.createDocument(40, 30, "Photo16", "RGBA", "U16", "", 72.0)
    _window().addView(doc16)
    k.setActiveDocument(doc16)
    l16 = doc16.createNode("Photo16", "paintlayer")
    import array
    vals = array.array("H", [(i * 2654435761) & 0xFFFF for i in range(40 * 30 * 4)])
    l16.setPixelData(vals.tobytes(), 0, 0, 40, 30)
    doc16.rootNode().addChildNode(l16, None)
    yield from _activate(doc16, "Photo16")
    n_before = len(sk.log)
    docker.sketchify_button.click()
    ok = yield Wait(lambda: len(sk.log) > n_before and sk.log[-1]["state"] != "submitted", 20, "sketchify 16-bit")
    res16 = find(doc16, "Photo16 (sketch)")
    sent16 = bytes(l16.pixelData(0, 0, 40, 30))
    got16 = bytes(res16.pixelData(0, 0, 40, 30)) if res16 is not None else b""
    r.check("16-bit document: sent as RGBA16, result written back exactly",
            ok and sk.log[-1].get("format") == "RGBA16" and got16 == sent16,
            {"state": sk.log[-1].get("state"), "format": sk.log[-1].get("format"), "rect": sk.log[-1].get("rect"),
             "same_as_written": sent16 == vals.tobytes(), "n": len(got16), "first_diff":
             next((i for i in range(min(len(got16), len(sent16))) if got16[i] != sent16[i]), None),
             "layers": names(doc16), "entry": _jsonable(sk.log[-1]),
             "docs": [(d.name(), doc_key(d), names(d)) for d in k.documents()]})

    # float document and a group layer: a clear message, nothing sent, nothing added
    docf = k.createDocument(32, 32, "Float", "RGBA", "F32", "", 72.0)
    _window().addView(docf)
    k.setActiveDocument(docf)
    yield 0.2
    before = names(docf)
    n_before = len(sk.log)
    docker.sketchify_button.click()
    r.check("float document: clear message, nothing sent", len(sk.log) == n_before and "floating-point" in status.text
            and names(docf) == before, status.text)
    group = docf.createGroupLayer("Group")
    docf.rootNode().addChildNode(group, None)
    yield from _activate(docf, "Group")
    docker.sketchify_button.click()
    r.check("group layer: clear message, nothing sent", len(sk.log) == n_before and "group layer" in status.text,
            status.text)

    # ---- backend stopped: the status line says so and nothing is lost
    _show(doc)
    shown = yield Wait(lambda: k.activeDocument() is not None and doc_key(k.activeDocument()) == doc_key(doc), 5,
                       "the face canvas to be active again")
    r.check("face canvas active again", shown, {"views": [doc_key(v.document()) for v in _window().views()],
                                                 "doc": doc_key(doc), "active": doc_key(k.activeDocument())})
    pid = r.config.get("backend_pid")
    if pid:
        os.kill(int(pid), signal.SIGTERM)
        gone = yield Wait(lambda: _process_gone(int(pid)), 20, "the backend to exit")
        r.check("backend stopped by the scenario", gone)
        before_layers = names(doc)
        drawn = stroke(sketch, size, [(int(60 * s), int(30 * s)), (int(196 * s), int(30 * s))], max(1, int(2 * s)))
        n_before = len(face.log)
        docker.generate_button.click()
        ok = yield Wait(lambda: len(face.log) > n_before and face.log[-1]["state"] != "submitted", 15, "unreachable")
        r.check("backend stopped: the job fails as unreachable/disconnected",
                ok and face.log[-1]["state"] in ("unreachable", "disconnected"), face.log[-1]["state"] if face.log else None)
        r.check("backend stopped: the status line says the backend is not reachable",
                "not reachable" in status.text or "went away" in status.text, status.text)
        r.check("backend stopped: sketch pixels intact, no layers added or removed",
                bytes(sketch.pixelData(0, 0, size, size)) == drawn and names(doc) == before_layers, names(doc))
        r.check("backend stopped: the docker shows 'Not connected'", "Not connected" in docker.connection_label.text(),
                docker.connection_label.text())
        yield from settings_dialog_and_autostart(r, docker, doc, sketch, size)


def _activate(doc, name: str):
    """Make layer `name` active (Krita picks its own active layer a moment after nodes are added)."""
    for _ in range(20):
        yield 0.15
        if doc.activeNode() is not None and doc.activeNode().name() == name:
            return
        doc.setActiveNode(find(doc, name))


def _show(doc) -> None:
    """Bring the view of `doc` to the front (what clicking its tab does)."""
    k = Krita.instance()
    w = _window()
    for v in w.views():
        if v.document() is not None and doc_key(v.document()) == doc_key(doc):
            v.setVisible()  # KisMainWindow::setActiveView + subWindowActivated
            w.showView(v)
            break
    k.setActiveDocument(doc)


def _reason(entry) -> str:
    """The reason part of the backend's not-ready message ('... is not ready: REASON')."""
    message = (entry or {}).get("message") or ""
    return message.split("not ready: ", 1)[-1] if "not ready: " in message else ""


def _window():
    k = Krita.instance()
    return k.activeWindow() or k.windows()[0]


def settings_dialog_and_autostart(r: Runner, docker, doc, sketch, size):
    """The settings dialog against a stopped backend: test connection fails in plain words; 'Start local
    backend' auto-starts settings.backend_command through the launcher; Generate works again; 'Stop' stops it."""
    import shlex
    a = app_module.get()
    face, conn, status = a.face, a.connection, a.status
    docker.settings_button.click()
    yield 0.3
    dlg = next((w for w in QApplication.topLevelWidgets() if w.objectName() == "facesketch_settings_dialog"
                and w.isVisible()), None)
    r.check("settings dialog opens from the docker", dlg is not None)
    if dlg is None:
        return
    r.check("settings dialog shows the shared settings file's address", dlg.address.text() == conn.settings.address,
            dlg.address.text())
    dlg.test_button.click()
    ok = yield Wait(lambda: dlg.result_label.text().startswith(("Failed", "Connected")), 10, "test connection")
    r.check("test connection with the backend stopped: fails in plain words",
            ok and dlg.result_label.text().startswith("Failed") and "not reachable" in dlg.result_label.text(),
            dlg.result_label.text())
    command = r.config.get("backend_command")
    if not command:
        dlg.reject()
        return
    dlg.command.setText(" ".join(shlex.quote(c) for c in command))
    dlg.autostart.setChecked(True)
    dlg.start_button.click()
    ok = yield Wait(lambda: conn.state in ("connected", "error"), 90, "the auto-started backend")
    r.check("start local backend: launched through the launcher and connected",
            ok and conn.state == "connected" and conn.backend_handle is not None, conn.message)
    handle = conn.backend_handle
    r.report["autostarted_pid"] = getattr(handle, "pid", None)
    dlg.test_button.click()
    ok = yield Wait(lambda: dlg.result_label.text().startswith(("Failed", "Connected")), 10, "test connection 2")
    r.check("test connection with the local backend: lists the engines",
            ok and dlg.result_label.text().startswith("Connected") and "echo" in dlg.result_label.text(),
            dlg.result_label.text())
    n_before = len(face.log)
    docker.generate_button.click()
    ok = yield Wait(lambda: len(face.log) > n_before and face.log[-1]["state"] != "submitted", 15, "generate again")
    prev = find(doc, PREVIEW_NAME)
    r.check("generate works again with the auto-started backend", ok and face.log[-1]["state"] == "done"
            and prev is not None and bytes(prev.pixelData(size, 0, size, size))
            == on_white(bytes(sketch.pixelData(0, 0, size, size))), face.log[-1]["state"] if face.log else None)
    dlg.stop_button.click()
    gone = yield Wait(lambda: handle is None or _process_gone(handle.pid), 15, "the local backend to stop")
    r.check("stop local backend: the process is gone", gone and conn.backend_handle is None,
            dlg.result_label.text())
    dlg.reject()


def _process_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return any(line.startswith("State:") and "Z" in line.split()[1] for line in fh)
    except OSError:
        return True


def _docs_face_shot(r: Runner, docker, face, sketch, size: int):
    """For docs/krita-docker-face.png (config "docs_sketch": an image of a whole drawn face): that drawing in the
    Sketch layer, a face and its guide generated from it, the screenshot, then the scenario's strokes back."""
    from .qt import QImage, FORMAT_ARGB32
    before = bytes(sketch.pixelData(0, 0, size, size))
    img = QImage(r.config["docs_sketch"]).scaled(size, size).convertToFormat(FORMAT_ARGB32)
    data = bytearray(img.constBits().asstring(size * size * 4))
    for o in range(0, len(data), 4):  # dark strokes stay, paper becomes transparent (as a user's Sketch layer)
        data[o + 3] = 255 - min(data[o:o + 3])
        data[o:o + 3] = b"\x00\x00\x00"
    sketch.setPixelData(bytes(data), 0, 0, size, size)
    docker.shadow_check.setChecked(True)
    docker.generate_button.click()
    entry = face.log[-1]
    ok = yield Wait(lambda: entry["state"] != "submitted", 60, "the face for the docs screenshot")
    yield 0.5
    if ok and entry["state"] == "done":
        _screenshot(r, "krita-docker-face.png")
    docker.shadow_check.setChecked(False)
    sketch.setPixelData(before, 0, 0, size, size)
    yield 0.2


def _screenshot(r: Runner, name: str):
    folder = r.config.get("screenshot_dir")
    if not folder:
        return None
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    screen = QApplication.primaryScreen()
    pix = screen.grabWindow(0) if screen is not None else _window().qwindow().grab()
    saved = pix.save(path, "PNG")
    r.event(f"screenshot {path}: {saved}")
    return path if saved else None
