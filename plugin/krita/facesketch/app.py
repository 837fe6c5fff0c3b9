"""The one shared state of the plug-in: connection, status line and the workflows.

Krita creates one docker per window and one set of actions per window; all of them talk to this
single object, so a job started from a menu shows its progress in every docker.
"""
from __future__ import annotations

from .connection import Connection
from .workflow import FACE_ENGINE, SKETCH_ENGINE, FaceWorkflow, LayerFaceWorkflow, SketchifyWorkflow, Status

_app = None


class App:
    def __init__(self):
        self.connection = Connection()
        self.status = Status()
        self.face = FaceWorkflow(self.connection, self.status)
        self.layer_face = LayerFaceWorkflow(self.connection, self.status, self.face)
        self.sketchify = SketchifyWorkflow(self.connection, self.status)
        self.connection.state_changed.connect(self._connection_changed)
        self.connection.caps_changed.connect(self._caps_changed)

    def _connection_changed(self) -> None:
        c = self.connection
        if c.state in ("error", "starting", "connecting") or not self.status.running:
            self.status.show(c.message)

    def _caps_changed(self) -> None:
        self.face.apply_defaults()      # the engines' parameter defaults (hello details), until the user chose
        self.sketchify.apply_defaults()
        problems = [p for p in (self.connection.engine_problem(FACE_ENGINE),
                                self.connection.engine_problem(SKETCH_ENGINE)) if p]
        if problems:
            self.status.show(self.connection.message + " " + " ".join(problems))

    def shutdown(self) -> None:
        self.face.set_live(False)
        self.connection.shutdown()


def get() -> App:
    global _app
    if _app is None:
        _app = App()
    return _app
