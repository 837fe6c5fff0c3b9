"""Clients for the facesketch backend: pure Python + pyzmq + msgpack, shared by GIMP, Krita and the CLI.

- `Client`: blocking calls with a timeout and a cancel hook (GIMP runs each filter in its own
  process, the CLI is sequential).
- `AsyncClient`: never blocks; a Qt event loop drives it through `fileno()` (a QSocketNotifier)
  plus a timer calling `process()` (Krita shares one GUI thread with the plug-in).

Both use a DEALER socket with LINGER 0 (closing never hangs) and IMMEDIATE (nothing is queued
for a backend that is not there, so "not reachable" is known within the connect timeout). A
monitor on the socket tells when the backend goes away mid-job; ZeroMQ reconnects by itself when
it comes back.
"""
from __future__ import annotations

import itertools
import os
import time
from typing import Callable, Mapping

import zmq

from . import protocol
from .protocol import ErrorCode, ProtocolError
from .settings import address_problem


class BackendError(Exception):
    """A failure reported in plain words; `code` is a protocol.ErrorCode value."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


class BackendUnreachable(BackendError):
    pass


class BackendTimeout(BackendError):
    pass


class Image:
    """Pixels as the host has them: width, height, a protocol pixel format, row stride and bytes."""

    __slots__ = ("width", "height", "format", "stride", "data")

    def __init__(self, width: int, height: int, format: str, data, stride: int | None = None):
        if format not in protocol.PIXEL_FORMATS:
            raise ValueError(f"unknown pixel format {format!r}; use one of {', '.join(protocol.PIXEL_FORMATS)}")
        self.width = int(width)
        self.height = int(height)
        self.format = format
        self.stride = int(stride) if stride is not None else self.width * protocol.bytes_per_pixel(format)
        self.data = data

    def tobytes(self) -> bytes:
        """The pixels with a tight stride (rows of exactly width * bytes-per-pixel)."""
        row = self.width * protocol.bytes_per_pixel(self.format)
        mv = memoryview(self.data).cast("B")
        if self.stride == row:
            return bytes(mv[: row * self.height])
        return b"".join(bytes(mv[y * self.stride: y * self.stride + row]) for y in range(self.height))

    def __repr__(self) -> str:
        return f"Image({self.width}x{self.height} {self.format}, stride {self.stride})"


class Result(dict):
    """A run's output images by name, with the backend's remarks about the run (`notes`: plain-language
    sentences, e.g. that the picture held several faces and which one was drawn)."""

    def __init__(self, *args, notes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.notes = list(notes)


_MONITOR_EVENTS = (zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED
                   | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                   | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)


class _Connection:
    """The socket, its monitor and the message codec shared by both clients."""

    _counter = itertools.count(1)

    def __init__(self, address: str = protocol.DEFAULT_ADDRESS, timeout_s: float = 120.0,
                 connect_timeout_s: float = 2.0, server_public_key: str = "", client_public_key: str = "",
                 client_secret_key: str = "", context: zmq.Context | None = None):
        problem = address_problem(address)
        if problem:  # before any socket exists: ZeroMQ's own error would be a bare "Invalid argument"
            raise BackendError(ErrorCode.BAD_SETTINGS, problem)
        self.address = address
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_message_bytes: int | None = None  # the backend's per-image ceiling, once a hello told it
        self.max_pixels: int | None = None
        self._ctx = context or zmq.Context.instance()
        self.socket = self._ctx.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.IMMEDIATE, 1)
        self.socket.setsockopt(zmq.RECONNECT_IVL, 100)
        self.socket.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        self._curve = bool(server_public_key)
        if server_public_key:
            if not (client_public_key and client_secret_key):
                public, secret = zmq.curve_keypair()  # an unknown key: the backend will refuse it by name
                client_public_key, client_secret_key = public.decode(), secret.decode()
            for option, name, value in ((zmq.CURVE_SERVERKEY, "server public key", server_public_key),
                                        (zmq.CURVE_PUBLICKEY, "client public key", client_public_key),
                                        (zmq.CURVE_SECRETKEY, "client secret key", client_secret_key)):
                try:
                    self.socket.setsockopt(option, value.encode())
                except (zmq.ZMQError, UnicodeError) as exc:
                    self.socket.close(0)
                    raise BackendError(ErrorCode.BAD_SETTINGS,
                                       f"The {name} in the facesketch settings is not a CURVE key (40 characters, "
                                       "as 'facesketch keys' prints them).") from exc
        self._monitor = self.socket.get_monitor_socket(_MONITOR_EVENTS)
        self.connected = False
        # inproc sockets report no connection events; everything else does, so a message that ZeroMQ
        # accepted while the backend was going away is noticed instead of waited on until the timeout
        self._tracks_connection = not address.startswith("inproc://")
        self._auth_problem: str | None = None
        try:
            self.socket.connect(address)
        except zmq.ZMQError as exc:
            self.close()
            raise BackendError(ErrorCode.BAD_SETTINGS,
                               f"The backend address '{address}' cannot be used: {exc.strerror}.") from exc
        self._prefix = f"{os.getpid()}-{id(self) & 0xffff:x}-"

    @classmethod
    def from_settings(cls, settings, **overrides):
        kwargs = dict(address=settings.address, timeout_s=settings.timeout_s,
                      connect_timeout_s=getattr(settings, "connect_timeout_s", 2.0),
                      server_public_key=settings.server_public_key, client_public_key=settings.client_public_key,
                      client_secret_key=settings.client_secret_key)
        kwargs.update(overrides)
        return cls(**kwargs)

    def close(self) -> None:
        if self.socket is None:
            return
        try:
            self.socket.disable_monitor()
        except zmq.ZMQError:
            pass
        self._monitor.close(0)
        self.socket.close(0)
        self.socket = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def new_id(self) -> str:
        return self._prefix + str(next(self._counter))

    # -- monitor ------------------------------------------------------------------------------

    def _poll_monitor(self) -> list[int]:
        """Apply pending socket events; returns the events seen."""
        from zmq.utils.monitor import recv_monitor_message

        seen = []
        while True:
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)["event"]
            except zmq.Again:
                return seen
            seen.append(event)
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED or (event == zmq.EVENT_CONNECTED and not self._curve):
                self.connected = True
                self._auth_problem = None
            elif event == zmq.EVENT_DISCONNECTED:
                self.connected = False
            elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self._auth_problem = (f"the backend at {self.address} refused this client's key: add the client's "
                                      "public key to the backend's allow-list (facesketch keys)")
            elif event in (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL):
                self._auth_problem = (f"the backend at {self.address} speaks a different security mechanism: "
                                      "check the server key in the facesketch settings (it must be set exactly "
                                      "when the backend uses CURVE encryption)")

    def lost_since(self, sent_at: float) -> bool:
        """True when no backend has been connected for connect_timeout_s since a message was sent."""
        return (self._tracks_connection and not self.connected
                and time.monotonic() - sent_at > self.connect_timeout_s)

    def unreachable(self) -> BackendUnreachable:
        if self._auth_problem:
            return BackendUnreachable(ErrorCode.UNREACHABLE, self._auth_problem)
        return BackendUnreachable(
            ErrorCode.UNREACHABLE,
            f"backend not reachable at {self.address}: start it with 'facesketch serve' "
            "(or turn on auto-start in the facesketch settings)")

    # -- the backend's size limit -----------------------------------------------------------------

    def learn(self, header: dict) -> None:
        """Note the backend's limits from a hello reply (any hello this connection sees)."""
        max_pixels = header.get("max_pixels") if header.get("kind") == protocol.KIND_HELLO else None
        if isinstance(max_pixels, int) and not isinstance(max_pixels, bool) and max_pixels > 0:
            self.max_pixels = max_pixels
            self.max_message_bytes = protocol.max_message_bytes(max_pixels)

    @staticmethod
    def payload_size(images: Mapping[str, Image]) -> tuple[int, int]:
        """(bytes of the largest frame, pixels of the largest image) of a run request."""
        largest = max((memoryview(img.data).nbytes for img in images.values()), default=0)
        return largest, max((img.width * img.height for img in images.values()), default=0)

    def oversize(self, largest: int, pixels: int) -> BackendError | None:
        """The too_large error for a frame above the backend's ceiling, when the ceiling is known; else None."""
        if self.max_message_bytes is None or largest <= self.max_message_bytes:
            return None
        return BackendError(
            ErrorCode.TOO_LARGE,
            f"the image ({largest / 1e6:.1f} MB) is larger than the backend at {self.address} accepts (at most "
            f"{self.max_message_bytes / 1e6:.1f} MB per image with its --max-pixels {self.max_pixels}); scale it "
            f"down, or restart the backend with a higher limit: facesketch serve --max-pixels "
            f"{max(pixels, (largest - (1 << 20)) // 8 + 1)}")

    def went_away(self, largest: int) -> BackendError:
        """The error for a connection lost mid-request. A frame above any ceiling the backend could have may
        be why (ZeroMQ drops a peer that sends one), so such a request says so."""
        if largest > (1 << 20):
            return BackendError(
                ErrorCode.DISCONNECTED,
                f"the backend at {self.address} closed the connection while receiving this request: the image "
                f"({largest / 1e6:.1f} MB) may be larger than it accepts (raise its limit with facesketch serve "
                "--max-pixels), or it was stopped or crashed; nothing was changed")
        return BackendError(ErrorCode.DISCONNECTED,
                            f"the backend at {self.address} went away while working on this request "
                            "(it was stopped or crashed); nothing was changed")

    def send_cancel(self, request_id) -> None:
        """Best effort: if the backend is gone there is nothing to cancel."""
        try:
            self.socket.send_multipart(self.simple_message(protocol.OP_CANCEL, request_id), zmq.NOBLOCK)
        except zmq.ZMQError:
            pass

    # -- codec --------------------------------------------------------------------------------

    @staticmethod
    def run_message(request_id, engine: str, images: Mapping[str, Image], params: Mapping | None,
                    outputs, supersede: str | None, reply_format: str | None) -> list:
        specs, frames = [], []
        for name, img in images.items():
            specs.append(protocol.image_spec(name, img.width, img.height, img.format, img.stride))
            frames.append(img.data)
        header = {"v": protocol.PROTOCOL_VERSION, "op": protocol.OP_RUN, "id": request_id, "engine": engine,
                  "params": dict(params or {}), "images": specs}
        if outputs:
            header["outputs"] = list(outputs)
        if supersede is not None:
            header["supersede"] = supersede
        if reply_format is not None:
            header["reply_format"] = reply_format
        return [protocol.pack_header(header), *frames]

    @staticmethod
    def simple_message(op: str, request_id) -> list:
        return [protocol.pack_header({"v": protocol.PROTOCOL_VERSION, "op": op, "id": request_id})]

    @staticmethod
    def decode_reply(frames) -> tuple[dict, list]:
        try:
            header = protocol.unpack_header(frames[0].buffer if hasattr(frames[0], "buffer") else frames[0])
        except ProtocolError as exc:
            raise BackendError(exc.code, f"the backend sent a reply this plug-in cannot read: {exc.message}")
        return header, list(frames[1:])

    @staticmethod
    def result_images(header: dict, frames: list) -> "Result":
        specs = header.get("images") or []
        if len(specs) != len(frames):
            raise BackendError(ErrorCode.BAD_FRAMES, "the backend's reply is missing image data")
        notes = header.get("notes") or []
        out = Result(notes=[str(n) for n in notes] if isinstance(notes, list) else [])
        for spec, frame in zip(specs, frames):
            buf = frame.buffer if hasattr(frame, "buffer") else frame
            try:
                spec = protocol.check_image_spec(spec, len(buf), 1 << 62)
            except ProtocolError as exc:
                raise BackendError(exc.code, f"the backend's reply is malformed: {exc.message}")
            out[spec["name"]] = Image(spec["width"], spec["height"], spec["format"], buf, spec["stride"])
        return out

    @staticmethod
    def error_from(header: dict) -> BackendError:
        code = header.get("code", ErrorCode.INTERNAL)
        return BackendError(code, str(header.get("message", "the backend reported an error")))


