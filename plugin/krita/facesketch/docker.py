"""The "Face Sketch" docker: buttons, toggles and sliders bound to the shared App.

Every widget has an objectName ("facesketch_..."), as Qt widgets should, so scripts and accessibility tools
find them with findChild; the names are listed in docs/krita-plugin.md."""
from __future__ import annotations

from krita import DockWidget

from . import app as app_module
from .qt import (
    QWidget, QVBoxLayout, QHBoxLayout, QGridLayout, QGroupBox, QLabel, QPushButton, QCheckBox, QSlider,
    QComboBox, QProgressBar, QDoubleSpinBox, QScrollArea, HORIZONTAL, ALIGN_RIGHT,
)
from .facesketch_client import jobs

DOCKER_ID = "facesketch_docker"
DOCKER_TITLE = "Face Sketch"


def _named(widget, name: str):
    widget.setObjectName("facesketch_" + name)
    return widget


def _slider(value: float, name: str) -> QSlider:
    s = _named(QSlider(HORIZONTAL), name)
    s.setRange(0, 100)
    s.setValue(int(round(value * 100)))
    s.setToolTip(jobs.BLEND_HELP)
    return s


def _set_quietly(widget, setter, value) -> None:
    """Show a value that came from the workflow without echoing it back as a user change."""
    widget.blockSignals(True)
    setter(value)
    widget.blockSignals(False)


