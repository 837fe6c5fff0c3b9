"""What the docker's buttons do, without any widgets: face canvas, generate/live, shadow guide, keep, face from
the active layer, sketchify.

Layout of a face canvas (one document, two squares side by side):

    +-----------+-----------+      top:    [Preview] Face   (locked, right square, rewritten by each result)
    |  Sketch   |   Face    |              Face 1, Face 2…  (copies made by Keep)
    | (drawing) | (preview) |              Sketch           (the user's layer; only read, never written)
    +-----------+-----------+              [Guide] Shadow   (locked, 35 % opacity, hidden until switched on)
                                           Face template    (locked guides for eyes, nose, mouth)
                                           Background       (white, locked)

Why side by side rather than a preview layer over the sketch or a second document: drawing needs the
strokes unobscured, and the face needs to be seen while drawing (as in DeepFaceDrawing's two panes);
one document keeps a single view, zoom and undo history.

Undo: every layer the plug-in needs is created with the canvas, and results are written into them with
setPixelData, which Krita does not record. So while drawing, the undo stack holds only the user's strokes
(adding a layer mid-session would be an "Add Layer" step that Ctrl+Z removes first, and that wipes the redo
of the stroke the user just undid). Keep is a deliberate action and is one undo step: it adds a copy.
"""
from __future__ import annotations

import collections
import json
import time

from krita import Krita

from .facesketch_client import BackendError, Image, jobs

from . import layers
from .layers import InputError
from .qt import QObject, QTimer, QApplication, QByteArray, Signal, NO_BUTTON
from .template import draw_template

CANVAS_ANNOTATION = "facesketch/canvas"
FACE_ENGINE = "face"
SKETCH_ENGINE = "sketch"
PREVIEW_NAME = "[Preview] Face"
GUIDE_NAME = "[Guide] Shadow"
GUIDE_OPACITY = 0.35
LIVE_POLL_MS = 200       # how often live mode looks at the sketch layer (a copy + crc32, ~1 ms)
REGENERATE_DELAY_MS = 150


def doc_key(doc) -> str:
    return doc.rootNode().uniqueId().toString()


def find_document(key: str):
    for d in Krita.instance().documents():
        if doc_key(d) == key:
            return d
    return None


class Status(QObject):
    """The status line all dockers show: a sentence, a progress fraction (None = idle), the running jobs and
    the last few sentences (the status line's tooltip)."""

    changed = Signal()
    HISTORY = 8

    def __init__(self, parent=None):
        super().__init__(parent)
        self.text = "Ready."
        self.progress: float | None = None
        self.running: dict[str, object] = {}  # job id -> workflow that can cancel it
        self.history = collections.deque(maxlen=self.HISTORY)

    def show(self, text: str, progress: float | None = None) -> None:
        if progress is None or text != self.text:
            self.history.append(f"{time.strftime('%H:%M:%S')} {text}")
        self.text, self.progress = text, progress
        self.changed.emit()

    def cancel_all(self) -> None:
        for job_id, wf in list(self.running.items()):
            wf.cancel(job_id)


class FaceCanvas:
    """The face-canvas facts stored in the document (annotation), so they survive save and reopen."""

    def __init__(self, doc, meta: dict):
        self.doc = doc
        self.meta = meta

    @property
    def size(self) -> int:
        return int(self.meta["size"])

    @classmethod
    def of(cls, doc):
        if doc is None:
            return None
        raw = doc.annotation(CANVAS_ANNOTATION)
        if raw is None or len(raw) == 0:
            return None
        try:
            meta = json.loads(bytes(raw).decode("utf-8"))
        except ValueError:
            return None
        return cls(doc, meta) if isinstance(meta, dict) and "size" in meta else None

    def save(self) -> None:
        self.doc.setAnnotation(CANVAS_ANNOTATION, "Face Sketch canvas layout",
                               QByteArray(json.dumps(self.meta).encode("utf-8")))

    def node(self, role: str):
        uid = self.meta.get(role)
        return layers.find_node(self.doc, uid) if uid else None

    def sketch(self):
        node = self.node("sketch")
        if node is None:  # the layer was deleted and maybe redrawn: fall back to its name
            node = self.doc.nodeByName("Sketch")
            if node is not None:
                self.meta["sketch"] = layers.node_id(node)
                self.save()
        return node

    @property
    def preview_x(self) -> int:
        return self.size if self.doc.width() >= 2 * self.size else 0


