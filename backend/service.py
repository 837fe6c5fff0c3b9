"""The facesketch service: a ZeroMQ ROUTER socket in front of one inference worker.

Threads:
- the socket thread owns the ROUTER socket. It validates requests, answers `hello` and errors at
  once, queues `run` jobs, handles cancel/supersede, and forwards whatever the worker posts. It
  never runs a model, so the service stays responsive while a job computes.
- the worker thread takes jobs from a bounded queue, decodes pixels, runs the engine and posts
  progress/results back through an inproc PUSH socket (ZeroMQ sockets are not thread-safe, so
  only the socket thread touches the ROUTER). There is one worker thread per runner (`runners()`):
  a LocalRunner here; the Ray front end (scale_out.py) has one per Ray actor, each sending its jobs
  to its actor, so queue, cancel, supersede and validation stay in this one process.

A client that vanishes is noticed when a reply to it cannot be routed (ROUTER_MANDATORY): its
running job is cancelled at the engine's next check and its queued jobs are dropped.
"""
from __future__ import annotations

import collections
import dataclasses
import errno
import logging
import sys
import threading
import time
from typing import Any

import zmq
from facesketch_client import protocol
from facesketch_client.protocol import ErrorCode, ProtocolError

from . import __version__, pixels
from .engines.base import Cancelled, Engine, EngineError, JobContext

log = logging.getLogger("facesketch.service")

DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_QUEUE_SIZE = 16
PROGRESS_INTERVAL_S = 0.05
SHUTDOWN_FLUSH_S = 0.3  # after a shutdown request: time to deliver its reply and the cancelled jobs' errors


def is_out_of_memory(exc: BaseException) -> bool:
    """MemoryError, torch.OutOfMemoryError (CUDA/MPS allocations), or another error saying so."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")  # never imported here: an engine that uses torch has imported it
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    if oom is not None and isinstance(exc, oom):
        return True
    return "out of memory" in str(exc).lower()


def engine_failure(exc: BaseException, engine: str, device: str) -> tuple[str, str]:
    """(error code, message) for an exception out of an engine's run; shared by every way jobs run."""
    if isinstance(exc, EngineError):
        return exc.code, exc.message
    if is_out_of_memory(exc):
        where = "backend" if isinstance(exc, MemoryError) else f"{device} device"
        return ErrorCode.TOO_LARGE, f"the {where} ran out of memory on this image; try a smaller one"
    return ErrorCode.INTERNAL, (f"the '{engine}' engine failed ({exc.__class__.__name__}: {exc}); "
                                "details are in the backend log")


@dataclasses.dataclass
class CurveConfig:
    """CURVE encryption with an allow-list: only clients whose public key is in clients_dir get in."""

    server_public: bytes
    server_secret: bytes
    clients_dir: str


@dataclasses.dataclass(eq=False)
class Job:
    identity: bytes
    request_id: Any
    engine: Engine
    params: dict
    specs: list
    frames: list
    outputs: list
    reply_format: str | None
    supersede: str | None
    cancel_reason: str | None = None   # set by the socket thread: "cancelled" / "superseded" / "gone"

    @property
    def key(self):
        return (self.identity, self.request_id)


