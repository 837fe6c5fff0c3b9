"""The "Face Sketch" docker: buttons, toggles and sliders bound to the shared App."""
from __future__ import annotations

from krita import DockWidget

from . import app as app_module
from .qt import (
    QWidget, QVBoxLayout, QHBoxLayout, QGridLayout, QGroupBox, QLabel, QPushButton, QCheckBox, QSlider,
    QComboBox, QProgressBar, QDoubleSpinBox, QScrollArea, HORIZONTAL, ALIGN_RIGHT,
)
from .workflow import FACE_BLENDS, SKETCH_STYLES

DOCKER_ID = "facesketch_docker"
DOCKER_TITLE = "Face Sketch"
SLIDER_LABELS = {
    "blend_left_eye": "Left eye",
    "blend_right_eye": "Right eye",
    "blend_nose": "Nose",
    "blend_mouth": "Mouth",
    "blend_remainder": "Rest of face",
    "master": "Master",
}
SLIDER_HELP = ("How far each part is pulled towards plausible faces from the model's database: 0 keeps your "
               "strokes as drawn, 1 trusts the database (DeepFaceDrawing's blend weights).")


def _slider(value: float) -> QSlider:
    s = QSlider(HORIZONTAL)
    s.setRange(0, 100)
    s.setValue(int(round(value * 100)))
    s.setToolTip(SLIDER_HELP)
    return s