class FaceWorkflow(QObject):
    """Sketch -> face on the active face canvas."""

    changed = Signal()  # live / shadow toggles, preview present

    def __init__(self, connection, status, parent=None):
        super().__init__(parent)
        self.connection = connection
        self.status = status
        # until the backend says its defaults (apply_defaults): the most plausible face
        self.params = {name: 1.0 for name, _label in jobs.FACE_SLIDERS}
        self.params.update(gender=jobs.GENDERS[0][0])
        self._params_changed = False     # the user moved a slider: later hellos keep the user's values
        self.live = False
        self.shadow_guide = False
        self._jobs: dict[str, dict] = {}  # running face jobs: id -> kind, state, submit time
        self._latest: str | None = None  # newest face job: older results are stale
        self._submitted_sum: dict[str, int] = {}
        self._seen_sum: int | None = None
        self._poll_timer = QTimer(self)
        self._poll_timer.setInterval(LIVE_POLL_MS)
        self._poll_timer.timeout.connect(self.poll)
        self._regen_timer = QTimer(self)
        self._regen_timer.setSingleShot(True)
        self._regen_timer.setInterval(REGENERATE_DELAY_MS)
        self._regen_timer.timeout.connect(lambda: self._safe(lambda: self.submit("live", force=True)))

    # -- canvas ------------------------------------------------------------------------------------

    def apply_defaults(self) -> None:
        """Take the face engine's parameter defaults from the hello reply, unless the user already chose."""
        if self._params_changed:
            return
        defaults = jobs.param_defaults(self.connection.engine(FACE_ENGINE))
        new = {k: defaults[k] for k in self.params if k in defaults}
        if new and any(self.params[k] != v for k, v in new.items()):
            self.params.update(new)
            self.changed.emit()

    def new_canvas(self):
        """A white side-by-side document with a locked template and an empty, selected Sketch layer."""
        layout = self.connection.face_layout(FACE_ENGINE)
        if layout is None:
            raise InputError("Connect to the backend first: the face canvas takes its size and template from "
                             "the face engine. " + (self.connection.message if self.connection.state != "connected"
                                                    else "This backend does not describe them (an older version?)."))
        size = layout.canvas
        k = Krita.instance()
        doc = k.createDocument(2 * size, size, "Face sketch", "RGBA", "U8", "", 72.0)
        background = doc.topLevelNodes()[0]
        background.setPixelData(b"\xff" * (2 * size * size * 4), 0, 0, 2 * size, size)
        background.setLocked(True)
        root = doc.rootNode()
        template = layers.new_layer(doc, "Face template", draw_template(layout, 2 * size), 0, 0,
                                    parent=root, above=background, locked=True)
        guide = layers.new_layer(doc, GUIDE_NAME, None, parent=root, above=template, opacity=GUIDE_OPACITY,
                                 locked=True, visible=False)
        sketch = layers.new_layer(doc, "Sketch", None, parent=root, above=guide)
        preview = layers.new_layer(doc, PREVIEW_NAME, None, parent=root, above=sketch, locked=True)
        canvas = FaceCanvas(doc, {"size": size, "sketch": layers.node_id(sketch), "template": layers.node_id(template),
                                  "guide": layers.node_id(guide), "preview": layers.node_id(preview), "kept": 0})
        canvas.save()
        doc.setModified(False)
        win = k.activeWindow()
        if win is not None:
            win.addView(doc)
        k.setActiveDocument(doc)
        # the new view picks its own active node once its layer model exists; select the sketch after that
        key, sketch_id = doc_key(doc), layers.node_id(sketch)
        QTimer.singleShot(100, lambda: self._restore_active(key, sketch_id))
        self._submitted_sum.pop(doc_key(doc), None)
        self.status.show(f"New {size}×{size} face canvas: draw on the Sketch layer (left); the face appears "
                         "on the right.")
        self._check_engine_ready()
        return doc

    def _active_canvas(self) -> FaceCanvas:
        doc = Krita.instance().activeDocument()
        canvas = FaceCanvas.of(doc)
        if canvas is None:
            raise InputError("The active document is not a face canvas: click 'New face canvas' and draw on its "
                             "Sketch layer.")
        return canvas

    # -- submitting ---------------------------------------------------------------------------------

    def _engine_params(self) -> dict:
        # the canvas is the face template: the engine must not look for the face elsewhere (align "template")
        params = jobs.face_params(self.params, self.params["gender"], align="template")
        return jobs.supported_params(params, self.connection.engine(FACE_ENGINE))

    def _outputs(self) -> list:
        return ["face", "shadow"] if self.shadow_guide else ["face"]

    def _check_engine_ready(self) -> bool:
        problem = self.connection.engine_problem(FACE_ENGINE)
        if problem:
            self.status.show(problem)
            return False
        return True

    def generate(self) -> str | None:
        return self._safe(lambda: self.submit("generate", force=True))

    def submit(self, kind: str, force: bool = False) -> str | None:
        """Send the sketch layer (flattened on white) to the face engine; `kind` is 'generate' or 'live'."""
        canvas = self._active_canvas()
        sketch = canvas.sketch()
        if sketch is None:
            raise InputError("This face canvas has no Sketch layer any more: add a paint layer named 'Sketch'.")
        layers.check_paint_layer(sketch, "Generate")
        if layers.wire_format(sketch) != "BGRA8":
            raise InputError("The face canvas must stay 8-bit RGB/Alpha: the face model reads 8-bit sketches. "
                             "Start a new face canvas.")
        size = canvas.size
        raw = layers.read_layer(sketch, 0, 0, size, size)
        fingerprint = layers.checksum(sketch, 0, 0, size, size)
        key = doc_key(canvas.doc)
        if not force and self._submitted_sum.get(key) == fingerprint:
            return None
        self._submitted_sum[key] = fingerprint
        image = layers.flatten_on_white(raw)
        params = self._engine_params()
        outputs = self._outputs()
        supersede = "live" if kind == "live" else "generate"
        entry = {"kind": kind, "state": "submitted", "t_submit": time.monotonic()}
        job_id = self.connection.submit(
            FACE_ENGINE, {"image": image}, params, outputs, supersede,
            on_result=lambda jid, images: self._safe(lambda: self._on_result(jid, images, key, entry)),
            on_error=lambda jid, err: self._safe(lambda: self._on_error(jid, err, entry)),
            on_progress=lambda jid, f, msg: self._on_progress(jid, f, msg))
        self._jobs[job_id] = entry
        previous, self._latest = self._latest, job_id
        if previous is not None and previous in self.status.running:
            # The backend drops a *queued* job with the same supersede key by itself; a job it is already
            # computing is cancelled from here, so only the newest sketch is worked on.
            prev = self._jobs.get(previous)
            if prev is not None and prev["state"] == "submitted":
                prev["replaced_by"] = job_id
            self.connection.cancel(previous)
        self.status.running[job_id] = self
        self.status.show("Live: computing the face for the newest strokes …" if kind == "live"
                         else "Generating the face …", 0.0)
        return job_id

    def _on_progress(self, job_id, fraction, message) -> None:
        if job_id == self._latest:
            self.status.show(f"Face: {message or 'working'} …", fraction)

    def _finish(self, job_id, entry, state) -> None:
        entry["state"] = state
        entry["t_done"] = time.monotonic()
        self.status.running.pop(job_id, None)
        self._jobs.pop(job_id, None)

    def _on_error(self, job_id, err: BackendError, entry) -> None:
        superseded = err.code == "superseded" or (err.code == "cancelled" and "replaced_by" in entry)
        self._finish(job_id, entry, "superseded" if superseded else err.code)
        if superseded:
            return  # a newer sketch replaced it: that one's result is on the way
        if job_id != self._latest:
            return
        # The fingerprint stays recorded: live mode tries again after the next stroke or slider change,
        # never in a loop on an error that would only repeat (not ready, unreachable).
        if err.code == "cancelled":
            self.status.show("Cancelled.")
        else:
            self.status.show(self.connection.explain(err))

    def _on_result(self, job_id, images: dict, key: str, entry) -> None:
        if job_id != self._latest:
            self._finish(job_id, entry, "stale")  # a newer sketch was sent meanwhile: ignore this one
            return
        doc = find_document(key)
        canvas = FaceCanvas.of(doc)
        if canvas is None:
            self._finish(job_id, entry, "document_closed")
            self.status.show("The face canvas was closed before the face arrived.")
            return
        face = images.get("face")
        shadow = images.get("shadow")
        if face is None:
            self._finish(job_id, entry, "bad_reply")
            self.status.show("The backend answered without a face; update the backend.")
            return
        sketch = canvas.sketch()
        restore = doc.activeNode()
        restore_id = layers.node_id(restore) if restore is not None else None
        self._put_preview(canvas, face)
        if self.shadow_guide and shadow is not None:
            self._put_guide(canvas, shadow, sketch)
        canvas.save()
        if restore_id is not None:  # inserting nodes moves the active layer later: put it back
            QTimer.singleShot(50, lambda: self._restore_active(key, restore_id))
        self._finish(job_id, entry, "done")
        seconds = entry["t_done"] - entry["t_submit"]
        self.status.show(f"Face ready ({seconds:.2f} s)." + (" Live mode is on." if self.live else ""))
        self.changed.emit()

    def _restore_active(self, key, node_id) -> None:
        doc = find_document(key)
        node = layers.find_node(doc, node_id) if doc is not None else None
        active = doc.activeNode() if doc is not None else None
        if node is not None and (active is None or layers.node_id(active) != node_id):
            doc.setActiveNode(node)

    def _put_preview(self, canvas: FaceCanvas, face: Image) -> None:
        node = canvas.node("preview")
        if node is None:  # the user deleted it: a new one at the top, above any kept faces
            node = layers.new_layer(canvas.doc, PREVIEW_NAME, face, canvas.preview_x, 0, parent=canvas.doc.rootNode(),
                                    locked=True)
            canvas.meta["preview"] = layers.node_id(node)
        else:
            layers.replace_pixels(canvas.doc, node, face, canvas.preview_x, 0)

    def _put_guide(self, canvas: FaceCanvas, shadow: Image, sketch) -> None:
        node = canvas.node("guide")
        if node is None:  # the user deleted it: a new one right under the sketch
            node = layers.new_layer(canvas.doc, GUIDE_NAME, shadow, 0, 0, parent=sketch.parentNode(),
                                    above=_node_below(sketch), opacity=GUIDE_OPACITY, locked=True)
            canvas.meta["guide"] = layers.node_id(node)
        else:
            if not node.visible():
                node.setVisible(True)
            layers.replace_pixels(canvas.doc, node, shadow, 0, 0)

    # -- toggles, sliders, keep, cancel ---------------------------------------------------------

    def set_live(self, on: bool) -> None:
        self.live = bool(on)
        if self.live:
            self._seen_sum = None
            self._poll_timer.start()
            self._safe(lambda: self.submit("live", force=False))
        else:
            self._poll_timer.stop()
        self.changed.emit()

    def set_shadow_guide(self, on: bool) -> None:
        self.shadow_guide = bool(on)
        canvas = FaceCanvas.of(Krita.instance().activeDocument())
        guide = canvas.node("guide") if canvas is not None else None
        if guide is not None:
            guide.setVisible(self.shadow_guide)
            canvas.doc.refreshProjection()
        if self.shadow_guide and canvas is not None:
            self._regenerate_if_live()
        self.changed.emit()

    def set_param(self, name: str, value) -> None:
        if self.params.get(name) == value:
            return
        self.params[name] = value
        self._params_changed = True
        self._regenerate_if_live()

    def _regenerate_if_live(self) -> None:
        if self.live:
            self._regen_timer.start()  # coalesces a slider drag into one request

    def poll(self) -> None:
        """Live mode: submit when the sketch layer changed and has settled (no button held, same as last tick)."""
        if not self.live or QApplication.mouseButtons() != NO_BUTTON:
            return
        canvas = FaceCanvas.of(Krita.instance().activeDocument())
        sketch = canvas.sketch() if canvas is not None else None
        if sketch is None:
            return
        fingerprint = layers.checksum(sketch, 0, 0, canvas.size, canvas.size)
        if fingerprint == self._submitted_sum.get(doc_key(canvas.doc)):
            self._seen_sum = fingerprint
            return
        if fingerprint != self._seen_sum:  # still changing: wait one more tick for the stroke to finish
            self._seen_sum = fingerprint
            return
        self._safe(lambda: self.submit("live"))

    def keep(self) -> str | None:
        """Copy the preview into a normal layer 'Face N' under it (one undo step); the preview carries on."""
        try:
            canvas = self._active_canvas()
        except InputError as exc:
            self.status.show(str(exc))
            return None
        node = canvas.node("preview")
        copied = layers.copy_image(node) if node is not None else None
        if copied is None:
            self.status.show("Nothing to keep yet: generate a face first.")
            return None
        image, x, y = copied
        canvas.meta["kept"] = int(canvas.meta.get("kept", 0)) + 1
        name = f"Face {canvas.meta['kept']}"
        layers.new_layer(canvas.doc, name, image, x, y, parent=node.parentNode(), above=_node_below(node))
        canvas.save()
        self.status.show(f"Kept the face as layer '{name}'.")
        self.changed.emit()
        return name

    def cancel(self, job_id: str) -> None:
        self.connection.cancel(job_id)

    def _safe(self, fn):
        """Run a user action; problems with the input become the status line, never a traceback dialog."""
        try:
            return fn()
        except InputError as exc:
            self.status.show(str(exc))
        except BackendError as exc:
            self.status.show(self.connection.explain(exc))
        return None


