"""Per-face latency of the face model, lite and official side by side, on the current device.

    python -m bench.face [--configs lite,official] [--repeats 5] [--threads N] [--device auto|cpu|cuda] [--fp16]

Times one sketch -> face (encode the 5 components, project onto a feature bank with K=10, feature maps,
generator) at batch 1, after a warm-up, and reports the median. The official network runs with RANDOM weights
(the released weights are not shipped; timing does not depend on the values) and a random feature bank of
the official size (11456 female rows). The lite network uses models/weights/face_lite.safetensors when it
exists (else random weights, said so in the output). With --engine, the `face` engine's whole run (layer
fitting, projection, generation, resize back) is timed too, as the service calls it.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from models.deepfacedrawing import COMPONENTS, DeepFaceDrawing, get_config
from models.projection import FeatureBank, blend


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def build(name: str, device):
    import os

    from backend.engines.base import weights_path
    from models.deepfacedrawing import load_safetensors
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


def time_engine(repeats: int) -> list[float] | None:
    from backend.engines.base import JobContext
    from backend.engines.face import ENGINE
    eng = ENGINE()
    if not eng.readiness()[0]:
        return None
    layer = np.full((256, 256, 4), 255, np.uint8)
    layer[100:102, 60:200, :3] = 0
    params = eng.validate_params({})
    times = []
    for i in range(repeats + 1):
        t = time.perf_counter()
        eng.run({"image": layer}, params, ["face"], JobContext("cpu"))
        if i:
            times.append(time.perf_counter() - t)
    return times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.face", description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default="lite,official")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch default)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--fp16", action="store_true", help="fp16 autocast on CUDA")
    p.add_argument("--engine", action="store_true", help="also time the face engine's whole run (lite, CPU)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"face model latency per face, batch 1, median of {args.repeats} after a warm-up, on {where}"
          f"{' (fp16 autocast)' if args.fp16 and device.type == 'cuda' else ''}")
    print(f"{'config':<10} {'canvas':>6} {'params':>10} {'median ms':>10} {'min ms':>8}  weights")
    for name in args.configs.split(","):
        model, bank, kind = build(name.strip(), device)
        n = sum(p.numel() for p in model.parameters())
        t = time_model(model, bank, device, args.repeats, args.fp16)
        print(f"{name:<10} {model.cfg.canvas:>6} {n / 1e6:>9.1f}M {1000 * statistics.median(t):>10.1f} "
              f"{1000 * min(t):>8.1f}  {kind}", flush=True)
        del model, bank
    if args.engine:
        t = time_engine(args.repeats)
        print("face engine (lite, whole run): " + ("not ready (no trained weights)" if t is None else
              f"median {1000 * statistics.median(t):.1f} ms, min {1000 * min(t):.1f} ms"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
