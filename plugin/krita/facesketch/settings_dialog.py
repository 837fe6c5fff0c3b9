"""Settings dialog: the same settings file the GIMP plug-in and the CLI use (facesketch_client.settings)."""
from __future__ import annotations

import shlex

from .facesketch_client import AsyncClient
from .facesketch_client import settings as fs_settings

from .qt import (
    QDialog, QDialogButtonBox, QFormLayout, QVBoxLayout, QHBoxLayout, QLabel, QLineEdit, QCheckBox,
    QDoubleSpinBox, QPushButton, QTimer, BUTTON_OK, BUTTON_CANCEL, ECHO_PASSWORD,
)


class SettingsDialog(QDialog):
    def __init__(self, connection, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Face Sketch settings")
        self.setObjectName("facesketch_settings_dialog")
        self.connection = connection
        self.settings = fs_settings.load()
        named = lambda w, n: (w.setObjectName("facesketch_" + n), w)[1]  # noqa: E731  (findChild finds them)
        s = self.settings
        form = QFormLayout()
        self.address = named(QLineEdit(s.address), "address")
        self.address.setToolTip("tcp://HOST:PORT of the facesketch backend (facesketch serve).")
        self.timeout = named(QDoubleSpinBox(), "timeout")
        self.timeout.setRange(1.0, 3600.0)
        self.timeout.setSuffix(" s")
        self.timeout.setValue(s.timeout_s)
        self.server_key = named(QLineEdit(s.server_public_key), "server_public_key")
        self.server_key.setPlaceholderText("empty = no encryption (loopback only)")
        self.client_public = named(QLineEdit(s.client_public_key), "client_public_key")
        self.client_secret = named(QLineEdit(s.client_secret_key), "client_secret_key")
        self.client_secret.setEchoMode(ECHO_PASSWORD)
        self.autostart = named(QCheckBox("Start a local backend when none answers"), "autostart")
        self.autostart.setChecked(s.autostart)
        self.command = named(QLineEdit(" ".join(shlex.quote(a) for a in s.backend_command)), "backend_command")
        self.command.setToolTip("The command that starts a local backend (written by install.py).")
        form.addRow("Address", self.address)
        form.addRow("Timeout", self.timeout)
        form.addRow("Server public key", self.server_key)
        form.addRow("Client public key", self.client_public)
        form.addRow("Client secret key", self.client_secret)
        form.addRow("", self.autostart)
        form.addRow("Backend command", self.command)

        self.result_label = named(QLabel(s.load_warning or f"Settings file: {fs_settings.path()}"), "settings_result")
        self.result_label.setWordWrap(True)
        self.test_button = named(QPushButton("Test connection"), "test_connection")
        self.test_button.clicked.connect(self.test_connection)
        self.start_button = named(QPushButton("Start local backend"), "start_backend")
        self.start_button.clicked.connect(self.start_backend)
        self.stop_button = named(QPushButton("Stop local backend"), "stop_backend")
        self.stop_button.clicked.connect(self.stop_backend)
        self.stop_button.setEnabled(connection.backend_handle is not None)
        buttons_row = QHBoxLayout()
        for b in (self.test_button, self.start_button, self.stop_button):
            buttons_row.addWidget(b)

        box = named(QDialogButtonBox(BUTTON_OK | BUTTON_CANCEL), "buttons")
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons_row)
        layout.addWidget(self.result_label)
        layout.addWidget(box)
        self._probe = None
        self._probe_timer = QTimer(self)
        self._probe_timer.setInterval(50)
        self._probe_timer.timeout.connect(self._pump_probe)

    def edited(self):
        s = fs_settings.load()
        s.address = self.address.text().strip()
        s.timeout_s = float(self.timeout.value())
        s.server_public_key = self.server_key.text().strip()
        s.client_public_key = self.client_public.text().strip()
        s.client_secret_key = self.client_secret.text().strip()
        s.autostart = self.autostart.isChecked()
        try:
            s.backend_command = shlex.split(self.command.text())
        except ValueError:
            s.backend_command = self.command.text().split()
        return s

    def _save(self) -> bool:
        """Save the dialog's settings; an address that is not a backend address is said here, and nothing is saved."""
        try:
            fs_settings.save(self.edited())
        except fs_settings.SettingsError as exc:
            self.result_label.setText(str(exc))
            return False
        return True

    def accept(self) -> None:
        if not self._save():
            return
        self._stop_probe()
        super().accept()
        self.connection.connect_backend()

    def reject(self) -> None:
        self._stop_probe()
        super().reject()

    # -- test connection without blocking the UI -------------------------------------------------

    def test_connection(self) -> None:
        self._stop_probe()
        s = self.edited()
        try:
            self._probe = AsyncClient.from_settings(s)
        except Exception as exc:  # a malformed address or key
            self.result_label.setText(f"Cannot connect: {exc}")
            return
        self.result_label.setText(f"Asking {s.address} …")
        self._probe.hello(on_result=self._probe_ok, on_error=self._probe_failed)
        self._probe_timer.start()

    def _pump_probe(self) -> None:
        if self._probe is not None:
            self._probe.process()

    def _probe_ok(self, caps) -> None:
        engines = ", ".join(f"{e.get('name')} ({'ready' if e.get('ready') else 'not ready'})"
                            for e in caps.get("engines", []))
        self.result_label.setText(f"Connected: backend {caps.get('version', '?')} on {caps.get('device', '?')}; "
                                  f"engines: {engines}.")
        QTimer.singleShot(0, self._stop_probe)

    def _probe_failed(self, err) -> None:
        self.result_label.setText(f"Failed: {err}")
        QTimer.singleShot(0, self._stop_probe)

    def _stop_probe(self) -> None:
        self._probe_timer.stop()
        if self._probe is not None:
            self._probe.close()
            self._probe = None

    # -- local backend -------------------------------------------------------------------------

    def start_backend(self) -> None:
        if not self._save():
            return
        self.connection.settings = fs_settings.load()
        self.connection.start_local_backend()
        self.result_label.setText(self.connection.message)
        self.stop_button.setEnabled(True)

    def stop_backend(self) -> None:
        """Stops in the background (the dialog stays responsive); the label tells when it is done."""
        self.stop_button.setEnabled(False)
        started = self.connection.stop_local_backend(on_done=lambda stopped: self.result_label.setText(
            "Stopped the local backend." if stopped else "No local backend was running."))
        self.result_label.setText("Stopping the local backend …" if started
                                  else "This Krita did not start a backend, so there is none to stop here.")
