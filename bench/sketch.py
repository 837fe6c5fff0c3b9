"""Latency of the sketch engine at 512², 1024² and 2048² for the lite and official HIDA configs.

    python -m facesketch.bench.sketch [--device cpu|cuda] [--repeat 3] [--sizes 512 1024 2048] [--threads N]
                                      [--old-weights DIR]

With --old-weights (a folder with a previous hida_lite.safetensors and depth_lite.safetensors) the previous
weights run beside the shipped ones, interleaved size by size, so that a change of architecture (such as the
upsampling) shows as a ratio measured in one run.

Runs the real engine pipeline (global pass, face pass, detail-preserving upsampling). The lite
config uses the shipped weights when present; the official config (108M parameters, the
released HIDA layout) always runs with RANDOM weights: only its timing means anything.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

from facesketch.backend.engines.base import JobContext
from facesketch.backend.engines.sketch import DEPTH_WEIGHTS, SKETCH_WEIGHTS, SketchEngine
from facesketch.models.paths import weights_dir
from facesketch.models.depth_net import DepthNet
from facesketch.models.export import save_fp16
from facesketch.models.hida import HIDAConfig, HIDAGenerator


def _engine_for(config: str, tmp: str, old_weights: str | None = None) -> tuple[SketchEngine, str]:
    if config == "previous":
        return SketchEngine(old_weights), f"previous weights from {old_weights}"
    shipped = all(os.path.isfile(os.path.join(weights_dir(), n)) for n in (SKETCH_WEIGHTS, DEPTH_WEIGHTS))
    if config == "lite" and shipped:
        return SketchEngine(), "shipped weights"
    d = os.path.join(tmp, config)
    os.makedirs(d, exist_ok=True)
    torch.manual_seed(0)
    save_fp16(HIDAGenerator(HIDAConfig.named(config)), "sketch", os.path.join(d, SKETCH_WEIGHTS))
    depth_src = os.path.join(weights_dir(), DEPTH_WEIGHTS)
    if os.path.isfile(depth_src):
        os.symlink(depth_src, os.path.join(d, DEPTH_WEIGHTS))
    else:
        save_fp16(DepthNet(), "depth", os.path.join(d, DEPTH_WEIGHTS))
    return SketchEngine(d), "RANDOM weights (timing only)"


def _portrait(size: int) -> np.ndarray:
    """A synthetic portrait-like picture: a face-coloured ellipse on a gradient."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.empty((size, size, 4), np.uint8)
    face = ((xx - 0.5) / 0.22) ** 2 + ((yy - 0.45) / 0.3) ** 2 < 1
    img[..., 0] = np.where(face, 220, 80 + 100 * xx)
    img[..., 1] = np.where(face, 180, 90 + 80 * yy)
    img[..., 2] = np.where(face, 150, 120)
    img[..., 3] = 255
    return img


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    ap.add_argument("--configs", nargs="+", default=["lite", "official"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--old-weights", help="folder of previously shipped sketch + depth weights, run beside 'lite'")
    args = ap.parse_args(argv)
    if args.old_weights:
        missing = [n for n in (SKETCH_WEIGHTS, DEPTH_WEIGHTS) if not os.path.isfile(os.path.join(args.old_weights, n))]
        if missing:
            ap.error(f"--old-weights {args.old_weights} lacks {', '.join(missing)}")
        args.configs = [c for c in args.configs if c != "previous"] + ["previous"]
    elif "previous" in args.configs:
        ap.error("the 'previous' config needs --old-weights DIR")
    if args.threads:
        torch.set_num_threads(args.threads)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU ({torch.get_num_threads()} threads)"
    print(f"sketch engine latency on {device_name}, median of {args.repeat} runs after one warm-up")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        engines = {}
        for config in args.configs:
            engines[config], note = _engine_for(config, tmp, args.old_weights)
            engines[config].load(args.device)
            print(f"  {config}: {note}")
        for size in args.sizes:
            img = _portrait(size)
            times = {c: [] for c in args.configs}
            for r in range(args.repeat + 1):   # round by round, every config in turn: a busy machine slows all alike
                for config, engine in engines.items():
                    params = engine.validate_params({})
                    if args.device.startswith("cuda"):
                        torch.cuda.synchronize()
                    t = time.perf_counter()
                    engine.run({"image": img}, params, ["sketch"], JobContext(device=args.device))
                    if args.device.startswith("cuda"):
                        torch.cuda.synchronize()
                    if r:
                        times[config].append(time.perf_counter() - t)
            for config in args.configs:
                results[(config, size)] = float(np.median(times[config]))
    header = "| size | " + " | ".join(args.configs) + " |"
    print(header)
    print("|---" * (len(args.configs) + 1) + "|")
    for size in args.sizes:
        print(f"| {size}² | " + " | ".join(f"{results[(c, size)] * 1000:.0f} ms" for c in args.configs) + " |")
    if "previous" in args.configs and "lite" in args.configs:
        print("shipped / previous: " + ", ".join(f"{s}² {results[('lite', s)] / results[('previous', s)]:.2f}x"
                                                 for s in args.sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