class FaceSketchDocker(DockWidget):
    def __init__(self):
        super().__init__()
        self.setWindowTitle(DOCKER_TITLE)
        self.app = app_module.get()
        self._build()
        self.app.status.changed.connect(self._show_status)
        self.app.face.changed.connect(self._sync_toggles)
        self.app.sketchify.changed.connect(self._sync_sketchify)
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
        self.connection_label = _named(QLabel(), "connection")
        self.connection_label.setWordWrap(True)
        self.settings_button = _named(QPushButton("Settings…"), "settings")
        self.settings_button.clicked.connect(self.open_settings)
        row.addWidget(self.connection_label, 1)
        row.addWidget(self.settings_button)
        col.addLayout(row)
        self.app.connection.state_changed.connect(self._show_connection)
        self._show_connection()

        # -- face
        box = QGroupBox("Sketch to face")
        grid = QGridLayout(box)
        self.new_canvas_button = _named(QPushButton("New face canvas"), "new_canvas")
        self.new_canvas_button.setToolTip("A white document at the face model's size with a template for eyes, "
                                          "nose and mouth, and an empty Sketch layer to draw on.")
        self.new_canvas_button.clicked.connect(lambda: face._safe(face.new_canvas))
        self.face_from_layer_button = _named(QPushButton("Face from active layer"), "face_from_layer")
        self.face_from_layer_button.setToolTip("Find the face drawn anywhere on the active layer (or in the "
                                               "selection) and add the generated face as a new layer above it, at "
                                               "the same place; around the face the new layer is transparent. "
                                               "Uses the sliders and gender below.")
        self.face_from_layer_button.clicked.connect(self.app.layer_face.run)
        self.generate_button = _named(QPushButton("Generate"), "generate")
        self.generate_button.clicked.connect(face.generate)
        self.live_check = _named(QCheckBox("Live"), "live")
        self.live_check.setToolTip("Generate after every finished stroke (only the newest sketch is computed).")
        self.live_check.toggled.connect(face.set_live)
        self.shadow_check = _named(QCheckBox("Shadow guide"), "shadow_guide")
        self.shadow_check.setToolTip("Show faint plausible strokes for what you have drawn so far, under the sketch.")
        self.shadow_check.toggled.connect(face.set_shadow_guide)
        self.keep_button = _named(QPushButton("Keep"), "keep")
        self.keep_button.setToolTip("Turn the preview into a normal layer.")
        self.keep_button.clicked.connect(face.keep)
        row = QHBoxLayout()
        row.addWidget(self.new_canvas_button)
        row.addWidget(self.face_from_layer_button)
        grid.addLayout(row, 0, 0, 1, 3)
        grid.addWidget(self.generate_button, 1, 0)
        grid.addWidget(self.live_check, 1, 1)
        grid.addWidget(self.keep_button, 1, 2)
        grid.addWidget(self.shadow_check, 2, 0, 1, 3)
        self.sliders, self.slider_values = {}, {}
        r = 3
        for name, text in jobs.FACE_SLIDERS:
            label = QLabel(text)
            s = _slider(face.params[name], "slider_" + name)
            value = _named(QLabel(f"{face.params[name]:.2f}"), "value_" + name)
            value.setAlignment(ALIGN_RIGHT)
            value.setMinimumWidth(30)
            s.valueChanged.connect(lambda v, n=name, lab=value: self._slider_moved(n, v, lab))
            grid.addWidget(label, r, 0)
            grid.addWidget(s, r, 1)
            grid.addWidget(value, r, 2)
            self.sliders[name] = s
            self.slider_values[name] = value
            r += 1
        grid.addWidget(QLabel("Gender"), r, 0)
        self.gender_combo = _named(QComboBox(), "gender")
        for value, text in jobs.GENDERS:
            self.gender_combo.addItem(text, value)
        self.gender_combo.setCurrentIndex(max(0, self.gender_combo.findData(face.params["gender"])))
        self.gender_combo.currentIndexChanged.connect(
            lambda i: face.set_param("gender", self.gender_combo.itemData(i)))
        grid.addWidget(self.gender_combo, r, 1, 1, 2)
        col.addWidget(box)

        # -- sketchify
        box = QGroupBox("Sketchify (photo to pencil sketch)")
        grid = QGridLayout(box)
        grid.addWidget(QLabel("Style"), 0, 0)
        self.style_combo = _named(QComboBox(), "style")
        for value, text, help_text in jobs.SKETCH_STYLES:
            self.style_combo.addItem(text, value)
        self.style_combo.setCurrentIndex(max(0, self.style_combo.findData(sk.style)))
        self.style_combo.setToolTip("Three pencil styles learned from FS2K, or a mix of them.")
        self.style_combo.currentIndexChanged.connect(lambda i: self._style_changed(self.style_combo.itemData(i)))
        grid.addWidget(self.style_combo, 0, 1, 1, 3)
        self.mix_spins = []
        for i in range(3):
            sp = _named(QDoubleSpinBox(), f"mix_{i + 1}")
            sp.setRange(0.0, 1.0)
            sp.setSingleStep(0.1)
            sp.setDecimals(2)
            sp.setValue(sk.style_mix[i])
            sp.setPrefix(f"{i + 1}: ")
            sp.setToolTip("Weights of the three styles; they are used as proportions (scaled to sum to 1).")
            sp.valueChanged.connect(lambda v, i=i: sk.style_mix.__setitem__(i, v))
            grid.addWidget(sp, 1, 1 + i)
            self.mix_spins.append(sp)
        grid.addWidget(QLabel("Mix"), 1, 0)
        grid.addWidget(QLabel("Blend"), 2, 0)
        self.blend_slider = _slider(sk.strength, "strength")
        self.blend_slider.setToolTip("1 = pure sketch, 0 = the original layer.")
        self.blend_slider.valueChanged.connect(lambda v: setattr(sk, "strength", v / 100.0))
        grid.addWidget(self.blend_slider, 2, 1, 1, 3)
        self.sketchify_button = _named(QPushButton("Sketchify active layer"), "sketchify")
        self.sketchify_button.clicked.connect(sk.run)
        grid.addWidget(self.sketchify_button, 3, 0, 1, 4)
        col.addWidget(box)
        self._style_changed(sk.style)

        # -- status
        self.status_label = _named(QLabel(), "status")
        self.status_label.setWordWrap(True)
        self.progress_bar = _named(QProgressBar(), "progress")
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setMaximumHeight(8)
        self.cancel_button = _named(QPushButton("Cancel"), "cancel")
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
        self.status_label.setToolTip("\n".join(st.history))
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
        """Show the workflow's state: toggles switched from a menu action or another window, defaults
        from the backend's hello."""
        face = self.app.face
        for box, on in ((self.live_check, face.live), (self.shadow_check, face.shadow_guide)):
            if box.isChecked() != on:
                _set_quietly(box, box.setChecked, on)
        for name, slider in self.sliders.items():
            v = int(round(float(face.params[name]) * 100))
            if slider.value() != v:
                _set_quietly(slider, slider.setValue, v)
                self.slider_values[name].setText(f"{v / 100:.2f}")
        i = self.gender_combo.findData(face.params.get("gender"))
        if i >= 0 and i != self.gender_combo.currentIndex():
            _set_quietly(self.gender_combo, self.gender_combo.setCurrentIndex, i)

    def _sync_sketchify(self) -> None:
        sk = self.app.sketchify
        i = self.style_combo.findData(sk.style)
        if i >= 0:
            _set_quietly(self.style_combo, self.style_combo.setCurrentIndex, i)
        for sp, v in zip(self.mix_spins, sk.style_mix):
            _set_quietly(sp, sp.setValue, v)
        _set_quietly(self.blend_slider, self.blend_slider.setValue, int(round(sk.strength * 100)))
        self._style_changed(sk.style)

    def open_settings(self) -> None:
        from .settings_dialog import SettingsDialog
        SettingsDialog(self.app.connection, self).open()
