"""A scripted session in real Krita against the real Face Sketch plug-in, driven like a user drives it.

The plug-in is reached only from outside: Krita's API (dockers, documents, layers, actions, undo), the docker's
widgets found by objectName (findChild), and the settings dialog found among the top-level widgets. Nothing in
the plug-in exists for this scenario. What happened on the backend side is read from the backends themselves:

    not_ready  a real backend with an empty weights folder: the face and sketch engines report not ready; its
               log shows each request it refused
    echo       a backend whose "face" and "sketch" engines return their input (tests/support/engines_host_echo.py):
               byte-exact checks of the machinery; it journals what it received, and holds jobs for the seconds
               written in a file (progress, cancel, superseding)
    real       the real backend with the shipped weights: real faces, shadows and sketches (and the screenshots)

The config (tests/test_krita_host.py writes it, FACESKETCH_KRITA_SCENARIO names it):
    {"report", "backends": {"not_ready": {"address", "log"}, "echo": {"address", "journal", "delay_file"},
     "real": {"address", "pid"}}, "face_details": {"canvas", "boxes"}, "not_ready_reasons": {"face", "sketch"},
     "backend_command", "screenshot_dir", "docs_sketch", "quit", "time_limit_s"}
The report is a JSON list of named checks; Krita exits 0 whatever happens inside, so the report is the verdict.
"""
from __future__ import annotations

import array
import json
import os
import shlex
import signal
import sys
import time
import traceback
import zlib

from krita import Krita
from PyQt5.QtCore import QTimer, Qt
from PyQt5.QtGui import QImage
from PyQt5.QtWidgets import (QApplication, QCheckBox, QComboBox, QDialogButtonBox, QDoubleSpinBox, QLabel,
                             QLineEdit, QProgressBar, QPushButton, QSlider)

DOCKER_ID = "facesketch_docker"
PREVIEW_NAME = "[Preview] Face"
GUIDE_NAME = "[Guide] Shadow"
CANVAS_ANNOTATION = "facesketch/canvas"
SETTINGS_DIALOG = "facesketch_settings_dialog"

_runner = None


def start(config_path: str) -> None:
    global _runner
    with open(config_path, "r", encoding="utf-8") as fh:
        config = json.load(fh)
    _runner = Runner(config)
    _runner.start()


class Wait:
    def __init__(self, predicate, timeout: float, what: str):
        self.predicate, self.timeout, self.what = predicate, timeout, what


class Runner:
    def __init__(self, config: dict):
        self.config = config
        self.report = {"checks": [], "events": [], "ok": False, "krita_version": Krita.instance().version()}
        self.t0 = time.monotonic()
        self.gen = None
        self.finished = False

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
            self._poll_wait(request, time.monotonic() + request.timeout)
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
        if not isinstance(detail, (str, int, float, list, dict)):
            detail = repr(detail)
        self.report["checks"].append({"name": name, "ok": bool(ok), "detail": detail})
        return bool(ok)

    def event(self, text: str) -> None:
        self.report["events"].append(f"{time.monotonic() - self.t0:7.2f}s {text}")

    def finish(self, error) -> None:
        if self.finished:
            return
        self.finished = True
        self.report["error"] = error
        self.report["seconds"] = round(time.monotonic() - self.t0, 2)
        try:
            self.report["environment"] = _environment()
        except Exception:
            self.report["environment"] = {"error": traceback.format_exc()}
        self.report["ok"] = error is None and all(c["ok"] for c in self.report["checks"])
        path = self.config["report"]
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            json.dump(self.report, fh, indent=1)
        os.replace(path + ".tmp", path)
        if self.config.get("quit", True):
            QTimer.singleShot(100, _quit)


def _environment() -> dict:
    """Where the plug-in's dependencies came from and what it added to sys.path (the test checks both)."""
    import importlib.util
    plugin = sys.modules.get("facesketch")
    plugin_dir = os.path.dirname(plugin.__file__) if plugin is not None else None
    zmq, msgpack = sys.modules.get("zmq"), sys.modules.get("msgpack")
    return {"python": sys.version, "plugin_file": plugin.__file__ if plugin else None,
            "zmq_file": zmq.__file__ if zmq else None, "msgpack_file": msgpack.__file__ if msgpack else None,
            "sys_path_in_plugin": [p for p in sys.path if plugin_dir and (os.path.abspath(p) == plugin_dir or
                                                                              os.path.abspath(p).startswith(plugin_dir + os.sep))],
            # the plug-in's modules and its client are reachable only as facesketch.*, never by bare names
            "bare_names": {n: importlib.util.find_spec(n) is not None or n in sys.modules
                           for n in ("workflow", "connection", "settings_dialog", "facesketch_client")}}


def _quit() -> None:
    k = Krita.instance()
    for d in list(k.documents()):
        d.setModified(False)
    action = k.action("file_quit")
    if action is not None:
        action.trigger()
    else:
        QApplication.quit()


# -- what the backends saw ---------------------------------------------------------------------------


class Journal:
    """The echo backend's journal: one JSON line per job start / done / cancelled."""

    def __init__(self, path: str):
        self.path = path

    def entries(self) -> list:
        try:
            with open(self.path, encoding="utf-8") as fh:
                return [json.loads(line) for line in fh if line.strip()]
        except OSError:
            return []

    def starts(self, engine: str) -> list:
        return [e for e in self.entries() if e["engine"] == engine and e["event"] == "start"]

    def fate(self, n: int) -> str | None:
        ends = [e["event"] for e in self.entries() if e["n"] == n and e["event"] != "start"]
        return ends[-1] if ends else None


def refused(log_path: str, engine: str) -> int:
    """How many requests the not-ready backend refused for `engine` (its log has one line for each)."""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as fh:
            return sum(1 for line in fh if f"not_ready: the '{engine}' engine is not ready" in line)
    except OSError:
        return 0


# -- pixels ----------------------------------------------------------------------------------------------


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


def rgba_crc(bgra: bytes) -> int:
    """crc32 of BGRA8 bytes as the backend's engines see them (RGBA)."""
    src = array.array("B", bgra)
    out = array.array("B", src)
    out[0::4], out[2::4] = src[2::4], src[0::4]
    return zlib.crc32(out.tobytes())


