"""Scale-out benchmark: the single-process service against the Ray front end (`serve --ray`), written to
docs/performance.md.

- live drawing: `--strokes` face requests `--interval` apart with supersede (as the Krita docker's live mode
  sends them), each a little more of a sketch; stroke-to-face latency is the time from sending a stroke to
  the first face that shows it or a later stroke, p50/p99 over the strokes;
- face throughput: `--jobs` face requests from four clients at once, faces per second, with 1 and 2 Ray
  actors against the single process;
- the front end's added latency: a 1x1 echo round trip through the Ray front end (1 actor) minus the same
  through the single process, median and p99 over `--echoes` requests.

Every backend is its own `facesketch serve` process on a free loopback port, started and stopped here.

    python -m facesketch.bench.scale_out [--out docs/performance.md] [--strokes 100] [--interval 0.05]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import zmq

from facesketch_client import AsyncClient, BackendError, Client, Image

from facesketch.backend.service import PROGRESS_INTERVAL_S

from .transport import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKETCH = os.path.join(ROOT, "tests", "data", "rough_sketch.png")


class Backend:
    def __init__(self, label: str, extra: list[str], state: str, env_extra: dict | None = None):
        self.label = label
        self.address = f"tcp://127.0.0.1:{free_port()}"
        env = dict(os.environ, FACESKETCH_SETTINGS=os.path.join(state, "settings.json"), XDG_STATE_HOME=state,
                   RAY_DISABLE_USAGE_STATS="1", **(env_extra or {}))
        self.log = open(os.path.join(state, f"{label.replace(' ', '_')}.log"), "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "facesketch", "serve", "--bind", self.address,
                                      "--device", "cpu", "--queue-size", "64", "--log-level", "warning", *extra],
                                     stdout=subprocess.PIPE, stderr=self.log, env=env, cwd=ROOT)
        line = self.proc.stdout.readline().decode()
        if "ready on" not in line:
            self.proc.kill()
            raise SystemExit(f"{label}: the backend did not start (log: {self.log.name})")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def stroke_images(n: int, size: int = 256) -> list[Image]:
    """n sketches of one face, each showing more of its dark pixels (top to bottom, as if drawn)."""
    from PIL import Image as PILImage

    with PILImage.open(SKETCH) as im:
        gray = np.asarray(im.convert("L").resize((size, size)), dtype=np.uint8)
    dark = np.argwhere(gray < 160)
    order = dark[np.lexsort((dark[:, 1], dark[:, 0]))]
    out = []
    for i in range(1, n + 1):
        canvas = np.full((size, size, 4), 255, np.uint8)
        shown = order[: max(1, len(order) * i // n)]
        canvas[shown[:, 0], shown[:, 1], :3] = gray[shown[:, 0], shown[:, 1], None]
        out.append(Image(size, size, "RGBA8", canvas.tobytes()))
    return out


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def warm_up(address: str) -> None:
    """Two face requests at once, so every actor (at most two here) has loaded the weights."""
    image = stroke_images(1)[0]

    def one():
        with Client(address, timeout_s=600) as c:
            c.run("face", {"image": image}, {"k": 10})

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def live_drawing(address: str, strokes: list[Image], interval: float) -> dict:
    """Send the strokes `interval` apart with supersede; latency per stroke to the first face that shows it."""
    ac = AsyncClient(address, timeout_s=600)
    sent_at: dict[str, float] = {}
    order: list[str] = []
    done_at: dict[str, float] = {}
    superseded = []
    try:
        def on_result(job, images):
            done_at[job] = time.monotonic()

        def on_error(job, err):
            superseded.append(err.code)

        next_send = time.monotonic()
        i = 0
        deadline = time.monotonic() + len(strokes) * interval + 600
        while len(done_at) + len(superseded) < len(strokes):
            assert time.monotonic() < deadline, "live drawing did not finish"
            now = time.monotonic()
            if i < len(strokes) and now >= next_send:
                job = ac.submit("face", {"image": strokes[i]}, {"k": 10}, supersede="live",
                                on_result=on_result, on_error=on_error)
                sent_at[job] = time.monotonic()
                order.append(job)
                i += 1
                next_send += interval
            zmq.select([ac.fileno()], [], [], max(0.0, min(0.005, next_send - time.monotonic())))
            ac.process()
    finally:
        ac.close()
    latencies = []
    for k, job in enumerate(order):  # the first face at or after this stroke
        shown = [done_at[j] for j in order[k:] if j in done_at]
        if shown:
            latencies.append(min(shown) - sent_at[job])
    return {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "faces": len(done_at),
            "superseded": superseded.count("superseded"), "other_errors": len(superseded) - superseded.count("superseded")}


def throughput(address: str, jobs: int, clients: int = 4) -> float:
    image = stroke_images(1)[0]
    per = [jobs // clients + (1 if k < jobs % clients else 0) for k in range(clients)]
    errors = []

    def work(n):
        try:
            with Client(address, timeout_s=600) as c:
                for _ in range(n):
                    c.run("face", {"image": image}, {"k": 10})
        except BackendError as exc:
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(n,)) for n in per]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"throughput: {errors[0]}")
    return jobs / (time.monotonic() - started)


def echo_latency(address: str, n: int) -> list[float]:
    img = Image(1, 1, "RGBA8", b"1234")
    out = []
    with Client(address, timeout_s=60) as c:
        for _ in range(10):
            c.run("echo", {"image": img})
        for _ in range(n):
            t = time.perf_counter()
            c.run("echo", {"image": img})
            out.append(time.perf_counter() - t)
    return out


SINGLE, SINGLE1 = "single process", "single process, 1 torch thread"
RAY1, RAY2 = "Ray, 1 actor", "Ray, 2 actors"
# (label, serve options, environment): the single process as shipped (torch picks its thread count: one per
# core), the same with one thread (as each CPU actor has), and the Ray front end with 1 and 2 CPU actors
SETUPS = ((SINGLE, [], None), (SINGLE1, [], {"OMP_NUM_THREADS": "1"}),
          (RAY1, ["--ray", "--ray-actors", "1"], None), (RAY2, ["--ray", "--ray-actors", "2"], None))


def ms(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x >= 0.1 else f"{x * 1000:.1f} ms"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m facesketch.bench.scale_out", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "performance.md"))
    p.add_argument("--strokes", type=int, default=100)
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--jobs", type=int, default=8)
    p.add_argument("--echoes", type=int, default=300)
    args = p.parse_args(argv)
    try:
        import ray  # noqa: F401
    except ImportError:
        raise SystemExit("this benchmark compares against the Ray front end: .venv/bin/pip install ray")
    strokes = stroke_images(args.strokes)
    load_before = os.getloadavg()
    rows, live, echo = {}, {}, {}
    with tempfile.TemporaryDirectory() as state:
        for label, extra, env in SETUPS:
            print(f"{label}: starting", file=sys.stderr, flush=True)
            t = time.monotonic()
            b = Backend(label, extra, state, env)
            started_s = time.monotonic() - t
            try:
                warm_up(b.address)
                if label != RAY1:
                    live[label] = live_drawing(b.address, strokes, args.interval)
                    print(f"  live: {live[label]}", file=sys.stderr, flush=True)
                rows[label] = (throughput(b.address, args.jobs), started_s)
                print(f"  throughput: {rows[label][0]:.2f} faces/s", file=sys.stderr, flush=True)
                if label in (SINGLE, RAY1):
                    echo[label] = echo_latency(b.address, args.echoes)
            finally:
                b.stop()
    load_after = os.getloadavg()
    single_echo, ray_echo = echo[SINGLE], echo[RAY1]
    added50 = statistics.median(ray_echo) - statistics.median(single_echo)
    added99 = percentile(ray_echo, 99) - percentile(single_echo, 99)
    import torch

    busy = max(load_before[0], load_after[0]) > 0.5 * (os.cpu_count() or 1)
    conditions = ("this machine was shared with other work, so absolute numbers are noisy; " if busy else
                  "the machine was otherwise idle; ")
    lines = [
        "# Performance: the single-process service and the Ray front end",
        "",
        f"Measured by `python -m facesketch.bench.scale_out` on {time.strftime('%Y-%m-%d')}: {os.cpu_count()} CPU "
        f"cores ({platform.processor() or platform.machine()}), no GPU, torch {torch.__version__}, Ray "
        f"{__import__('ray').__version__}; load average {load_before[0]:.1f} before and {load_after[0]:.1f} after "
        f"({conditions}the setups ran one after the other under the same conditions). The face engine is the shipped lite model "
        "(256² canvas, k = 10); each backend is its own `facesketch serve --device cpu` process on loopback.",
        "",
        f"## Live drawing: stroke to face ({args.strokes} strokes {args.interval * 1000:.0f} ms apart, supersede)",
        "",
        "Each stroke is sent as the Krita docker's live mode sends it (supersede key `live`); its latency is the "
        "time until the first face that shows it or a later stroke arrives.",
        "",
        "| backend | p50 | p99 | faces computed | superseded |",
        "|---|---|---|---|---|",
    ]
    for label, r in live.items():
        lines.append(f"| {label} | {ms(r['p50'])} | {ms(r['p99'])} | {r['faces']} | {r['superseded']} |")
    lines += [
        "",
        f"## Face throughput ({args.jobs} requests from 4 clients at once)",
        "",
        "| backend | faces/s | vs single process | start-up to ready |",
        "|---|---|---|---|",
    ]
    base = rows[SINGLE][0]
    for label, (fps, started_s) in rows.items():
        lines.append(f"| {label} | {fps:.2f} | ×{fps / base:.2f} | {started_s:.0f} s |")
    lines += [
        "",
        f"## The front end's added latency ({args.echoes} sequential 1×1 echo requests)",
        "",
        "| backend | median | p99 |",
        "|---|---|---|",
        f"| single process | {ms(statistics.median(single_echo))} | {ms(percentile(single_echo, 99))} |",
        f"| Ray front end, 1 actor | {ms(statistics.median(ray_echo))} | {ms(percentile(ray_echo, 99))} |",
        f"| **added by the front end** | **{ms(added50)}** | {ms(added99)} |",
        "",
        "## Reading it",
        "",
        f"- Threads. Shipped as is, the single process lets torch use one thread per "
        f"core ({os.cpu_count()})"
        + ("; on a machine whose cores other work holds, those threads wait on each other" if busy else "")
        + f", and a face takes {1 / base:.2f} s. With one torch thread (`OMP_NUM_THREADS=1`) the "
        f"same process does {rows[SINGLE1][0]:.2f} faces/s. A CPU actor has one core and one thread, so the Ray "
        f"rows compare with that one: 2 actors do ×{rows[RAY2][0] / rows[RAY1][0]:.2f} the faces of 1 actor, "
        f"×{rows[RAY2][0] / rows[SINGLE1][0]:.2f} the single process with one thread.",
        "- On one machine Ray is not worth it (start-up, a second copy of the weights per actor, the added "
        "latency below); `--ray` is for a studio with several GPU machines, one actor per GPU, so throughput grows "
        "with the GPUs while the artists keep one address.",
        f"- The front end adds one Ray call per request (pixels to the actor and back through Ray's object store, "
        f"progress polled every {PROGRESS_INTERVAL_S * 1000:.0f} ms): {ms(added50)} at the median, small next to a "
        "face's compute time.",
        "- Live drawing: supersede drops the queued strokes, so only the newest stroke waits for the face being "
        f"computed; with one torch thread the p50 is {live[SINGLE1]['p50'] * rows[SINGLE1][0]:.1f} face times "
        f"(a face every {1 / rows[SINGLE1][0]:.2f} s), through the Ray front end with two actors "
        f"{live[RAY2]['p50'] * rows[RAY1][0]:.1f} (a face every {1 / rows[RAY1][0]:.2f} s per actor), where a new "
        "stroke can start on the idle actor while the other still computes.",
        "",
    ]
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