def _node_below(node):
    """The sibling directly under `node` (inserting 'above' it puts a layer right under `node`), or None."""
    siblings = node.parentNode().childNodes()  # bottom to top
    ids = [layers.node_id(n) for n in siblings]
    i = ids.index(layers.node_id(node))
    return siblings[i - 1] if i > 0 else None


class LayerJob(QObject):
    """One engine run on the active paint layer, the result a new layer right above it at the same position
    (Sketchify, Face from active layer). Subclasses name the engine and their words, and give `params`."""

    ENGINE = OUTPUT = PURPOSE = ""
    EMPTY = ""            # after "'<layer>' ", when nothing of the layer is left to send
    PROGRESS = ""         # the status line's label while the backend works
    ERROR_PREFIX = ""     # before a backend error's explanation
    MISSING = ""          # the backend answered without our output
    READY = ""            # "<READY> as layer '<name>' (<s> s)."

    def __init__(self, connection, status, parent=None):
        super().__init__(parent)
        self.connection = connection
        self.status = status

    def params(self) -> dict:
        raise NotImplementedError

    def region(self, doc, node):
        return layers.clamp_to_canvas(doc, node)

    def working(self, node) -> str:
        raise NotImplementedError

    def run(self) -> str | None:
        try:
            return self._run()
        except (InputError, ValueError) as exc:
            self.status.show(str(exc))
        except BackendError as exc:
            self.status.show(self.connection.explain(exc))
        return None

    def _run(self) -> str:
        doc = Krita.instance().activeDocument()
        if doc is None:
            raise InputError(f"Open an image first: {self.PURPOSE} works on the active layer.")
        node = doc.activeNode()
        layers.check_paint_layer(node, self.PURPOSE)
        rect = self.region(doc, node)
        if rect is None:
            raise InputError(f"'{node.name()}' {self.EMPTY}")
        limit = (self.connection.caps or {}).get("max_pixels")
        if limit and rect[2] * rect[3] > limit:
            raise InputError(f"'{node.name()}': " + jobs.too_large_message(rect[2], rect[3], limit))
        image = layers.read_layer(node, *rect)
        key, source_id = doc_key(doc), layers.node_id(node)
        t_submit = time.monotonic()
        job_id = self.connection.submit(
            self.ENGINE, {"image": image}, self.params(), [self.OUTPUT], None,
            on_result=lambda jid, images: self._guard(lambda: self._on_result(jid, images, key, source_id, rect,
                                                                              t_submit)),
            on_error=lambda jid, err: self._on_error(jid, err),
            on_progress=lambda jid, f, msg: self.status.show(f"{self.PROGRESS}: {msg or 'working'} …", f))
        self.status.running[job_id] = self
        self.status.show(self.working(node), 0.0)
        return job_id

    def _guard(self, fn):
        try:
            fn()
        except InputError as exc:
            self.status.show(str(exc))

    def _on_error(self, job_id, err) -> None:
        self.status.running.pop(job_id, None)
        self.status.show("Cancelled." if err.code == "cancelled" else self.ERROR_PREFIX + self.connection.explain(err))

    def _on_result(self, job_id, images, key, source_id, rect, t_submit) -> None:
        self.status.running.pop(job_id, None)
        seconds = time.monotonic() - t_submit
        doc = find_document(key)
        if doc is None:
            self.status.show(f"The image was closed before the {self.OUTPUT} arrived.")
            return
        result = images.get(self.OUTPUT)
        if result is None:
            self.status.show(self.MISSING)
            return
        source = layers.find_node(doc, source_id)
        name = f"{source.name() if source is not None else 'Layer'} ({self.OUTPUT})"
        layers.new_layer(doc, name, result, rect[0], rect[1],
                         parent=source.parentNode() if source is not None else doc.rootNode(),
                         above=source)
        doc.refreshProjection()
        notes = jobs.notes_text(jobs.result_notes(images))
        self.status.show(f"{self.READY} as layer '{name}' ({seconds:.2f} s)." + (f" {notes}" if notes else ""))

    def cancel(self, job_id: str) -> None:
        self.connection.cancel(job_id)


