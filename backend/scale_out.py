"""Scale-out on Ray: `facesketch serve --ray [ADDRESS]`.

The ZeroMQ front end is the ordinary Service: protocol, validation, limits, the queue, cancel, supersede
and CURVE all stay in this one process, unchanged. Only running a job moves: instead of one local worker,
the front end has one worker thread per Ray actor (a RayRunner), each taking the next job from the shared
queue and sending it to its actor. An actor loads each engine's weights once and keeps them (one actor
per GPU on a GPU cluster; CPU actors elsewhere).

- Cancel and supersede keep their meaning because the front end owns the queue: a queued job never
  reached an actor; a running one is cancelled through the actor's `cancel` (the engine stops at its next
  check, as locally).
- An actor that dies costs only its running job, which gets a `worker_lost` error. Ray restarts the actor
  (max_restarts); its worker thread takes no job until the actor answers again, so the queue drains to
  the other actors meanwhile.
- A result names the actor that computed it (`"worker": N` in the result header; clients ignore it).

Ray is optional (`pip install ray`): nothing here is imported unless --ray is given. ADDRESS is a Ray
cluster address (`auto`, `HOST:6379`, `ray://HOST:10001`); without one a local Ray instance with one CPU
per actor is started for the front end's lifetime.
"""
from __future__ import annotations

import itertools
import logging
import os
import threading
import time

from facesketch_client import protocol
from facesketch_client.protocol import ErrorCode

from .engines.base import Cancelled, JobContext
from .service import PROGRESS_INTERVAL_S, Job, Service, compute, engine_failure, result_header

log = logging.getLogger("facesketch.scale_out")

# passed to every actor, so a cluster's workers find the same engines and weights as the front end
PASSED_ENV = ("FACESKETCH_EXTRA_ENGINES", "FACESKETCH_WEIGHTS_DIR", "PYTHONPATH")
ACTOR_MAX_RESTARTS = 1000
READY_TIMEOUT_S = 600.0  # first start of an actor: importing torch and the engines, on a cold machine


def import_ray():
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError("--ray needs Ray in the backend's environment: .venv/bin/pip install ray "
                           "(one machine never needs it)") from exc
    return ray


class EngineWorker:
    """The body of a Ray actor: every engine, their weights loaded once, run through the same compute() as
    the local worker. Threaded (max_concurrency > 1), so cancel() and progress() are answered while run()
    computes."""

    def __init__(self, device: str, index: int, threads: int = 0):
        from .engines import discover

        self.device, self.index = device, index
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.engines = discover()
        self.loaded: set[str] = set()
        self._cancelled: set = set()
        self._progress: dict = {}
        self._load_lock = threading.Lock()

    def describe(self) -> dict:
        return {"pid": os.getpid(), "index": self.index, "device": self.device,
                "engines": {name: list(e.readiness()) for name, e in self.engines.items()}}

    def ping(self) -> int:
        return os.getpid()

    def cancel(self, key) -> None:
        self._cancelled.add(key)

    def progress(self, key):
        return self._progress.get(key)

    def run(self, key, engine_name: str, specs: list, buffers: list, params: dict, outputs: list,
            reply_format: str | None):
        """("result", specs, frames, seconds, notes) | ("cancelled",) | ("error", code, message)."""
        started = time.perf_counter()
        engine = self.engines.get(engine_name)
        ctx = JobContext(self.device, lambda f, m: self._progress.__setitem__(key, (f, m)),
                         lambda: key in self._cancelled)
        try:
            if engine is None:
                return ("error", ErrorCode.NOT_READY, f"this Ray worker has no '{engine_name}' engine: install the "
                                                      "same facesketch version on every machine of the cluster")
            with self._load_lock:
                if engine_name not in self.loaded:
                    ctx.progress(0.0, "loading the model")
                    engine.load(self.device)
                    self.loaded.add(engine_name)
            out_specs, frames = compute(engine, specs, buffers, params, outputs, reply_format, ctx)
            return ("result", out_specs, [bytes(f) for f in frames], time.perf_counter() - started, ctx.notes)
        except Cancelled:
            return ("cancelled",)
        except Exception as exc:
            code, message = engine_failure(exc, engine_name, self.device)
            if code == ErrorCode.INTERNAL:
                logging.getLogger("facesketch.actor").error("engine %s failed", engine_name, exc_info=exc)
            return ("error", code, message)
        finally:
            self._cancelled.discard(key)
            self._progress.pop(key, None)


