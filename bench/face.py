"""Per-face latency of the face model, lite and official side by side, on the current device.

    python -m facesketch.bench.face [--configs lite,official] [--repeats 5] [--threads N] [--device auto|cpu|cuda] [--fp16]
                         [--service] [--layer-sizes 256,1024]

Times one sketch -> face (encode the 5 components, project onto a feature bank with K=10, feature maps,
generator) at batch 1, after a warm-up, and reports the median. The official network runs with RANDOM weights
(the released weights are not shipped; timing does not depend on the values) and a random feature bank of
the official size (11456 female rows). The lite network uses models/weights/face_lite.safetensors when it
exists (else random weights, said so in the output).

With --service, the lite face is also timed on a real layer (tests/data/rough_sketch.png resized to each of
--layer-sizes) three ways side by side: the model alone, the `face` engine's whole run, and a round trip
through a real backend process over ZeroMQ (the latency a user sees; target < 0.5 s at the 256 canvas).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from facesketch.models.deepfacedrawing import COMPONENTS, DeepFaceDrawing, get_config
from facesketch.models.projection import FeatureBank, blend


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def build(name: str, device):
    import os

    from facesketch.backend.engines.base import weights_path
    from facesketch.models.deepfacedrawing import load_safetensors
    path = weights_path("face_lite.safetensors")
    if name == "lite" and os.path.isfile(path):
        model, bank, gender, _ = load_safetensors(path, device)
        return model, FeatureBank.from_labels(bank, gender, device), "trained weights"
    torch.manual_seed(0)
    model = DeepFaceDrawing(get_config(name)).to(device).eval()
    rows = 11456 if name == "official" else 1500
    bank = FeatureBank({"female": {c: torch.randn(rows, model.cfg.latent) for c in COMPONENTS}}, device)
    return model, bank, "random weights"


def time_model(model, bank, device, repeats: int, fp16: bool) -> list[float]:
    S = model.cfg.canvas
    x = torch.ones(1, 1, S, S, device=device)
    x[:, :, S // 3: S // 3 + 2, S // 4: 3 * S // 4] = -1
    weights = {c: 1.0 for c in COMPONENTS}
    times = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.float16, enabled=fp16 and device.type == "cuda"):
        for i in range(repeats + 1):
            sync(device)
            t = time.perf_counter()
            z = model.encode(x)
            y = model.generate(blend(z, bank.project(z, "female", 10), weights))
            float(y[0, 0, 0, 0])  # forces the result
            sync(device)
            if i:  # the first run is the warm-up
                times.append(time.perf_counter() - t)
    return times


def gflops(model, bank) -> float:
    """Floating-point work of one face (encode, project, generate), counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode
    S = model.cfg.canvas
    x = torch.ones(1, 1, S, S, device=next(model.parameters()).device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        z = model.encode(x)
        model.generate(blend(z, bank.project(z, "female", 10), {c: 1.0 for c in COMPONENTS}))
    return counter.get_total_flops() / 1e9


def time_layers(repeats: int, threads: int, sizes: list[int]) -> list[tuple[str, list[float]]] | None:
    """The lite face from tests/data/rough_sketch.png three ways, interleaved so machine noise hits all alike:
    the model alone (256 canvas), the face engine's whole run in this process (layer fitting, projection,
    generation, resize back), and a round trip through a real `facesketch serve` over ZeroMQ."""
    import os
    import sys
    import tempfile

    from PIL import Image as PILImage

    from facesketch.backend.engines.base import JobContext
    from facesketch.backend.engines.face import ENGINE, fit_to_canvas, sketch_gray
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    from facesketch.bench.transport import free_port, start
    from facesketch_client import Client, Image

    eng = ENGINE()
    if not eng.readiness()[0]:
        return None
    sketch = PILImage.open(os.path.join(root, "tests", "data", "rough_sketch.png")).convert("RGBA")
    layers = {n: np.asarray(sketch.resize((n, n), PILImage.BILINEAR)) for n in sizes}
    layer = layers[sizes[0]]
    params = eng.validate_params({})
    model, bank = eng._get("cpu")
    x = (torch.from_numpy(fit_to_canvas(sketch_gray(layer), model.cfg.canvas)[0]) - 0.5) * 2

    def model_only():
        with torch.inference_mode():
            z = model.encode(x[None, None])
            float(model.generate(blend(z, bank.project(z, "female", 10), {c: 1.0 for c in COMPONENTS}))[0, 0, 0, 0])

    port = free_port()
    tmp = tempfile.mkdtemp(prefix="facesketch-bench-")
    env = dict(os.environ, FACESKETCH_SETTINGS=os.path.join(tmp, "settings.json"), XDG_STATE_HOME=tmp)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    proc = start([sys.executable, "-m", "facesketch", "serve", "--bind", f"tcp://127.0.0.1:{port}",
                  "--device", "cpu", "--log-level", "warning"], env)
    client = Client(f"tcp://127.0.0.1:{port}", timeout_s=120)
    ways = {"model alone (256 canvas)": model_only}
    for n, a in layers.items():  # default arguments bind this size's layer
        img = Image(n, n, "RGBA8", a.tobytes())
        ways[f"engine run ({n}x{n} layer)"] = lambda a=a: eng.run({"image": a}, params, ["face"], JobContext("cpu"))
        ways[f"through the service ({n}x{n} layer)"] = lambda img=img: client.run("face", {"image": img})["face"]
    times = {k: [] for k in ways}
    try:
        for i in range(repeats + 1):
            for k, fn in ways.items():
                t = time.perf_counter()
                fn()
                if i:  # the first round is the warm-up (weights load, connections)
                    times[k].append(time.perf_counter() - t)
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)
    return list(times.items())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m facesketch.bench.face", description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default="lite,official")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch default)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--fp16", action="store_true", help="fp16 autocast on CUDA")
    p.add_argument("--service", action="store_true",
                   help="also time the lite face on a real layer: model alone, engine run, and through the service (CPU)")
    p.add_argument("--layer-sizes", default="256,1024", help="square layer sizes for --service")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"face model latency per face, batch 1, median of {args.repeats} after a warm-up, on {where}"
          f"{' (fp16 autocast)' if args.fp16 and device.type == 'cuda' else ''}")
    print(f"{'config':<10} {'canvas':>6} {'params':>10} {'GFLOP':>7} {'median ms':>10} {'min ms':>8}  weights")
    for name in args.configs.split(","):
        model, bank, kind = build(name.strip(), device)
        n = sum(p.numel() for p in model.parameters())
        t = time_model(model, bank, device, args.repeats, args.fp16)
        print(f"{name:<10} {model.cfg.canvas:>6} {n / 1e6:>9.1f}M {gflops(model, bank):>7.1f} {1000 * statistics.median(t):>10.1f} "
              f"{1000 * min(t):>8.1f}  {kind}", flush=True)
        del model, bank
    if args.service:
        timed = time_layers(args.repeats, args.threads, [int(n) for n in args.layer_sizes.split(",")])
        if timed is None:
            print("face engine: not ready (no trained weights)")
        else:
            base = statistics.median(timed[0][1])
            print(f"\nlite face on the CPU, median of {args.repeats} (interleaved):")
            for label, t in timed:
                print(f"{label:<42} {1000 * statistics.median(t):8.1f} ms  x{statistics.median(t) / base:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