class LayerFaceWorkflow(LayerJob):
    """Sketch -> face on any paint layer ('Face from active layer'): the face engine finds the face drawn in the
    layer (or in the selection) at any size and place (align "auto"); the result is a new layer right above the
    source, at the same position, transparent around the face. Sliders and gender are the face canvas's."""

    ENGINE, OUTPUT, PURPOSE = FACE_ENGINE, "face", "Face from active layer"
    EMPTY = "is empty inside the canvas or the selection: draw a face on it first."
    PROGRESS, READY = "Face", "Face ready"
    MISSING = "The backend answered without a face; update the backend."

    def __init__(self, connection, status, face: FaceWorkflow, parent=None):
        super().__init__(connection, status, parent)
        self.face = face

    def params(self) -> dict:
        params = jobs.face_params(self.face.params, self.face.params["gender"], align="auto", outside="transparent")
        return jobs.supported_params(params, self.connection.engine(FACE_ENGINE))

    def region(self, doc, node):
        return layers.region_to_send(doc, node)

    def working(self, node) -> str:
        return f"Looking for the face in '{node.name()}' …"


class SketchifyWorkflow(LayerJob):
    """Photo -> pencil sketch on the active layer; the result is a new layer right above it."""

    changed = Signal()  # style, mix or strength set from the backend's defaults
    ENGINE, OUTPUT, PURPOSE = SKETCH_ENGINE, "sketch", "Sketchify"
    EMPTY = "is empty inside the canvas: nothing to sketch."
    PROGRESS, ERROR_PREFIX, READY = "Sketchify", "Sketchify: ", "Sketch ready"
    MISSING = "Sketchify: the backend answered without a sketch; update the backend."

    def __init__(self, connection, status, parent=None):
        super().__init__(connection, status, parent)
        # until the backend says its defaults (apply_defaults)
        self.style = jobs.STYLE_VALUES[0]
        self.style_mix = [1 / 3, 1 / 3, 1 / 3]
        self.strength = 1.0
        self._defaults_taken = False

    def apply_defaults(self) -> bool:
        """Take the sketch engine's defaults from the first hello reply that has them; True when taken."""
        defaults = jobs.param_defaults(self.connection.engine(SKETCH_ENGINE))
        if self._defaults_taken or not defaults:
            return False
        self._defaults_taken = True
        if defaults.get("style") in jobs.STYLE_VALUES:
            self.style = defaults["style"]
        mix = defaults.get("style_mix")
        if isinstance(mix, (list, tuple)) and len(mix) == 3:
            self.style_mix = [float(v) for v in mix]
        if isinstance(defaults.get("strength"), (int, float)):
            self.strength = float(defaults["strength"])
        self.changed.emit()
        return True

    def params(self) -> dict:
        """The engine parameters (the style mix as proportions summing to 1), limited to what the engine takes."""
        return jobs.supported_params(jobs.sketch_params(self.style, self.style_mix, self.strength),
                                     self.connection.engine(SKETCH_ENGINE))

    def working(self, node) -> str:
        return f"Sketchifying '{node.name()}' …"