def names(doc) -> list:
    """Top-level layer names (Krita shows the global selection as a selection mask there: left out)."""
    return [n.name() for n in doc.topLevelNodes() if n.type() != "selectionmask"]


def find(doc, name):
    return next((n for n in doc.topLevelNodes() if n.name() == name), None)


def canvas_meta(doc) -> dict | None:
    raw = doc.annotation(CANVAS_ANNOTATION) if doc is not None else None
    if raw is None or len(raw) == 0:
        return None
    try:
        return json.loads(bytes(raw).decode("utf-8"))
    except ValueError:
        return None


def doc_key(doc) -> str:
    return doc.rootNode().uniqueId().toString()


# -- the scenario ------------------------------------------------------------------------------------


def scenario(r: Runner):
    k = Krita.instance()
    cfg = r.config
    nr, echo, real = cfg["backends"]["not_ready"], cfg["backends"]["echo"], cfg["backends"]["real"]
    journal = Journal(echo["journal"])
    reasons = cfg["not_ready_reasons"]
    qwin = _window().qwindow()
    screen = QApplication.primaryScreen()
    if screen is not None:  # no window manager under Xvfb: 'maximize' by hand
        qwin.setGeometry(screen.availableGeometry())

    docker = next((d for d in k.dockers() if d.objectName() == DOCKER_ID), None)
    r.check("docker registered", docker is not None, [d.objectName() for d in k.dockers()][:60])
    if docker is None:
        return

    def w(name, cls):
        return docker.findChild(cls, "facesketch_" + name)

    generate, live, shadow, keep = (w("generate", QPushButton), w("live", QCheckBox), w("shadow_guide", QCheckBox),
                                    w("keep", QPushButton))
    status, progress, cancel = w("status", QLabel), w("progress", QProgressBar), w("cancel", QPushButton)
    connection = w("connection", QLabel)
    widgets = {"new_canvas": w("new_canvas", QPushButton), "generate": generate, "live": live, "shadow_guide": shadow,
               "keep": keep, "status": status, "progress": progress, "cancel": cancel, "connection": connection,
               "settings": w("settings", QPushButton), "sketchify": w("sketchify", QPushButton),
               "style": w("style", QComboBox), "slider_blend_nose": w("slider_blend_nose", QSlider)}
    r.check("docker widgets found by objectName", all(v is not None for v in widgets.values()),
            [n for n, v in widgets.items() if v is None])
    if not all(v is not None for v in widgets.values()):
        return
    docker.setVisible(True)
    docker.raise_()
    for other in k.dockers():  # room for the docker in screenshots: keep only tools and layers beside it
        if other.objectName() not in (DOCKER_ID, "KisLayerBox", "ToolBox"):
            other.setVisible(False)
    layers_docker = next((d for d in k.dockers() if d.objectName() == "KisLayerBox"), None)
    if layers_docker is not None:
        qwin.resizeDocks([layers_docker, docker], [270, 620], Qt.Vertical)
    qwin.resizeDocks([docker], [400], Qt.Horizontal)
    r.check("docker title", docker.windowTitle() == "Face Sketch", docker.windowTitle())
    actions = {i: k.action(i) is not None for i in ("facesketch_sketchify", "facesketch_new_face_canvas",
                                                      "facesketch_generate_face", "facesketch_face_from_layer",
                                                      "facesketch_keep_face", "facesketch_settings")}
    r.check("actions registered with ids", all(actions.values()), actions)

    def connected_to(address):
        return lambda: "Connected" in connection.text() and address in connection.toolTip()

    ok = yield Wait(connected_to(nr["address"]), 30, "the backend hello")
    r.check("connected to the (not-ready) backend from the settings file", ok,
            [connection.text(), connection.toolTip()])
    if not ok:
        return

    # ---- new face canvas: size and template from the face engine's hello details
    widgets["new_canvas"].click()
    yield Wait(lambda: canvas_meta(k.activeDocument()) is not None and k.activeDocument().activeNode() is not None
               and k.activeDocument().activeNode().name() == "Sketch", 5, "the new face canvas with Sketch selected")
    doc = k.activeDocument()
    meta = canvas_meta(doc)
    r.check("new face canvas is the active document with layout metadata", meta is not None, meta)
    if meta is None:
        return
    details = cfg["face_details"]
    size = details["canvas"]
    r.check("canvas size from the face engine's hello details", meta.get("size") == size and doc.height() == size
            and doc.width() == 2 * size, [doc.width(), doc.height(), meta.get("size"), size])
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

    def drawn_along_top_edge(box):  # the dashed outline of a box: some pixels on its top edge are drawn
        x, y, s_ = box
        return sum(1 for xx in range(x, x + s_) if tpx[(y * size + xx) * 4 + 3] > 0)

    edges = {part: drawn_along_top_edge(box) for part, box in details["boxes"].items()}
    r.check("template boxes drawn where the hello details put them", all(v > 3 for v in edges.values()), edges)
    preview_x = size
    sketch = find(doc, "Sketch")
    r.check("sketch layer is empty and active", not any(bytes(sketch.pixelData(0, 0, size, size)))
            and doc.activeNode() is not None and doc.activeNode().name() == "Sketch",
            doc.activeNode().name() if doc.activeNode() else None)
    r.check("new face canvas: the status line says the face engine is not ready, and why",
            reasons["face"] in status.text(), {"status": status.text(), "reason": reasons["face"]})

    s = size / 256.0
    rad = max(1, int(2 * s))
    drawn = stroke(sketch, size, [(int(70 * s), int(120 * s)), (int(110 * s), int(112 * s))], rad)  # an eye

    # ---- not ready: the real face engine without weights (an empty FACESKETCH_WEIGHTS_DIR)
    n0 = refused(nr["log"], "face")
    generate.click()
    ok = yield Wait(lambda: refused(nr["log"], "face") > n0 and reasons["face"] in status.text(), 15,
                    "the not-ready answer")
    r.check("not-ready face: the backend refused the request", ok and refused(nr["log"], "face") == n0 + 1,
            refused(nr["log"], "face") - n0)
    r.check("not-ready face: status line gives the backend's reason", reasons["face"] in status.text(),
            {"status": status.text(), "reason": reasons["face"]})
    r.check("not-ready face: no layers added, preview still empty", names(doc) == initial_layers
            and find(doc, PREVIEW_NAME).bounds().width() <= 0, names(doc))
    r.check("not-ready face: strokes intact", bytes(sketch.pixelData(0, 0, size, size)) == drawn)
    # live mode on a not-ready engine: one request per new stroke, no retry loop
    n0 = refused(nr["log"], "face")
    live.setChecked(True)
    yield 1.0
    r.check("not-ready live: nothing resent for an unchanged sketch", refused(nr["log"], "face") == n0,
            refused(nr["log"], "face") - n0)
    drawn = stroke(sketch, size, [(int(100 * s), int(226 * s)), (int(128 * s), int(234 * s)), (int(156 * s), int(226 * s))],
                   rad)  # chin
    yield Wait(lambda: refused(nr["log"], "face") > n0, 10, "not-ready live")
    yield 1.5  # time for a retry loop to show itself, if there were one
    r.check("not-ready live: exactly one request for one stroke", refused(nr["log"], "face") == n0 + 1,
            refused(nr["log"], "face") - n0)
    live.setChecked(False)
    r.check("not-ready live: status still gives the reason, no layers added",
            reasons["face"] in status.text() and names(doc) == initial_layers, status.text())

    # not-ready sketch engine on a photo
    photo_doc, photo, pixels, (px, py, pw, ph) = _photo_document(k, "Photo")
    yield from _activate(photo_doc, "Photo")
    n0 = refused(nr["log"], "sketch")
    k.action("facesketch_sketchify").trigger()
    ok = yield Wait(lambda: refused(nr["log"], "sketch") > n0 and reasons["sketch"] in status.text(), 15,
                    "sketch not ready")
    r.check("not-ready sketch: status line gives the backend's reason, no layer added",
            ok and names(photo_doc) == ["Background", "Photo", "Above"], {"status": status.text(),
                                                                          "layers": names(photo_doc)})

    # ---- the settings dialog: the shared settings file, test connection, switch to the echo backend
    dlg = yield from _open_settings(widgets["settings"])
    r.check("settings dialog opens from the docker", dlg is not None)
    if dlg is None:
        return
    field = lambda name, cls: dlg.findChild(cls, "facesketch_" + name)  # noqa: E731
    result = field("settings_result", QLabel)
    r.report["settings_file_shown"] = result.text()
    r.check("settings dialog shows the shared settings file and its address",
            result.text().startswith("Settings file: ") and field("address", QLineEdit).text() == nr["address"],
            [result.text(), field("address", QLineEdit).text()])
    field("test_connection", QPushButton).click()
    ok = yield Wait(lambda: result.text().startswith(("Failed", "Connected")), 10, "test connection")
    r.check("test connection lists the engines and their readiness",
            ok and "face (not ready)" in result.text() and "sketch (not ready)" in result.text()
            and "echo (ready)" in result.text(), result.text())
    field("address", QLineEdit).setText(echo["address"])
    field("buttons", QDialogButtonBox).button(QDialogButtonBox.Ok).click()
    ok = yield Wait(connected_to(echo["address"]), 15, "the echo backend")
    r.check("settings dialog OK: saved and connected to the new address", ok, connection.toolTip())

    # ---- the docker's machinery, byte-exact, against the echo stand-ins
    _show(doc)
    yield Wait(lambda: k.activeDocument() is not None and doc_key(k.activeDocument()) == doc_key(doc), 5, "face canvas")
    yield from _activate(doc, "Sketch")
    n0 = len(journal.starts("face"))
    generate.click()
    ok = yield Wait(lambda: find(doc, PREVIEW_NAME).bounds().width() > 0 and status.text().startswith("Face ready"), 20,
                    "echo generate")
    jobs_ = journal.starts("face")[n0:]
    r.check("generate: one job with the docker's parameters and only the face output",
            ok and len(jobs_) == 1 and jobs_[0]["outputs"] == ["face"] and jobs_[0]["params"]["gender"] == "female"
            and all(jobs_[0]["params"][p] == 1.0 for p in ("blend_left_eye", "blend_nose", "master"))
            and jobs_[0]["shape"] == [size, size, 4], jobs_)
    r.check("face canvas: Generate sends align 'template' (the canvas is the face template)",
            bool(jobs_) and jobs_[0]["params"].get("align") == "template", jobs_[0]["params"] if jobs_ else None)
    prev = find(doc, PREVIEW_NAME)
    r.check("preview layer at the top, locked, beside the sketch", prev is not None and names(doc)[-1] == PREVIEW_NAME
            and prev.locked() and prev.bounds().x() == preview_x, names(doc))
    r.check("the face engine got the sketch composited on white", bool(jobs_) and jobs_[0]["crc32"] == rgba_crc(on_white(drawn)))
    got = bytes(prev.pixelData(preview_x, 0, size, size))
    r.check("preview = sketch composited on white, byte-exact (BGRA8 round trip)", got == on_white(drawn))
    yield Wait(lambda: doc.activeNode() is not None and doc.activeNode().name() == "Sketch", 2, "active layer back")
    r.check("sketch stays the active layer after the preview was added",
            doc.activeNode() is not None and doc.activeNode().name() == "Sketch")

    # live mode: two strokes in quick succession (one poll tick) -> one submission with both
    n0 = len(journal.starts("face"))
    live.setChecked(True)
    r.check("live toggle is on", live.isChecked())
    yield 0.5
    r.check("live on with an unchanged sketch sends nothing", len(journal.starts("face")) == n0,
            len(journal.starts("face")) - n0)
    stroke(sketch, size, [(int(150 * s), int(120 * s)), (int(190 * s), int(112 * s))], rad)
    drawn = stroke(sketch, size, [(int(128 * s), int(150 * s)), (int(124 * s), int(175 * s))], rad)
    preview_is = lambda data: lambda: bytes(find(doc, PREVIEW_NAME).pixelData(preview_x, 0, size, size)) == on_white(data)  # noqa: E731
    ok = yield Wait(preview_is(drawn), 10, "live result")
    yield 0.5
    jobs_ = journal.starts("face")[n0:]
    r.check("live: two quick strokes -> one submission of the final sketch (the first never sent)",
            ok and len(jobs_) == 1 and jobs_[0]["crc32"] == rgba_crc(on_white(drawn)), jobs_)
    r.check("live: preview updated in place to the final sketch", ok and names(doc).count(PREVIEW_NAME) == 1, names(doc))

    # live mode: the second stroke arrives while the first is computing -> only the newest is finished
    _set_delay(echo, 5.0)
    n0 = len(journal.starts("face"))
    first = stroke(sketch, size, [(int(100 * s), int(205 * s)), (int(156 * s), int(205 * s))], rad)
    ok = yield Wait(lambda: len(journal.starts("face")) > n0, 5, "first live submission")
    r.check("live: first stroke submitted after it settled",
            ok and journal.starts("face")[n0]["crc32"] == rgba_crc(on_white(first)))
    _set_delay(echo, 0.0)  # the next job runs at once
    yield 0.2
    drawn = stroke(sketch, size, [(int(100 * s), int(215 * s)), (int(156 * s), int(212 * s))], rad)
    ok = yield Wait(preview_is(drawn), 15, "second live result")
    yield 0.3
    jobs_ = journal.starts("face")[n0:]
    fates = [journal.fate(j["n"]) for j in jobs_]
    r.check("live: the running job was cancelled for the newer sketch, only the last computed",
            ok and len(jobs_) == 2 and fates == ["cancelled", "done"] and jobs_[1]["crc32"] == rgba_crc(on_white(drawn)),
            {"fates": fates, "jobs": jobs_})
    r.report["superseded_job"] = jobs_[0]["n"] if jobs_ else None
    r.check("live: preview shows the last stroke", ok)

    # a slider change in live mode regenerates (with the new value)
    n0 = len(journal.starts("face"))
    widgets["slider_blend_nose"].setValue(40)
    ok = yield Wait(lambda: len(journal.starts("face")) > n0 and journal.fate(journal.starts("face")[-1]["n"]) == "done",
                    10, "slider regeneration")
    last = journal.starts("face")[-1] if journal.starts("face") else {}
    r.check("live: slider change regenerates with the new value", ok and last["params"]["blend_nose"] == 0.4
            and w("value_blend_nose", QLabel).text() == "0.40", last.get("params"))

    # shadow guide: a low-opacity layer under the sketch, updated with each stroke
    n0 = len(journal.starts("face"))
    shadow.setChecked(True)
    ok = yield Wait(lambda: len(journal.starts("face")) > n0 and journal.fate(journal.starts("face")[-1]["n"]) == "done"
                    and find(doc, GUIDE_NAME).visible(), 10, "shadow regeneration")
    yield 0.2
    guide = find(doc, GUIDE_NAME)
    order = names(doc)
    r.check("shadow guide: asks for the shadow output too", ok and journal.starts("face")[-1]["outputs"] == ["face", "shadow"],
            journal.starts("face")[-1]["outputs"])
    r.check("shadow guide: layer right under the sketch, low opacity, locked",
            ok and guide is not None and order.index(GUIDE_NAME) == order.index("Sketch") - 1 and guide.visible()
            and guide.opacity() < 128 and guide.locked(), {"order": order, "opacity": guide and guide.opacity()})
    r.check("shadow guide shows the engine's shadow output (echo: the sketch)",
            guide is not None and bytes(guide.pixelData(0, 0, size, size)) == on_white(drawn))
    drawn = stroke(sketch, size, [(int(90 * s), int(60 * s)), (int(166 * s), int(60 * s))], rad)
    ok = yield Wait(lambda: bytes(find(doc, GUIDE_NAME).pixelData(0, 0, size, size)) == on_white(drawn), 10,
                    "stroke with guide")
    r.check("shadow guide updated with the stroke", ok)

    # a real, undoable Krita edit on the sketch (Fill with Foreground Color), then Undo: live mode follows both,
    # and undo takes back exactly the user's edit (the plug-in's layer writes are not on the undo stack)
    from krita import Selection
    yield Wait(preview_is(drawn), 5, "preview of the last stroke")
    before_fill, layers_before = bytes(sketch.pixelData(0, 0, size, size)), names(doc)
    sel = Selection()
    sel.select(int(200 * s), int(20 * s), int(30 * s), int(16 * s), 255)
    doc.setSelection(sel)
    k.action("fill_selection_foreground_color").trigger()
    doc.waitForDone()
    filled = bytes(sketch.pixelData(0, 0, size, size))
    r.check("undoable fill on the sketch layer changed it", filled != before_fill)
    ok = yield Wait(preview_is(filled), 10, "live after fill")
    r.check("live: a Krita fill on the sketch is noticed and computed", ok)
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
    ok = yield Wait(preview_is(before_fill), 10, "live after undo")
    r.check("live: the preview follows the undo", ok)
    k.action("deselect").trigger()
    doc.waitForDone()
    yield 0.2
    undo_text = undo.text()
    drawn = stroke(sketch, size, [(int(200 * s), int(120 * s)), (int(203 * s), int(146 * s))], rad)  # ear
    ok = yield Wait(preview_is(drawn), 10, "live update")
    yield 0.2
    r.check("live preview and guide updates put nothing on the undo stack", ok and undo.text() == undo_text,
            [undo_text, undo.text()])

    # keep: a copy of the preview as a normal layer right under it, as one undo step; the preview carries on
    shown = bytes(find(doc, PREVIEW_NAME).pixelData(preview_x, 0, size, size))
    keep.click()
    yield 0.2
    kept = find(doc, "Face 1")
    r.check("keep: 'Face 1' under the preview, unlocked, same pixels", kept is not None and not kept.locked()
            and names(doc)[-3:] == ["Sketch", "Face 1", PREVIEW_NAME]
            and bytes(kept.pixelData(preview_x, 0, size, size)) == shown, names(doc))
    r.check("keep: the status line names the new layer", "Face 1" in status.text(), status.text())
    r.check("keep is one undo step (Add Layer)", undo.text() != undo_text, [undo_text, undo.text()])
    undo.trigger()
    doc.waitForDone()
    yield Wait(lambda: find(doc, "Face 1") is None, 3, "undo of keep")
    r.check("undo of keep removes the copy only", find(doc, "Face 1") is None and undo.text() == undo_text
            and bytes(sketch.pixelData(0, 0, size, size)) == drawn
            and bytes(find(doc, PREVIEW_NAME).pixelData(preview_x, 0, size, size)) == shown, names(doc))
    k.action("edit_redo").trigger()
    doc.waitForDone()
    yield Wait(lambda: find(doc, "Face 1") is not None, 3, "redo of keep")
    kept = find(doc, "Face 1")
    r.check("redo of keep brings it back", kept is not None
            and bytes(kept.pixelData(preview_x, 0, size, size)) == shown, names(doc))
    drawn = stroke(sketch, size, [(int(60 * s), int(240 * s)), (int(196 * s), int(240 * s))], rad)
    ok = yield Wait(preview_is(drawn), 10, "result after keep")
    r.check("keep: the next result goes to the preview above the kept face",
            ok and names(doc)[-2:] == ["Face 1", PREVIEW_NAME] and names(doc).count(PREVIEW_NAME) == 1, names(doc))
    r.check("keep: kept face unchanged by the next result", kept is not None
            and bytes(kept.pixelData(preview_x, 0, size, size)) == shown)
    live.setChecked(False)
    undo_text = undo.text()
    shadow.setChecked(False)
    r.check("shadow guide off hides the guide (not an undo step)", not find(doc, GUIDE_NAME).visible()
            and undo.text() == undo_text, [undo_text, undo.text()])
    r.check("strokes intact after the whole face session", bytes(sketch.pixelData(0, 0, size, size)) == drawn)

    # progress and Cancel: a slow job shows progress, Cancel stops it, the preview keeps the last result
    shown = bytes(find(doc, PREVIEW_NAME).pixelData(preview_x, 0, size, size))
    stroke(sketch, size, [(int(20 * s), int(230 * s)), (int(30 * s), int(250 * s))], rad)
    _set_delay(echo, 5.0)
    n0 = len(journal.starts("face"))
    generate.click()
    ok = yield Wait(lambda: progress.value() > 0, 5, "progress")
    r.check("progress bar moves and Cancel is enabled while a job runs", ok and cancel.isEnabled(),
            {"progress": progress.value(), "status": status.text()})
    cancel.click()
    ok = yield Wait(lambda: status.text() == "Cancelled.", 5, "cancel")
    yield 0.2
    jobs_ = journal.starts("face")[n0:]
    r.check("cancel: the job stops, the status says so, the preview keeps the last result",
            ok and len(jobs_) == 1 and journal.fate(jobs_[0]["n"]) == "cancelled" and not cancel.isEnabled()
            and bytes(find(doc, PREVIEW_NAME).pixelData(preview_x, 0, size, size)) == shown,
            {"status": status.text(), "fates": [journal.fate(j["n"]) for j in jobs_]})
    _set_delay(echo, 0.0)

    # ---- Sketchify on the photo layer (menu action and docker button)
    _show(photo_doc)
    yield from _activate(photo_doc, "Photo")
    n0 = len(journal.starts("sketch"))
    k.action("facesketch_sketchify").trigger()
    ok = yield Wait(lambda: find(photo_doc, "Photo (sketch)") is not None and status.text().startswith("Sketch ready"),
                    20, "sketchify via action")
    jobs_ = journal.starts("sketch")[n0:]
    r.check("sketchify action: one job with the engine's default style, only the sketch output",
            ok and len(jobs_) == 1 and jobs_[0]["params"]["style"] == "1" and jobs_[0]["outputs"] == ["sketch"]
            and jobs_[0]["params"]["strength"] == 1.0, jobs_)
    r.check("sketchify: new layer directly above the source", names(photo_doc) == ["Background", "Photo", "Photo (sketch)", "Above"],
            names(photo_doc))
    result_layer = find(photo_doc, "Photo (sketch)")
    if result_layer is not None:
        b = result_layer.bounds()
        r.check("sketchify: result at the source's offset", (b.x(), b.y(), b.width(), b.height()) == (px, py, pw, ph),
                [b.x(), b.y(), b.width(), b.height()])
        r.check("sketchify: BGRA8 round trip byte-exact (echo)", bytes(result_layer.pixelData(px, py, pw, ph)) == pixels)
        result_layer.remove()
    r.check("sketchify: source layer untouched", bytes(photo.pixelData(px, py, pw, ph)) == pixels)
    # the style mix from the docker: weights go to the backend as proportions (the one shared rule)
    yield from _activate(photo_doc, "Photo")
    style = widgets["style"]
    style.setCurrentIndex(style.findData("mix"))
    for i, v in enumerate((1.0, 1.0, 0.5)):
        w(f"mix_{i + 1}", QDoubleSpinBox).setValue(v)
    n0 = len(journal.starts("sketch"))
    widgets["sketchify"].click()
    ok = yield Wait(lambda: find(photo_doc, "Photo (sketch)") is not None, 20, "sketchify with a mix")
    jobs_ = journal.starts("sketch")[n0:]
    mix = jobs_[0]["params"].get("style_mix") if jobs_ else None
    r.check("sketchify with a style mix: the weights are sent as proportions",
            ok and jobs_[0]["params"]["style"] == "mix" and mix is not None
            and all(abs(a - b) < 1e-6 for a, b in zip(mix, (0.4, 0.4, 0.2))), jobs_)
    if find(photo_doc, "Photo (sketch)") is not None:
        find(photo_doc, "Photo (sketch)").remove()
    style.setCurrentIndex(style.findData("1"))

    # ---- Face from active layer: the face engine finds the face anywhere in a layer; the result goes above it
    yield from face_from_layer(r, w, journal, photo_doc, photo, pixels, (px, py, pw, ph))

    # 16-bit document: sent as RGBA16 and written back exactly
    doc16 = k.createDocument(40, 30, "Photo16", "RGBA", "U16", "", 72.0)
    _window().addView(doc16)
    k.setActiveDocument(doc16)
    l16 = doc16.createNode("Photo16", "paintlayer")
    vals = array.array("H", [(i * 2654435761) & 0xFFFF for i in range(40 * 30 * 4)])
    l16.setPixelData(vals.tobytes(), 0, 0, 40, 30)
    doc16.rootNode().addChildNode(l16, None)
    yield from _activate(doc16, "Photo16")
    n0 = len(journal.starts("sketch"))
    widgets["sketchify"].click()
    ok = yield Wait(lambda: find(doc16, "Photo16 (sketch)") is not None, 20, "sketchify 16-bit")
    res16 = find(doc16, "Photo16 (sketch)")
    sent16 = bytes(l16.pixelData(0, 0, 40, 30))
    got16 = bytes(res16.pixelData(0, 0, 40, 30)) if res16 is not None else b""
    jobs_ = journal.starts("sketch")[n0:]
    r.check("16-bit document: sent as RGBA16, result written back exactly",
            ok and len(jobs_) == 1 and jobs_[0]["dtype"] == "uint16" and got16 == sent16,
            {"jobs": jobs_, "same_as_written": sent16 == vals.tobytes(), "n": len(got16), "layers": names(doc16)})

    # float document and a group layer: a clear message, nothing sent, nothing added
    docf = k.createDocument(32, 32, "Float", "RGBA", "F32", "", 72.0)
    _window().addView(docf)
    k.setActiveDocument(docf)
    yield 0.2
    before = names(docf)
    n0 = len(journal.starts("sketch"))
    widgets["sketchify"].click()
    yield 0.3
    r.check("float document: clear message, nothing sent", len(journal.starts("sketch")) == n0
            and "floating-point" in status.text() and names(docf) == before, status.text())
    group = docf.createGroupLayer("Group")
    docf.rootNode().addChildNode(group, None)
    yield from _activate(docf, "Group")
    widgets["sketchify"].click()
    yield 0.3
    r.check("group layer: clear message, nothing sent", len(journal.starts("sketch")) == n0
            and "group layer" in status.text(), status.text())

    for d in (photo_doc, doc16, docf):  # one document left, as in the screenshots
        d.setModified(False)
        d.close()
    yield 0.3

    # ---- the real backend (shipped weights): real faces, shadows and sketches, and the screenshots
    dlg = yield from _open_settings(widgets["settings"])
    if dlg is None:
        r.check("settings dialog opens again", False)
        return
    dlg.findChild(QLineEdit, "facesketch_address").setText(real["address"])
    dlg.findChild(QDialogButtonBox, "facesketch_buttons").button(QDialogButtonBox.Ok).click()
    ok = yield Wait(connected_to(real["address"]), 15, "the real backend")
    r.check("connected to the real backend", ok, connection.toolTip())
    _show(doc)
    yield Wait(lambda: k.activeDocument() is not None and doc_key(k.activeDocument()) == doc_key(doc), 5, "face canvas")
    yield from _activate(doc, "Sketch")
    echo_shown = bytes(find(doc, PREVIEW_NAME).pixelData(preview_x, 0, size, size))
    generate.click()
    ok = yield Wait(lambda: status.text().startswith("Face ready"), 60, "the real face")
    fpx = bytes(find(doc, PREVIEW_NAME).pixelData(preview_x, 0, size, size))
    r.check("real face engine: face generated into the preview (opaque, not blank, not the sketch)",
            ok and fpx != echo_shown and min(fpx[3::4]) == 255 and len(set(fpx[0::4])) > 8, status.text())
    old_guide = bytes(find(doc, GUIDE_NAME).pixelData(0, 0, size, size))
    live.setChecked(True)   # the sketch was just computed: nothing is sent
    shadow.setChecked(True)  # in live mode this regenerates, now with the shadow
    ok = yield Wait(lambda: find(doc, GUIDE_NAME).visible() and status.text().startswith("Face ready")
                    and bytes(find(doc, GUIDE_NAME).pixelData(0, 0, size, size)) != old_guide, 60, "the real shadow")
    gpx = bytes(find(doc, GUIDE_NAME).pixelData(0, 0, size, size))
    r.check("real face engine: shadow guide filled from the engine's shadow output",
            ok and len(gpx) == size * size * 4 and max(gpx[3::4]) > 0 and len(set(gpx[3::4])) > 8,
            {"alpha": [min(gpx[3::4]), max(gpx[3::4])], "status": status.text()})
    before_live = bytes(find(doc, PREVIEW_NAME).pixelData(preview_x, 0, size, size))
    drawn = stroke(sketch, size, [(int(150 * s), int(120 * s)), (int(186 * s), int(114 * s))], rad)
    ok = yield Wait(lambda: bytes(find(doc, PREVIEW_NAME).pixelData(preview_x, 0, size, size)) != before_live
                    and status.text().startswith("Face ready"), 60, "the real live face")
    r.check("real face engine: live mode follows a new stroke", ok, status.text())
    yield 0.5
    _screenshot(r, "krita-docker.png")
    live.setChecked(False)
    if cfg.get("docs_sketch"):
        yield from _docs_face_shot(r, generate, status, sketch, size)
    shadow.setChecked(False)
    portrait_doc, portrait, _pixels, rect = _photo_document(k, "Portrait")
    yield from _activate(portrait_doc, "Portrait")
    k.action("facesketch_sketchify").trigger()
    ok = yield Wait(lambda: find(portrait_doc, "Portrait (sketch)") is not None
                    and status.text().startswith("Sketch ready"), 120, "real sketch")
    real_sketch = find(portrait_doc, "Portrait (sketch)")
    r.check("real sketch engine: result layer above the photo",
            ok and names(portrait_doc) == ["Background", "Portrait", "Portrait (sketch)", "Above"], names(portrait_doc))
    if real_sketch is not None:
        b = real_sketch.bounds()
        r.check("real sketch engine: result covers the photo's rectangle",
                (b.x(), b.y(), b.width(), b.height()) == rect, [b.x(), b.y(), b.width(), b.height()])

    # ---- backend stopped: the status line says so and nothing is lost
    _show(doc)
    shown_ok = yield Wait(lambda: k.activeDocument() is not None and doc_key(k.activeDocument()) == doc_key(doc), 5,
                          "the face canvas to be active again")
    r.check("face canvas active again", shown_ok)
    pid = int(real["pid"])
    os.kill(pid, signal.SIGTERM)
    gone = yield Wait(lambda: _process_gone(pid), 20, "the backend to exit")
    r.check("backend stopped", gone)
    before_layers = names(doc)
    drawn = stroke(sketch, size, [(int(60 * s), int(30 * s)), (int(196 * s), int(30 * s))], rad)
    generate.click()
    ok = yield Wait(lambda: "not reachable" in status.text() or "went away" in status.text(), 15, "unreachable")
    r.check("backend stopped: the status line says the backend is not reachable", ok, status.text())
    r.check("backend stopped: sketch pixels intact, no layers added or removed",
            bytes(sketch.pixelData(0, 0, size, size)) == drawn and names(doc) == before_layers, names(doc))
    ok = yield Wait(lambda: "Not connected" in connection.text(), 5, "not connected")
    r.check("backend stopped: the docker shows 'Not connected'", ok, connection.text())
    yield from settings_dialog_and_autostart(r, widgets, doc, sketch, size)