class RayRunner:
    """One front-end worker thread's side of one actor."""

    _keys = itertools.count(1)

    def __init__(self, service: "RayService", actor, index: int):
        self.service, self.actor, self.index = service, actor, index
        self.healthy = True
        self.served = 0

    def wait_ready(self, stop: threading.Event) -> bool:
        """After the actor died: wait (without taking a job) until Ray has restarted it and it answers."""
        ray = import_ray()
        while not stop.is_set():
            if self.healthy:
                return True
            try:
                ray.get(self.actor.ping.remote(), timeout=5)
                self.healthy = True
                log.info("Ray worker %d is back", self.index)
            except Exception as exc:  # still restarting (ActorUnavailableError, GetTimeoutError, ...)
                log.debug("Ray worker %d not back yet: %s", self.index, exc.__class__.__name__)
                stop.wait(0.5)
        return False

    def run(self, job: Job, outbox) -> None:
        ray = import_ray()
        service = self.service
        key = next(self._keys)
        progress = service.progress_poster(outbox, job)
        ref = self.actor.run.remote(key, job.engine.name, job.specs, [f.bytes for f in job.frames], job.params,
                                    job.outputs, job.reply_format)
        cancel_sent, asking, next_ask = False, None, time.monotonic() + PROGRESS_INTERVAL_S
        while not ray.wait([ref], timeout=0.02)[0]:
            if job.cancel_reason is not None and not cancel_sent:
                self.actor.cancel.remote(key)
                cancel_sent = True
            if asking is not None and ray.wait([asking], timeout=0)[0]:
                try:
                    report = ray.get(asking)
                except Exception:
                    report = None
                asking = None
                if report is not None and job.cancel_reason is None:
                    progress(*report)
            if asking is None and time.monotonic() >= next_ask:
                asking, next_ask = self.actor.progress.remote(key), time.monotonic() + PROGRESS_INTERVAL_S
        try:
            outcome = ray.get(ref)
        except ray.exceptions.RayActorError as exc:  # the actor (or its machine) died mid-job
            self.healthy = False
            log.warning("Ray worker %d died while running request %r: %s", self.index, job.request_id,
                        str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)
            if job.cancel_reason != "gone":
                service._post_error(outbox, job, ErrorCode.WORKER_LOST,
                                    f"the worker computing this request (Ray actor {self.index}) stopped before it "
                                    "finished; nothing was changed. It is being restarted: try again")
            return
        except Exception as exc:  # Ray itself failed on the call: a bug, not the request's fault
            log.error("Ray call for request %r failed", job.request_id, exc_info=exc)
            service._post_error(outbox, job, ErrorCode.INTERNAL,
                                f"the backend failed on this request ({exc.__class__.__name__}); details are in its log")
            return
        if outcome[0] == "result":
            _, specs, frames, seconds, notes = outcome
            self.served += 1
            service._post(outbox, job, result_header(specs, seconds, notes, worker=self.index), frames)
        elif outcome[0] == "cancelled":
            if job.cancel_reason != "gone":
                service._post_error(outbox, job, ErrorCode.CANCELLED, "cancelled at the client's request")
        else:
            service._post_error(outbox, job, outcome[1], outcome[2])


class RayService(Service):
    """The front end: a Service whose runners are Ray actors."""

    def __init__(self, bind: str, engines: dict, ray_address: str | None = None, actors: int | None = None,
                 device: str = "auto", **kwargs):
        super().__init__(bind, engines, device="cpu" if device == "auto" else device, **kwargs)
        self.ray_address = None if ray_address in (None, "", "local") else ray_address
        self.requested_device = device
        self.n_actors = actors
        self.actors: list = []
        self._runners: list[RayRunner] = []
        self._own_ray = False

    def runners(self) -> list:
        return self._runners

    def start(self) -> "RayService":
        ray = import_ray()
        try:
            return self._start(ray)
        except BaseException:
            if ray.is_initialized():
                ray.shutdown()
            raise

    def _start(self, ray) -> "RayService":
        env = {k: os.environ[k] for k in PASSED_ENV if os.environ.get(k)}
        common = dict(include_dashboard=False, log_to_driver=True, configure_logging=False,
                      runtime_env={"env_vars": env} if env else None)
        if self.ray_address is None:
            n = self.n_actors or 1
            ray.init(num_cpus=n, num_gpus=0 if self.requested_device == "cpu" else None, **common)
            self._own_ray = True
        else:
            ray.init(address=self.ray_address, **common)
        gpus = int(ray.cluster_resources().get("GPU", 0))
        use_gpu = self.requested_device == "cuda" or (self.requested_device == "auto" and gpus > 0)
        if use_gpu and gpus == 0:
            raise RuntimeError("--device cuda with --ray: the Ray cluster has no GPU")
        self.device = "cuda" if use_gpu else "cpu"
        n = self.n_actors or (gpus if use_gpu else 1)
        actor_class = ray.remote(EngineWorker).options(
            num_gpus=1 if use_gpu else 0, num_cpus=1, max_restarts=ACTOR_MAX_RESTARTS, max_task_retries=0,
            max_concurrency=4)
        threads = 0 if use_gpu else 1  # a CPU actor has one core: no oversubscription between actors
        self.actors = [actor_class.remote(self.device, i, threads) for i in range(n)]
        reports = ray.get([a.describe.remote() for a in self.actors], timeout=READY_TIMEOUT_S)
        for name, engine in self.engines.items():  # readiness as the workers see it (weights live there)
            ready, reason = reports[0]["engines"].get(name, (False, "the Ray workers do not have this engine"))
            engine.readiness = lambda r=(bool(ready), reason): r
        self._runners = [RayRunner(self, a, i) for i, a in enumerate(self.actors)]
        log.info("Ray: %d %s worker(s) (pids %s) on %s", n, self.device.upper(),
                 ", ".join(str(r["pid"]) for r in reports), self.ray_address or "a local Ray instance")
        return super().start()

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        ray = import_ray()
        for a in self.actors:
            try:
                ray.kill(a, no_restart=True)
            except Exception:
                pass
        if ray.is_initialized():
            ray.shutdown()

    def worker_stats(self) -> list[int]:
        return [r.served for r in self._runners]
