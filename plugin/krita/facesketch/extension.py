"""Krita extension: menu actions (Tools ▸ Scripts, shortcut-able by id), startup and shutdown."""
from __future__ import annotations

from krita import Extension, Krita

from . import app as app_module
from .qt import QTimer

ACTIONS = (
    # id (Settings ▸ Configure Krita ▸ Keyboard Shortcuts finds them by name), text, what it does
    ("facesketch_sketchify", "Sketchify Active Layer", lambda a: a.sketchify.run()),
    ("facesketch_new_face_canvas", "New Face Canvas", lambda a: a.face._safe(a.face.new_canvas)),
    ("facesketch_generate_face", "Generate Face from Sketch", lambda a: a.face.generate()),
    ("facesketch_face_from_layer", "Face from Active Layer", lambda a: a.layer_face.run()),
    ("facesketch_keep_face", "Keep Face Preview", lambda a: a.face.keep()),
    ("facesketch_settings", "Face Sketch Settings…", None),
)
MENU = "tools/scripts"


class FaceSketchExtension(Extension):
    def setup(self):
        app = app_module.get()
        notifier = Krita.instance().notifier()
        notifier.setActive(True)
        notifier.applicationClosing.connect(app.shutdown)
        # connect once the event loop runs (auto-starts a local backend if the settings say so)
        QTimer.singleShot(0, app.connection.connect_backend)

    def createActions(self, window):
        app = app_module.get()
        for action_id, text, fn in ACTIONS:
            action = window.createAction(action_id, text, MENU)
            if fn is None:
                action.triggered.connect(lambda _=False, w=window: self._open_settings(w))
            else:
                action.triggered.connect(lambda _=False, fn=fn: fn(app))

    def _open_settings(self, window):
        from .settings_dialog import SettingsDialog
        SettingsDialog(app_module.get().connection, window.qwindow()).open()