class FaceSketchDocker(DockWidget):
    def __init__(self):
        super().__init__()
        self.setWindowTitle(DOCKER_TITLE)
        self.app = app_module.get()
        self._build()
        self.app.status.changed.connect(self._show_status)
        self.app.face.changed.connect(self._sync_toggles)
        self._show_status()

    # Krita requires this; the workflows always act on the active document.
    def canvasChanged(self, canvas):
        pass

    def _build(self) -> None:
        face, sk = self.app.face, self.app.sketchify
        root = QWidget()
        col = QVBoxLayout(root)

        # -- connection
        row = QHBoxLayout()
        self.connection_label = QLabel()
        self.connection_label.setWordWrap(True)
        self.settings_button = QPushButton("Settings…")
        self.settings_button.clicked.connect(self.open_settings)
        row.addWidget(self.connection_label, 1)
        row.addWidget(self.settings_button)
        col.addLayout(row)
        self.app.connection.state_changed.connect(self._show_connection)
        self._show_connection()

        # -- face
        box = QGroupBox("Sketch to face")
        grid = QGridLayout(box)
        self.new_canvas_button = QPushButton("New face canvas")
        self.new_canvas_button.setToolTip("A white document at the face model's size with a template for eyes, "
                                          "nose and mouth, and an empty Sketch layer to draw on.")
        self.new_canvas_button.clicked.connect(lambda: face._safe(face.new_canvas))
        self.generate_button = QPushButton("Generate")
        self.generate_button.clicked.connect(face.generate)
        self.live_check = QCheckBox("Live")
        self.live_check.setToolTip("Generate after every finished stroke (only the newest sketch is computed).")
        self.live_check.toggled.connect(face.set_live)
        self.shadow_check = QCheckBox("Shadow guide")
        self.shadow_check.setToolTip("Show faint plausible strokes for what you have drawn so far, under the sketch.")
        self.shadow_check.toggled.connect(face.set_shadow_guide)
        self.keep_button = QPushButton("Keep")
        self.keep_button.setToolTip("Turn the preview into a normal layer.")
        self.keep_button.clicked.connect(face.keep)
        grid.addWidget(self.new_canvas_button, 0, 0, 1, 3)
        grid.addWidget(self.generate_button, 1, 0)
        grid.addWidget(self.live_check, 1, 1)
        grid.addWidget(self.keep_button, 1, 2)
        grid.addWidget(self.shadow_check, 2, 0, 1, 3)
        self.sliders = {}
        r = 3
        for name in FACE_BLENDS + ("master",):
            label = QLabel(SLIDER_LABELS[name])
            s = _slider(face.params[name])
            value = QLabel(f"{face.params[name]:.2f}")
            value.setAlignment(ALIGN_RIGHT)
            value.setMinimumWidth(30)
            s.valueChanged.connect(lambda v, n=name, lab=value: self._slider_moved(n, v, lab))
            grid.addWidget(label, r, 0)
            grid.addWidget(s, r, 1)
            grid.addWidget(value, r, 2)
            self.sliders[name] = s
            r += 1
        grid.addWidget(QLabel("Gender"), r, 0)
        self.gender_combo = QComboBox()
        self.gender_combo.addItems(["female", "male"])
        self.gender_combo.currentTextChanged.connect(lambda t: face.set_param("gender", t))
        grid.addWidget(self.gender_combo, r, 1, 1, 2)
        col.addWidget(box)

        # -- sketchify
        box = QGroupBox("Sketchify (photo to pencil sketch)")
        grid = QGridLayout(box)
        grid.addWidget(QLabel("Style"), 0, 0)
        self.style_combo = QComboBox()
        self.style_combo.addItems(list(SKETCH_STYLES))
        self.style_combo.setCurrentText(sk.style)
        self.style_combo.setToolTip("Three pencil styles learned from FS2K, or a mix of them.")
        self.style_combo.currentTextChanged.connect(self._style_changed)
        grid.addWidget(self.style_combo, 0, 1, 1, 3)
        self.mix_spins = []
        for i in range(3):
            sp = QDoubleSpinBox()
            sp.setRange(0.0, 1.0)
            sp.setSingleStep(0.1)
            sp.setDecimals(2)
            sp.setValue(sk.style_mix[i])
            sp.setPrefix(f"{i + 1}: ")
            sp.valueChanged.connect(lambda v, i=i: sk.style_mix.__setitem__(i, v))
            grid.addWidget(sp, 1, 1 + i)
            self.mix_spins.append(sp)
        grid.addWidget(QLabel("Mix"), 1, 0)
        grid.addWidget(QLabel("Blend"), 2, 0)
        self.blend_slider = _slider(sk.strength)
        self.blend_slider.setToolTip("1 = pure sketch, 0 = the original layer.")
        self.blend_slider.valueChanged.connect(lambda v: setattr(sk, "strength", v / 100.0))
        grid.addWidget(self.blend_slider, 2, 1, 1, 3)
        self.sketchify_button = QPushButton("Sketchify active layer")
        self.sketchify_button.clicked.connect(sk.run)
        grid.addWidget(self.sketchify_button, 3, 0, 1, 4)
        col.addWidget(box)
        self._style_changed(sk.style)

        # -- status
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setMaximumHeight(8)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.app.status.cancel_all)
        row = QHBoxLayout()
        row.addWidget(self.progress_bar, 1)
        row.addWidget(self.cancel_button)
        col.addWidget(self.status_label)
        col.addLayout(row)
        col.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(root)
        self.setWidget(scroll)

    # -- reactions -----------------------------------------------------------------------------------

    def _slider_moved(self, name: str, v: int, label: QLabel) -> None:
        label.setText(f"{v / 100:.2f}")
        self.app.face.set_param(name, v / 100.0)

    def _style_changed(self, style: str) -> None:
        self.app.sketchify.style = style
        for sp in self.mix_spins:
            sp.setEnabled(style == "mix")

    def _show_status(self) -> None:
        st = self.app.status
        self.status_label.setText(st.text)
        self.progress_bar.setValue(int((st.progress or 0.0) * 1000))
        self.progress_bar.setEnabled(st.progress is not None)
        self.cancel_button.setEnabled(bool(st.running))

    def _show_connection(self) -> None:
        c = self.app.connection
        colour = {"connected": "#3a3", "error": "#c33", "starting": "#c93", "connecting": "#c93"}.get(c.state, "#888")
        text = {"connected": "Connected", "error": "Not connected", "starting": "Starting backend",
                "connecting": "Connecting"}.get(c.state, "Disconnected")
        self.connection_label.setText(f"<span style='color:{colour}'>●</span> {text}")
        self.connection_label.setToolTip(c.message)

    def _sync_toggles(self) -> None:
        face = self.app.face
        for box, on in ((self.live_check, face.live), (self.shadow_check, face.shadow_guide)):
            if box.isChecked() != on:
                box.blockSignals(True)
                box.setChecked(on)
                box.blockSignals(False)

    def open_settings(self) -> None:
        from .settings_dialog import SettingsDialog
        SettingsDialog(self.app.connection, self).open()