def face_from_layer(r: Runner, w, journal, doc, photo, pixels, rect):
    """'Face from active layer' through the echo stand-in: what it sends (align auto, the layer's own pixels, the
    docker's sliders), the new layer right above the source at its position, the engine's note on the status
    line, a selection, and the no_face answer for a layer with nothing drawn on it."""
    from krita import Selection
    k = Krita.instance()
    button, status = w("face_from_layer", QPushButton), w("status", QLabel)
    px, py, pw, ph = rect
    r.check("face from active layer: the button is in the docker", button is not None)
    if button is None:
        return
    yield from _activate(doc, "Photo")
    n0 = len(journal.starts("face"))
    button.click()
    r.check("face from active layer: the UI does not wait for the backend (the job runs in the background)",
            find(doc, "Photo (face)") is None and status.text().startswith("Looking for the face in 'Photo'"),
            status.text())
    ok = yield Wait(lambda: find(doc, "Photo (face)") is not None and status.text().startswith("Face ready"), 20,
                    "face from the active layer")
    jobs_ = journal.starts("face")[n0:]
    params = jobs_[0]["params"] if jobs_ else {}
    r.check("face from active layer: one job with align auto, transparent around the face, the docker's sliders",
            ok and len(jobs_) == 1 and params.get("align") == "auto" and params.get("outside") == "transparent"
            and params.get("blend_nose") == 0.4 and params.get("gender") == "female" and jobs_[0]["outputs"] == ["face"],
            jobs_)
    r.check("face from active layer: sends the active layer's own pixels",
            bool(jobs_) and jobs_[0]["shape"] == [ph, pw, 4] and jobs_[0]["crc32"] == rgba_crc(pixels), jobs_)
    r.check("face from active layer: one new layer, directly above the source",
            names(doc) == ["Background", "Photo", "Photo (face)", "Above"], names(doc))
    result = find(doc, "Photo (face)")
    if result is not None:
        b = result.bounds()
        r.check("face from active layer: the result at the source's position, byte-exact (echo)",
                (b.x(), b.y(), b.width(), b.height()) == rect and bytes(result.pixelData(px, py, pw, ph)) == pixels,
                [b.x(), b.y(), b.width(), b.height()])
        result.remove()
    r.check("face from active layer: the source layer untouched", bytes(photo.pixelData(px, py, pw, ph)) == pixels)
    r.check("face from active layer: the engine's note on the status line",
            f"Drew the face at x 0, y 0, {pw} x {ph} pixels." in status.text(), status.text())

    # with a selection: only the selection's box is sent, and the face goes there
    sx, sy, sw, sh = px + 10, py + 5, 30, 20
    sel = Selection()
    sel.select(sx, sy, sw, sh, 255)
    doc.setSelection(sel)
    yield from _activate(doc, "Photo")
    n0 = len(journal.starts("face"))
    button.click()
    ok = yield Wait(lambda: find(doc, "Photo (face)") is not None and status.text().startswith("Face ready"), 20,
                    "face from the selection")
    jobs_ = journal.starts("face")[n0:]
    result = find(doc, "Photo (face)")
    b = result.bounds() if result is not None else None
    r.check("face from active layer with a selection: the selection's box is sent and the face put there",
            ok and len(jobs_) == 1 and jobs_[0]["shape"] == [sh, sw, 4] and b is not None
            and (b.x(), b.y(), b.width(), b.height()) == (sx, sy, sw, sh),
            {"jobs": jobs_, "bounds": [b.x(), b.y(), b.width(), b.height()] if b is not None else None})
    if result is not None:
        result.remove()
    k.action("deselect").trigger()
    doc.waitForDone()

    # nothing drawn: the backend finds no face; the message says what to draw, nothing is added
    paper = doc.createNode("Paper", "paintlayer")
    paper.setPixelData(b"\xff" * (40 * 30 * 4), 5, 5, 40, 30)
    doc.rootNode().addChildNode(paper, None)
    yield from _activate(doc, "Paper")
    before = names(doc)
    refused_before = sum(1 for e in journal.entries() if e["event"] == "no_face")
    button.click()
    ok = yield Wait(lambda: "No face was found" in status.text(), 10, "the no-face answer")
    r.check("no face in the layer: the status line says what to draw, and offers the face canvas",
            ok and status.text().startswith("No face was found in this layer. Draw the face as a line drawing")
            and "New face canvas" in status.text(), status.text())
    r.check("no face in the layer: asked once, nothing added, the layer untouched",
            sum(1 for e in journal.entries() if e["event"] == "no_face") == refused_before + 1
            and names(doc) == before and bytes(paper.pixelData(5, 5, 40, 30)) == b"\xff" * (40 * 30 * 4),
            names(doc))
    paper.remove()
    yield 0.2


