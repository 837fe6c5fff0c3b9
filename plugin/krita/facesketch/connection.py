"""The plug-in's link to the backend, driven by Krita's own event loop (no threads for socket I/O).

AsyncClient never blocks: a QSocketNotifier on its ZeroMQ descriptor and a 100 ms QTimer call
`process()`, which runs our callbacks on the GUI thread. The only threads are the ones that wait for a
locally auto-started backend to come up (launcher.ensure_backend blocks by design) and to stop (its
shutdown waits until the process has exited): the GUI thread never sleeps.
"""
from __future__ import annotations

import threading
import time

from .facesketch_client import AsyncClient, BackendError, jobs
from .facesketch_client import settings as fs_settings

from .qt import QObject, QTimer, QSocketNotifier, Signal, SOCKET_READ

HOST = "Krita"
SETTINGS_PLACE = "the Face Sketch docker's Settings… (or Tools ▸ Scripts ▸ Face Sketch Settings…)"


def _launcher():
    from .facesketch_client import launcher  # imported late: a broken launcher only disables auto-start
    return launcher


class Connection(QObject):
    """State: 'disconnected' | 'connecting' | 'starting' (auto-starting a local backend) | 'connected' | 'error'."""

    state_changed = Signal()
    caps_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.settings = fs_settings.load()
        self.client: AsyncClient | None = None
        self.caps: dict | None = None
        self.state = "disconnected"
        self.message = "Not connected."
        self.backend_handle = None          # launcher handle of a backend we started (stopped with Krita)
        self._notifier = None
        self._timer = QTimer(self)
        self._timer.setInterval(100)        # timeouts and the edge-triggered ZeroMQ descriptor
        self._timer.timeout.connect(self._pump)
        self._starter: threading.Thread | None = None
        self._starter_result = None
        self._stopper: threading.Thread | None = None  # stopping a local backend (stop_local_backend)
        self._stopper_result = None
        self._stop_done = None
        self._tried_autostart = False
        self._pumping = False

    # -- lifecycle ------------------------------------------------------------------------------

    def connect_backend(self, reload_settings: bool = True) -> None:
        """(Re)open the socket with the current settings and ask the backend who it is."""
        if reload_settings:
            self.settings = fs_settings.load()
        self._close_client()
        self._open_client()
        self._tried_autostart = False
        self._hello()

    def close(self) -> None:
        self._close_client()
        self._timer.stop()

    def shutdown(self) -> None:
        """Krita is closing: drop the socket and stop a backend we started ourselves."""
        self.close()
        self.stop_local_backend(started_here_only=True)

    def _open_client(self) -> bool:
        try:
            self.client = AsyncClient.from_settings(self.settings)
        except BackendError as exc:  # an address or key that cannot be used: say so, never raise into a Qt slot
            self.client = None
            self._set_state("error", str(exc))
            return False
        self._notifier = QSocketNotifier(self.client.fileno(), SOCKET_READ, self)
        self._notifier.activated.connect(self._pump)
        self._timer.start()
        return True

    def _close_client(self) -> None:
        if self._notifier is not None:
            self._notifier.setEnabled(False)
            self._notifier.deleteLater()
            self._notifier = None
        if self.client is not None:
            self.client.close()
            self.client = None

    def _pump(self, *_):
        # Callbacks write layers, and Krita's waitForDone() runs the event loop meanwhile: never re-enter process().
        if self._pumping:
            return
        self._pumping = True
        try:
            self._pump_once()
        finally:
            self._pumping = False

    def _pump_once(self):
        if self.client is not None:
            try:
                self.client.process()
            except Exception as exc:  # a bug in a callback must not kill the timer
                import traceback
                traceback.print_exc()
                self._set_state("error", f"Internal error in the Face Sketch plug-in: {exc}")
        if self._starter is not None and not self._starter.is_alive():
            self._starter = None
            self._after_autostart()
        if self._stopper is not None and not self._stopper.is_alive():
            self._stopper = None
            self._after_stop()

    def _set_state(self, state: str, message: str) -> None:
        self.state, self.message = state, message
        self.state_changed.emit()

    # -- hello / capabilities ----------------------------------------------------------------

    def _hello(self) -> None:
        if self.client is None and not self._open_client():
            return
        self._set_state("connecting", f"Connecting to {self.settings.address} …")
        self.client.hello(on_result=self._on_hello, on_error=self._on_hello_error)

    def refresh(self) -> None:
        """Ask again (after the backend came back); keeps the socket."""
        if self.client is None:
            self.connect_backend()
        else:
            self._hello()

    def _on_hello(self, caps: dict) -> None:
        self.caps = caps
        device = caps.get("device", "?")
        self._set_state("connected", f"Connected to the backend at {self.settings.address} ({device}).")
        self.caps_changed.emit()

    def _on_hello_error(self, err: BackendError) -> None:
        if err.code == "unreachable" and self._may_autostart():
            self.start_local_backend()
            return
        self._set_state("error", self.explain(err))

    def engine(self, name: str) -> dict | None:
        return jobs.engine_info(self.caps, name)

    def engine_problem(self, name: str) -> str | None:
        """None when the backend says the engine is ready (or nothing is known yet); else a sentence saying why not."""
        return jobs.engine_problem(self.caps, name)

    def explain(self, err: BackendError) -> str:
        """A backend error in plain words, with what to do about it (the same sentences as in GIMP)."""
        return jobs.explain_backend_error(err, self.settings, HOST, SETTINGS_PLACE)

    def face_layout(self, engine: str = "face"):
        """The face engine's canvas size and template boxes from the hello details (jobs.FaceLayout), or None."""
        return jobs.face_layout(self.caps, engine)

    # -- jobs ------------------------------------------------------------------------------------

    def submit(self, engine: str, images: dict, params: dict | None, outputs, supersede: str | None,
               on_result, on_error, on_progress=None) -> str:
        if self.client is None and not self._open_client():
            raise BackendError("bad_settings", self.message)
        wrapped_error = on_error

        def on_error_(job_id, err):
            if err.code in ("unreachable", "disconnected"):
                self._set_state("error", str(err))
            wrapped_error(job_id, err)

        def on_result_(job_id, images_):
            if self.state != "connected":
                self._hello()  # the backend is back: refresh what it can do
            on_result(job_id, images_)

        return self.client.submit(engine, images, params=params, outputs=outputs, supersede=supersede,
                                  on_result=on_result_, on_error=on_error_, on_progress=on_progress)

    def cancel(self, job_id: str) -> None:
        if self.client is not None:
            self.client.cancel(job_id)

    # -- local backend -------------------------------------------------------------------------

    def _may_autostart(self) -> bool:
        s = self.settings
        return (s.autostart and bool(s.backend_command) and not self._tried_autostart
                and self.backend_handle is None and self._starter is None)

    def start_local_backend(self) -> None:
        """Start settings.backend_command (if nothing answers) in a helper thread, then connect."""
        if self._starter is not None:
            return
        self._tried_autostart = True
        try:
            launcher = _launcher()
        except ImportError as exc:
            self._set_state("error", f"Cannot start a local backend: {exc}")
            return
        settings = self.settings
        self._set_state("starting", f"Starting a local backend ({' '.join(settings.backend_command[:3])} …); "
                                    "the first start can take a minute.")
        self._starter_result = None

        def work():
            t0 = time.monotonic()
            try:
                self._starter_result = ("ok", launcher.ensure_backend(settings, wait_s=90), time.monotonic() - t0)
            except Exception as exc:
                self._starter_result = ("error", exc, time.monotonic() - t0)

        self._starter = threading.Thread(target=work, name="facesketch-backend-start", daemon=True)
        self._starter.start()
        self._timer.start()  # _pump notices when the thread is done

    def _after_autostart(self) -> None:
        kind, value, _seconds = self._starter_result or ("error", RuntimeError("no result"), 0)
        if kind == "error":
            self._set_state("error", f"Could not start the local backend: {value}")
            return
        if value is not None:
            self.backend_handle = value
        self._hello()

    def stop_local_backend(self, started_here_only: bool = False, on_done=None) -> bool:
        """Stop the backend this Krita started (or, unless started_here_only, one that auto-start started
        from GIMP or an earlier session). Stopping waits until the backend has exited, so it runs in a helper
        thread and the GUI thread never waits: returns False at once when there is none to stop, else True,
        and on_done(stopped) runs later on the GUI thread (from _pump)."""
        handle, self.backend_handle = self.backend_handle, None
        launcher = None
        if handle is None:
            if started_here_only:
                return False
            try:
                launcher = _launcher()
            except ImportError:
                return False
            if not launcher.has_local_backend():  # one auto-started earlier (by GIMP or a previous Krita)
                return False
        if self._stopper is not None:
            return True
        settings = self.settings
        self._stopper_result = None
        self._stop_done = on_done

        def work():
            try:
                if handle is not None:
                    handle.stop()
                    self._stopper_result = True
                else:
                    self._stopper_result = bool(launcher.stop_local_backend(settings=settings))
            except Exception:
                self._stopper_result = False

        # not a daemon: when Krita quits, the interpreter lets it finish (it is bounded by the launcher's timeouts)
        self._stopper = threading.Thread(target=work, name="facesketch-backend-stop")
        self._stopper.start()
        self._set_state("disconnected", "Stopping the local backend …")
        self._timer.start()  # _pump notices when the thread is done
        return True

    def _after_stop(self) -> None:
        stopped, done = bool(self._stopper_result), self._stop_done
        self._stop_done = None
        self.caps = None
        self._set_state("disconnected", "The local backend was stopped." if stopped
                        else "No local backend was running.")
        if done is not None:
            try:
                done(stopped)
            except Exception:  # e.g. the dialog that asked is gone (RuntimeError from PyQt): never into a Qt slot
                pass