class Client(_Connection):
    """Blocking client. Every call returns within its timeout, and within `connect_timeout_s` when
    no backend is listening."""

    def hello(self, timeout: float | None = None) -> dict:
        request_id = self.new_id()
        header, _ = self._request(self.simple_message(protocol.OP_HELLO, request_id), request_id,
                                  timeout if timeout is not None else max(self.connect_timeout_s, 5.0))
        return header

    def shutdown(self, timeout: float | None = None) -> dict:
        """Ask the backend to stop (it answers, then exits). Only a client on the backend's computer, or one
        with an allow-listed CURVE key, may; others get a `forbidden` error."""
        request_id = self.new_id()
        header, _ = self._request(self.simple_message(protocol.OP_SHUTDOWN, request_id), request_id,
                                  timeout if timeout is not None else max(self.connect_timeout_s, 5.0))
        return header

    def run(self, engine: str, images: Mapping[str, Image], params: Mapping | None = None, outputs=None,
            on_progress: Callable[[float, str], None] | None = None,
            is_cancelled: Callable[[], bool] | None = None, timeout: float | None = None,
            reply_format: str | None = None, supersede: str | None = None) -> Result:
        largest, pixels = self.payload_size(images)
        too_large = self.oversize(largest, pixels)
        if too_large is not None:
            raise too_large
        request_id = self.new_id()
        msg = self.run_message(request_id, engine, images, params, outputs, supersede, reply_format)
        try:
            header, frames = self._request(msg, request_id, timeout if timeout is not None else self.timeout_s,
                                           on_progress, is_cancelled)
        except BackendError as exc:
            if exc.code != ErrorCode.DISCONNECTED or largest <= (1 << 20):
                raise
            raise self._why_disconnected(largest, pixels) from None
        return self.result_images(header, frames)

    def _why_disconnected(self, largest: int, pixels: int) -> BackendError:
        """After a lost connection with a big frame: ask the backend (it reconnects by itself) for its limit."""
        if self.max_message_bytes is None:
            try:
                self.hello(timeout=max(self.connect_timeout_s, 5.0))  # a loaded machine reconnects slowly
            except BackendError:
                pass
        return self.oversize(largest, pixels) or self.went_away(largest)

    def _send(self, msg: list) -> None:
        deadline = time.monotonic() + self.connect_timeout_s
        while True:
            self._poll_monitor()
            try:
                self.socket.send_multipart(msg, zmq.NOBLOCK, copy=False)
                return
            except zmq.Again:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self.unreachable()
            self.socket.poll(min(50, int(remaining * 1000) + 1), zmq.POLLOUT)

    def _request(self, msg, request_id, timeout: float, on_progress=None, is_cancelled=None):
        self._send(msg)
        sent_at = time.monotonic()
        deadline = sent_at + timeout
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        cancel_sent = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.send_cancel(request_id)
                raise BackendTimeout(ErrorCode.TIMEOUT,
                                     f"the backend at {self.address} did not answer within {timeout:g} s "
                                     "(raise the timeout in the facesketch settings for large images)")
            events = dict(poller.poll(min(100, int(remaining * 1000) + 1)))
            if self._monitor in events:
                if zmq.EVENT_DISCONNECTED in self._poll_monitor():
                    raise self.went_away(0)
            if self.lost_since(sent_at):
                raise self.unreachable()
            if is_cancelled is not None and not cancel_sent and is_cancelled():
                self.send_cancel(request_id)
                cancel_sent = True
            if self.socket not in events:
                continue
            while True:
                try:
                    frames = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                header, data = self.decode_reply(frames)
                self.learn(header)
                if header.get("id") != request_id:
                    continue  # a late reply to an earlier request that timed out or was cancelled
                kind = header.get("kind")
                if kind == protocol.KIND_PROGRESS:
                    if on_progress is not None:
                        on_progress(float(header.get("fraction", 0.0)), str(header.get("message", "")))
                elif kind == protocol.KIND_ERROR:
                    raise self.error_from(header)
                elif kind in (protocol.KIND_RESULT, protocol.KIND_HELLO, protocol.KIND_SHUTDOWN):
                    return header, data
                # accepted / cancel acknowledgements need no action