def _set_delay(backend: dict, seconds: float) -> None:
    with open(backend["delay_file"], "w", encoding="utf-8") as fh:
        fh.write(str(seconds))


def _photo_document(k, name: str):
    """A document with a partly transparent gradient layer `name` (not at the origin) and an empty layer above."""
    photo_doc = k.createDocument(120, 90, name, "RGBA", "U8", "", 72.0)
    _window().addView(photo_doc)
    k.setActiveDocument(photo_doc)
    photo = photo_doc.createNode(name, "paintlayer")
    pw, ph, px, py = 80, 60, 17, 11
    pixels = bytearray()
    for y in range(ph):
        for x in range(pw):  # a gradient with partial transparency: every byte position matters
            pixels += bytes(((x * 3) & 255, (y * 4) & 255, (x * y) & 255, 255 if (x + y) % 7 else 128 + (x % 100)))
    photo.setPixelData(bytes(pixels), px, py, pw, ph)
    photo_doc.rootNode().addChildNode(photo, None)
    top = photo_doc.createNode("Above", "paintlayer")
    photo_doc.rootNode().addChildNode(top, None)
    return photo_doc, photo, bytes(pixels), (px, py, pw, ph)


def _open_settings(button):
    button.click()
    yield 0.3
    return next((w for w in QApplication.topLevelWidgets() if w.objectName() == SETTINGS_DIALOG and w.isVisible()),
                None)


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