class Service:
    def __init__(self, bind: str, engines: dict[str, Engine], device: str = "cpu",
                 max_pixels: int = DEFAULT_MAX_PIXELS, queue_size: int = DEFAULT_QUEUE_SIZE,
                 curve: CurveConfig | None = None, insecure: bool = False):
        if not protocol.is_loopback(bind) and curve is None and not insecure:
            raise ValueError(
                f"refusing to listen on {bind}: that address is reachable from other machines, and without "
                "encryption anyone there could use this backend. Configure CURVE keys (--curve KEYDIR, "
                "made by 'facesketch keys') or pass --insecure if this network is trusted.")
        self.bind_address = bind
        self.engines = engines
        self.device = device
        self.max_pixels = max_pixels
        self.queue_size = queue_size
        self.curve = curve
        self.ctx = zmq.Context()
        self._auth = None
        self._queue: collections.deque[Job] = collections.deque()
        self._queue_cv = threading.Condition()
        self._active: set[Job] = set()        # the jobs workers are on (read by the socket thread)
        self._pending: dict[tuple, Job] = {}  # every queued or running job by (identity, id)
        self._stop = threading.Event()
        self._stop_at: float | None = None    # set by a shutdown request: the socket loop ends then
        self._outbox_address = f"inproc://facesketch-outbox-{id(self)}"
        self._threads: list[threading.Thread] = []
        self.endpoint = None  # the bound address, with the real port when bound to :0 or *

    # -- lifecycle ----------------------------------------------------------------------------

    def _open(self):
        router = self.ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # Hard ceiling per frame; the pixel limit gives the friendly `too_large` reply well below it.
        router.setsockopt(zmq.MAXMSGSIZE, protocol.max_message_bytes(self.max_pixels))
        router.setsockopt(zmq.SNDHWM, 10_000)
        router.setsockopt(zmq.RCVHWM, 10_000)
        if self.curve is not None:
            from zmq.auth.thread import ThreadAuthenticator

            self._auth = ThreadAuthenticator(self.ctx, log=logging.getLogger("facesketch.auth"))
            self._auth.start()
            self._auth.configure_curve(domain="*", location=self.curve.clients_dir)
            router.curve_secretkey = self.curve.server_secret
            router.curve_publickey = self.curve.server_public
            router.curve_server = True
        router.bind(self.bind_address)
        self.endpoint = router.getsockopt(zmq.LAST_ENDPOINT).decode()
        outbox = self.ctx.socket(zmq.PULL)
        outbox.setsockopt(zmq.LINGER, 0)
        outbox.bind(self._outbox_address)
        return router, outbox

    def runners(self) -> list:
        """What runs jobs: one worker thread each, all taking from the one queue. Here one local runner on
        this process's device; the Ray front end (scale_out.py) gives one per Ray actor."""
        return [LocalRunner(self)]

    def start(self) -> "Service":
        """Bind and run the socket loop and the workers in background threads."""
        router, outbox = self._open()
        workers = [threading.Thread(target=self._worker_loop, args=(runner,), name=f"facesketch-worker-{i}",
                                    daemon=True) for i, runner in enumerate(self.runners())]
        sockets = threading.Thread(target=self._socket_loop, args=(router, outbox), name="facesketch-sockets",
                                   daemon=True)
        self._threads = [*workers, sockets]
        for t in self._threads:
            t.start()
        log.info("serving on %s (device %s, engines: %s)", self.endpoint, self.device,
                 ", ".join(f"{n}{'' if e.readiness()[0] else ' (not ready)'}" for n, e in self.engines.items()))
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._queue_cv:
            for job in self._active:
                job.cancel_reason = "cancelled"
            self._queue_cv.notify_all()
        for t in self._threads:
            t.join(timeout)
        if self._auth is not None:
            self._auth.stop()
        self.ctx.term()

    def wait(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(0.5)

    # -- socket thread ------------------------------------------------------------------------

    def _socket_loop(self, router: zmq.Socket, outbox: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(outbox, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if self._stop_at is not None and time.monotonic() >= self._stop_at:
                    self._stop.set()
                    break
                events = dict(poller.poll(100 if self._stop_at is None else 20))
                if outbox in events:
                    self._drain(outbox, lambda msg: self._send(router, msg[0].bytes, msg[1:]))
                if router in events:
                    self._drain(router, lambda msg: self._on_request(router, msg))
        except Exception:  # the loop must not die silently; log it and leave a clean shutdown
            log.exception("socket loop crashed")
            self._stop.set()
        finally:
            router.close(0)
            outbox.close(0)

    @staticmethod
    def _drain(sock: zmq.Socket, handle) -> None:
        while True:
            try:
                msg = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            handle(msg)

    def _send(self, router: zmq.Socket, identity: bytes, frames: list) -> None:
        try:
            router.send_multipart([identity, *frames], zmq.NOBLOCK, copy=False)
        except zmq.ZMQError as exc:
            if exc.errno == errno.EHOSTUNREACH:
                self._client_gone(identity)
            elif isinstance(exc, zmq.Again):
                log.warning("client %s is not reading its replies; dropped one", identity.hex())
            else:
                raise

    def _reply(self, router, identity: bytes, header: dict, frames=()) -> None:
        header.setdefault("v", protocol.PROTOCOL_VERSION)
        self._send(router, identity, [protocol.pack_header(header), *frames])

    def _error(self, router, identity, request_id, code: str, message: str) -> None:
        log.info("request %r: %s: %s", request_id, code, message)
        self._reply(router, identity, {"kind": protocol.KIND_ERROR, "id": request_id, "code": code,
                                       "message": message})

    def _on_request(self, router, msg) -> None:
        identity = msg[0].bytes
        request_id = None
        try:
            if len(msg) < 2:
                raise ProtocolError(ErrorCode.BAD_HEADER, "the message has no header frame")
            header = protocol.unpack_header(msg[1].buffer)
            request_id = header.get("id")
            if not protocol.request_id_ok(request_id):
                request_id = None
                raise ProtocolError(ErrorCode.BAD_HEADER,
                                    "every request needs an 'id': a short string or a non-negative integer")
            if header.get("v") != protocol.PROTOCOL_VERSION:
                raise ProtocolError(
                    ErrorCode.VERSION_MISMATCH,
                    f"this backend speaks protocol version {protocol.PROTOCOL_VERSION} and the request says "
                    f"{protocol.short_repr(header.get('v'))}: update the plug-in and the backend together (python3 install.py)")
            op = header.get("op")
            frames = msg[2:]
            if op == protocol.OP_HELLO:
                self._expect_frames(frames, 0)
                self._reply(router, identity, self._hello(request_id))
            elif op == protocol.OP_RUN:
                self._on_run(router, identity, request_id, header, frames)
            elif op == protocol.OP_CANCEL:
                self._expect_frames(frames, 0)
                self._on_cancel(router, identity, request_id)
            elif op == protocol.OP_SHUTDOWN:
                self._expect_frames(frames, 0)
                self._on_shutdown(router, identity, request_id, msg[1])
            else:
                raise ProtocolError(ErrorCode.UNKNOWN_OP,
                                    f"unknown op {protocol.short_repr(op)}; this backend knows {', '.join(protocol.OPS)}")
        except (ProtocolError, EngineError) as exc:
            self._error(router, identity, request_id, exc.code, exc.message)
        except Exception as exc:  # never let one request take the service down
            log.exception("request %r failed", request_id)
            self._error(router, identity, request_id, ErrorCode.INTERNAL,
                        f"the backend failed on this request ({exc.__class__.__name__}); details are in its log")

    @staticmethod
    def _expect_frames(frames, n: int) -> None:
        if len(frames) != n:
            raise ProtocolError(ErrorCode.BAD_FRAMES,
                                f"the header describes {n} image frame(s) but {len(frames)} were sent")

    def _hello(self, request_id) -> dict:
        return {"kind": protocol.KIND_HELLO, "id": request_id, "version": __version__,
                "protocol": protocol.PROTOCOL_VERSION, "device": self.device, "max_pixels": self.max_pixels,
                "queue_size": self.queue_size, "formats": list(protocol.PIXEL_FORMATS),
                "engines": [e.describe() for e in self.engines.values()]}

    def _on_run(self, router, identity, request_id, header, frames) -> None:
        if self._stop_at is not None:
            raise ProtocolError(ErrorCode.BUSY, "the backend is shutting down; try again once it is restarted")
        if (identity, request_id) in self._pending:
            raise ProtocolError(ErrorCode.BAD_HEADER, f"request id {request_id!r} is already in use by a pending request")
        name = header.get("engine")
        engine = self.engines.get(name) if isinstance(name, str) else None
        if engine is None:
            raise ProtocolError(ErrorCode.UNKNOWN_ENGINE,
                                f"no engine named {protocol.short_repr(name)}; this backend offers {', '.join(self.engines)}")
        params = header.get("params", {})
        if not isinstance(params, dict):
            raise ProtocolError(ErrorCode.BAD_HEADER, "'params' must be a map of parameter names to values")
        params = engine.validate_params(params)
        specs = header.get("images")
        if not isinstance(specs, list) or not specs:
            raise ProtocolError(ErrorCode.BAD_HEADER, "'images' must list the image frames that follow the header")
        self._expect_frames(frames, len(specs))
        specs = [protocol.check_image_spec(s, len(f), self.max_pixels) for s, f in zip(specs, frames)]
        names = [s["name"] for s in specs]
        known_inputs = {i.name for i in engine.inputs}
        for s in names:
            if s not in known_inputs:
                raise ProtocolError(ErrorCode.BAD_HEADER,
                                    f"engine '{engine.name}' takes no image named {protocol.short_repr(s)}; it takes {', '.join(sorted(known_inputs))}")
        if len(set(names)) != len(names):
            raise ProtocolError(ErrorCode.BAD_HEADER, "two images share one name")
        missing = [i.name for i in engine.inputs if i.required and i.name not in names]
        if missing:
            raise ProtocolError(ErrorCode.BAD_FRAMES, f"engine '{engine.name}' needs image {', '.join(missing)}")
        # Every field's type is checked here, before it is hashed, compared or quoted: a peer's list where a
        # string belongs is its mistake (bad_header), never the backend's (internal).
        outputs = header.get("outputs") or list(engine.default_outputs)
        if not isinstance(outputs, list) or any(not isinstance(o, str) or o not in engine.outputs for o in outputs):
            raise ProtocolError(ErrorCode.BAD_HEADER, f"engine '{engine.name}' can return "
                                                      f"{', '.join(engine.outputs)}; asked for {protocol.short_repr(outputs)}")
        reply_format = header.get("reply_format")
        if reply_format is not None and (not isinstance(reply_format, str) or reply_format not in protocol.PIXEL_FORMATS):
            raise ProtocolError(ErrorCode.BAD_HEADER, f"unknown reply_format {protocol.short_repr(reply_format)}; "
                                                      f"use one of {', '.join(protocol.PIXEL_FORMATS)}")
        supersede = header.get("supersede")
        if supersede is not None and (not isinstance(supersede, str) or not 0 < len(supersede) <= protocol.MAX_NAME_CHARS):
            raise ProtocolError(ErrorCode.BAD_HEADER,
                                f"'supersede' must be a string key of 1 to {protocol.MAX_NAME_CHARS} characters")
        ready, reason = engine.readiness()
        if not ready:
            raise ProtocolError(ErrorCode.NOT_READY, f"the '{engine.name}' engine is not ready: {reason}")

        job = Job(identity, request_id, engine, params, specs, list(frames), outputs, reply_format, supersede)
        with self._queue_cv:
            if supersede is not None:
                for old in [j for j in self._queue if j.identity == identity and j.supersede == supersede]:
                    self._queue.remove(old)
                    del self._pending[old.key]
                    self._error(router, identity, old.request_id, ErrorCode.SUPERSEDED,
                                "a newer request with the same supersede key replaced this one")
            if len(self._queue) >= self.queue_size:
                raise ProtocolError(ErrorCode.BUSY,
                                    f"the backend is busy ({len(self._queue)} jobs waiting); try again in a moment")
            self._queue.append(job)
            self._pending[job.key] = job
            position = len(self._queue)
            self._queue_cv.notify()
        self._reply(router, identity, {"kind": protocol.KIND_ACCEPTED, "id": request_id, "position": position})

    def _on_cancel(self, router, identity, request_id) -> None:
        with self._queue_cv:
            job = self._pending.get((identity, request_id))
            if job is None:
                found = False
            elif job in self._active:
                job.cancel_reason = "cancelled"   # the worker replies when the engine stops
                found = True
            else:
                self._queue.remove(job)
                del self._pending[job.key]
                found = True
                self._error(router, identity, request_id, ErrorCode.CANCELLED, "cancelled at the client's request")
        if not found:
            self._reply(router, identity, {"kind": protocol.KIND_CANCEL, "id": request_id, "found": False})

    # -- shutdown -------------------------------------------------------------------------------

    def shutdown_allowed(self, peer_address: str | None, user_id: str | None) -> bool:
        """Who may stop this backend: with CURVE every peer holds an allow-listed key (the handshake checked
        it, and ZeroMQ's authenticator names it as the message's User-Id); without, only a peer on this
        computer (a loopback address, or an ipc/inproc endpoint, which only this computer reaches)."""
        if self.curve is not None:
            return bool(user_id)
        if self.bind_address.startswith(("ipc://", "inproc://")):
            return True
        return bool(peer_address) and protocol.is_loopback_host(peer_address)

    @staticmethod
    def _frame_property(frame, name: str) -> str | None:
        try:
            return frame.get(name)
        except (zmq.ZMQError, AttributeError, TypeError):
            return None

    def _on_shutdown(self, router, identity, request_id, header_frame) -> None:
        peer = self._frame_property(header_frame, "Peer-Address")
        user = self._frame_property(header_frame, "User-Id") if self.curve is not None else None
        if not self.shutdown_allowed(peer, user):
            raise ProtocolError(ErrorCode.FORBIDDEN,
                                f"only a client on the backend's own computer (or with an allow-listed CURVE key) "
                                f"may shut it down; this request came from {peer or 'an unknown address'}")
        log.info("shutdown requested by %s%s", peer or "a local client", f" (key {user})" if user else "")
        with self._queue_cv:
            dropped = list(self._queue)
            self._queue.clear()
            for job in dropped:
                del self._pending[job.key]
            for job in self._active:
                job.cancel_reason = "cancelled"
            self._stop_at = time.monotonic() + SHUTDOWN_FLUSH_S
        for job in dropped:
            self._error(router, job.identity, job.request_id, ErrorCode.CANCELLED,
                        "the backend was shut down before this request ran")
        self._reply(router, identity, {"kind": protocol.KIND_SHUTDOWN, "id": request_id, "stopping": True})

    def _client_gone(self, identity: bytes) -> None:
        with self._queue_cv:
            dropped = [j for j in self._queue if j.identity == identity]
            for j in dropped:
                self._queue.remove(j)
                del self._pending[j.key]
            running = [j for j in self._active if j.identity == identity]
            for j in running:
                j.cancel_reason = "gone"
        if dropped or running:
            log.info("client %s went away: dropped %d queued job(s)%s", identity.hex(), len(dropped),
                     f" and stopped {len(running)} running" if running else "")

    # -- worker thread ------------------------------------------------------------------------

    def _worker_loop(self, runner) -> None:
        outbox = self.ctx.socket(zmq.PUSH)
        outbox.setsockopt(zmq.LINGER, 0)
        outbox.connect(self._outbox_address)
        try:
            while True:
                if not runner.wait_ready(self._stop):  # e.g. a Ray actor being restarted: take no job meanwhile
                    return
                with self._queue_cv:
                    while not self._queue and not self._stop.is_set():
                        self._queue_cv.wait(0.5)
                    if self._stop.is_set():
                        return
                    job = self._queue.popleft()
                    self._active.add(job)
                try:
                    runner.run(job, outbox)
                finally:
                    with self._queue_cv:
                        self._active.discard(job)
                        self._pending.pop(job.key, None)
        finally:
            outbox.close(0)

    def _post(self, outbox, job: Job, header: dict, frames=()) -> None:
        header.setdefault("v", protocol.PROTOCOL_VERSION)
        header["id"] = job.request_id
        outbox.send_multipart([job.identity, protocol.pack_header(header), *frames], copy=False)

    def _post_error(self, outbox, job, code, message) -> None:
        log.info("request %r: %s: %s", job.request_id, code, message)
        self._post(outbox, job, {"kind": protocol.KIND_ERROR, "code": code, "message": message})

    def progress_poster(self, outbox, job: Job):
        """A progress callback that posts at most every PROGRESS_INTERVAL_S."""
        last = [0.0]

        def progress(fraction: float, message: str) -> None:
            now = time.perf_counter()
            if now - last[0] >= PROGRESS_INTERVAL_S:
                last[0] = now
                self._post(outbox, job, {"kind": protocol.KIND_PROGRESS, "fraction": fraction, "message": message})

        return progress


def compute(engine: Engine, specs: list, buffers: list, params: dict, outputs: list, reply_format: str | None,
            ctx: JobContext) -> tuple[list, list]:
    """Decode the request's pixels, run the engine, encode its outputs: (image specs, frames) of the result
    (the engine's remarks are in ctx.notes). The one path from frames to a result, for the local worker and
    for Ray actors alike."""
    images = {s["name"]: pixels.decode(s, b) for s, b in zip(specs, buffers)}
    ctx.check()
    result = engine.run(images, params, outputs, ctx)
    ctx.check()
    fmt = reply_format or specs[0]["format"]
    out_specs, frames = [], []
    for name in outputs:
        w, h, stride, buf = pixels.encode(result[name], fmt)
        out_specs.append(protocol.image_spec(name, w, h, fmt, stride))
        frames.append(buf)
    return out_specs, frames


def result_header(specs: list, elapsed: float, notes=(), **extra) -> dict:
    header = {"kind": protocol.KIND_RESULT, "images": specs, "elapsed_s": round(elapsed, 4), **extra}
    if notes:
        header["notes"] = list(notes)
    return header


class LocalRunner:
    """Runs jobs in this process on the service's device (the worker thread's side of Service)."""

    def __init__(self, service: Service):
        self.service = service
        self.loaded: set[str] = set()

    def wait_ready(self, stop: threading.Event) -> bool:
        return not stop.is_set()

    def run(self, job: Job, outbox) -> None:
        service = self.service
        started = time.perf_counter()
        progress = service.progress_poster(outbox, job)
        ctx = JobContext(service.device, progress, lambda: job.cancel_reason is not None)
        try:
            if job.engine.name not in self.loaded:
                progress(0.0, "loading the model")
                job.engine.load(service.device)
                self.loaded.add(job.engine.name)
            specs, frames = compute(job.engine, job.specs, [f.buffer for f in job.frames], job.params, job.outputs,
                                    job.reply_format, ctx)
            elapsed = time.perf_counter() - started
            service._post(outbox, job, result_header(specs, elapsed, ctx.notes), frames)
            log.debug("request %r: %s done in %.3f s", job.request_id, job.engine.name, elapsed)
        except Cancelled:
            if job.cancel_reason != "gone":
                service._post_error(outbox, job, ErrorCode.CANCELLED, "cancelled at the client's request")
        except Exception as exc:  # MemoryError included: every failure is a typed reply, the worker goes on
            code, message = engine_failure(exc, job.engine.name, service.device)
            if code == ErrorCode.INTERNAL:
                log.error("engine %s failed on request %r", job.engine.name, job.request_id, exc_info=exc)
            service._post_error(outbox, job, code, message)