class _AsyncJob:
    __slots__ = ("id", "message", "on_result", "on_error", "on_progress", "deadline", "sent", "send_deadline",
                 "sent_at", "largest", "pixels", "error")

    def __init__(self, request_id, message, on_result, on_error, on_progress, deadline, send_deadline,
                 largest=0, pixels=0):
        self.id = request_id
        self.message = message
        self.on_result = on_result
        self.on_error = on_error
        self.on_progress = on_progress
        self.deadline = deadline
        self.send_deadline = send_deadline
        self.sent = False
        self.sent_at = 0.0
        self.largest = largest   # bytes of the largest image frame, pixels of the largest image
        self.pixels = pixels
        self.error = None        # a failure known before sending, delivered by the next process()


class AsyncClient(_Connection):
    """Non-blocking client for an event loop: nothing here ever waits.

    Wire `fileno()` to a read notifier and call `process()` when it fires and from a ~100 ms timer
    (the ZeroMQ descriptor is edge-triggered, and timeouts need a clock). Callbacks run inside
    `process()`, on the caller's thread.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._jobs: dict[str, _AsyncJob] = {}

    def fileno(self) -> int:
        return self.socket.getsockopt(zmq.FD)

    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    def submit(self, engine: str, images: Mapping[str, Image], params: Mapping | None = None, outputs=None,
               supersede: str | None = None, on_result=None, on_error=None, on_progress=None,
               timeout: float | None = None, reply_format: str | None = None) -> str:
        request_id = self.new_id()
        message = self.run_message(request_id, engine, images, params, outputs, supersede, reply_format)
        largest, pixels = self.payload_size(images)
        self._add(request_id, message, lambda header, frames: on_result and on_result(
            request_id, self.result_images(header, frames)), on_error, on_progress, timeout, largest, pixels)
        return request_id

    def hello(self, on_result=None, on_error=None) -> str:
        request_id = self.new_id()
        self._add(request_id, self.simple_message(protocol.OP_HELLO, request_id),
                  lambda header, frames: on_result and on_result(header),
                  (lambda _id, err: on_error(err)) if on_error else None, None,
                  max(self.connect_timeout_s, 5.0))
        return request_id

    def cancel(self, request_id: str) -> None:
        """Ask the backend to drop the job; its on_error gets a `cancelled` error when it confirms."""
        job = self._jobs.get(request_id)
        if job is None:
            return
        if not job.sent:
            del self._jobs[request_id]
            self._fail(job, BackendError(ErrorCode.CANCELLED, "cancelled"))
            return
        self.send_cancel(request_id)

    def _add(self, request_id, message, on_result, on_error, on_progress, timeout, largest=0, pixels=0) -> None:
        now = time.monotonic()
        job = _AsyncJob(request_id, message, on_result, on_error, on_progress,
                        now + (timeout if timeout is not None else self.timeout_s), now + self.connect_timeout_s,
                        largest, pixels)
        self._jobs[request_id] = job
        job.error = self.oversize(largest, pixels)
        if job.error is None:
            self._try_send(job)

    def _try_send(self, job: _AsyncJob) -> None:
        try:
            self.socket.send_multipart(job.message, zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return
        job.sent = True
        job.sent_at = time.monotonic()
        job.message = None  # the frames are ZeroMQ's now; drop our reference

    def _fail(self, job: _AsyncJob, error: BackendError) -> None:
        if job.on_error is not None:
            job.on_error(job.id, error)

    def process(self) -> None:
        """Handle everything that is ready: replies, socket events, sends waiting for a connection, timeouts."""
        if self.socket is None:
            return
        for job in [j for j in self._jobs.values() if j.error is not None]:
            del self._jobs[job.id]
            self._fail(job, job.error)
        if zmq.EVENT_DISCONNECTED in self._poll_monitor():
            for job in [j for j in self._jobs.values() if j.sent]:
                del self._jobs[job.id]
                self._fail(job, self.oversize(job.largest, job.pixels) or self.went_away(job.largest))
        while self.socket is not None and self.socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            frames = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
            try:
                header, data = self.decode_reply(frames)
            except BackendError:
                continue
            self.learn(header)
            job = self._jobs.get(header.get("id"))
            if job is None:
                continue
            kind = header.get("kind")
            if kind == protocol.KIND_PROGRESS:
                if job.on_progress is not None:
                    job.on_progress(job.id, float(header.get("fraction", 0.0)), str(header.get("message", "")))
            elif kind == protocol.KIND_ERROR:
                del self._jobs[job.id]
                self._fail(job, self.error_from(header))
            elif kind in (protocol.KIND_RESULT, protocol.KIND_HELLO, protocol.KIND_SHUTDOWN):
                del self._jobs[job.id]
                try:
                    job.on_result(header, data)
                except BackendError as exc:
                    self._fail(job, exc)
        now = time.monotonic()
        for job in list(self._jobs.values()):
            if not job.sent:
                self._try_send(job)
                if not job.sent and now >= job.send_deadline:
                    del self._jobs[job.id]
                    self._fail(job, self.unreachable())
            elif self.lost_since(job.sent_at):
                del self._jobs[job.id]
                self._fail(job, self.unreachable())
            elif now >= job.deadline:
                del self._jobs[job.id]
                self.send_cancel(job.id)
                self._fail(job, BackendTimeout(ErrorCode.TIMEOUT,
                                               f"the backend at {self.address} did not answer in time "
                                               "(raise the timeout in the facesketch settings)"))