def _window():
    k = Krita.instance()
    return k.activeWindow() or k.windows()[0]


def settings_dialog_and_autostart(r: Runner, widgets, doc, sketch, size):
    """The settings dialog against a stopped backend: test connection fails in plain words; 'Start local
    backend' auto-starts the backend command through the launcher; Generate works again; 'Stop' stops it."""
    status, connection = widgets["status"], widgets["connection"]
    dlg = yield from _open_settings(widgets["settings"])
    r.check("settings dialog opens with the backend stopped", dlg is not None)
    if dlg is None:
        return
    field = lambda name, cls: dlg.findChild(cls, "facesketch_" + name)  # noqa: E731
    result = field("settings_result", QLabel)
    field("test_connection", QPushButton).click()
    ok = yield Wait(lambda: result.text().startswith(("Failed", "Connected")), 10, "test connection")
    r.check("test connection with the backend stopped: fails in plain words",
            ok and result.text().startswith("Failed") and "not reachable" in result.text(), result.text())
    command = r.config.get("backend_command")
    if not command:
        field("buttons", QDialogButtonBox).button(QDialogButtonBox.Cancel).click()
        return
    field("backend_command", QLineEdit).setText(" ".join(shlex.quote(c) for c in command))
    field("autostart", QCheckBox).setChecked(True)
    field("start_backend", QPushButton).click()
    ok = yield Wait(lambda: "Connected" in connection.text() or "Could not start" in connection.toolTip(), 90,
                    "the auto-started backend")
    r.check("start local backend: launched through the launcher and connected", ok and "Connected" in connection.text(),
            connection.toolTip())
    pid = _autostarted_pid(r)
    r.report["autostarted_pid"] = pid
    field("test_connection", QPushButton).click()
    ok = yield Wait(lambda: result.text().startswith(("Failed", "Connected")) and "engines" in result.text(), 10,
                    "test connection 2")
    r.check("test connection with the local backend: lists the engines",
            ok and result.text().startswith("Connected") and "face (ready)" in result.text(), result.text())
    before = bytes(find(doc, PREVIEW_NAME).pixelData(size, 0, size, size))
    widgets["generate"].click()
    ok = yield Wait(lambda: status.text().startswith("Face ready"), 60, "generate again")
    after = bytes(find(doc, PREVIEW_NAME).pixelData(size, 0, size, size))
    r.check("generate works again with the auto-started backend", ok and after != before and min(after[3::4]) == 255,
            status.text())
    field("stop_backend", QPushButton).click()
    gone = yield Wait(lambda: (pid is None or _process_gone(pid)) and "Stopped" in result.text(), 20,
                      "the local backend to stop")
    r.check("stop local backend: the process is gone", gone and pid is not None and "Stopped" in result.text(),
            [pid, result.text()])
    field("buttons", QDialogButtonBox).button(QDialogButtonBox.Cancel).click()


def _autostarted_pid(r: Runner):
    """The launcher records the backend it started in the state folder (the test's temporary HOME): its pid on
    the first line (the address may follow)."""
    try:
        with open(r.config["backend_pid_file"]) as fh:
            return int(fh.readline().strip())
    except (OSError, ValueError, KeyError):
        return None


def _process_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return any(line.startswith("State:") and "Z" in line.split()[1] for line in fh)
    except OSError:
        return True


def _docs_face_shot(r: Runner, generate, status, sketch, size: int):
    """For docs/krita-docker-face.png (config "docs_sketch": an image of a whole drawn face): that drawing in the
    Sketch layer, a face and its guide generated from it, the screenshot, then the scenario's strokes back."""
    before = bytes(sketch.pixelData(0, 0, size, size))
    img = QImage(r.config["docs_sketch"]).scaled(size, size).convertToFormat(QImage.Format_ARGB32)
    data = bytearray(img.constBits().asstring(size * size * 4))
    for o in range(0, len(data), 4):  # dark strokes stay, paper becomes transparent (as a user's Sketch layer)
        data[o + 3] = 255 - min(data[o:o + 3])
        data[o:o + 3] = b"\x00\x00\x00"
    sketch.setPixelData(bytes(data), 0, 0, size, size)
    generate.click()
    ok = yield Wait(lambda: status.text().startswith("Face ready"), 60, "the face for the docs screenshot")
    yield 0.5
    if ok:
        _screenshot(r, "krita-docker-face.png")
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
    r.event(f"screenshot {name}: {saved}")
    return path if saved else None
