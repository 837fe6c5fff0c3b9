"""Shipped weights: fp16 safetensors with the model's kind and config in the metadata.

    python -m facesketch.models.export sketch STATEDIR [--out models/weights/hida_lite.safetensors]
    python -m facesketch.models.export depth STATEDIR  [--out models/weights/depth_lite.safetensors]
    python -m facesketch.models.export pix2pix STATEDIR --out PATH

STATEDIR is a training state directory (models.train); its `last.pt` is read. The loaders here
(`load_weights`) are what the engine and the evaluation use.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch
import torch.nn as nn
from safetensors.torch import load_file, safe_open, save_file

from .depth_net import DepthNet, DepthNetConfig
from .hida import HIDAConfig, HIDAGenerator
from .paths import SHIPPED_WEIGHTS_DIR
from .pix2pix import UNetPix2Pix

DEFAULT_OUT = {"sketch": "hida_lite.safetensors", "depth": "depth_lite.safetensors",
               "pix2pix": "pix2pix_baseline.safetensors"}


def build_model(kind: str, config: dict | None) -> nn.Module:
    if kind == "sketch":
        return HIDAGenerator(HIDAConfig.from_dict(config) if config else HIDAConfig.lite())
    if kind == "depth":
        return DepthNet(DepthNetConfig.from_dict(config) if config else DepthNetConfig())
    if kind == "pix2pix":
        return UNetPix2Pix(**(config or {}))
    raise ValueError(f"unknown model kind {kind!r}")


def model_config(kind: str, model: nn.Module) -> dict:
    if kind in ("sketch", "depth"):
        return model.config.to_dict()
    return {"ngf": model.down[0][0].out_channels}


def save_fp16(model: nn.Module, kind: str, path: str, extra: dict | None = None) -> None:
    """Parameters and buffers as fp16 (integer buffers dropped), plus kind/config metadata."""
    tensors = {k: v.detach().to("cpu", torch.float16).contiguous()
               for k, v in model.state_dict().items() if v.is_floating_point()}
    meta = {"kind": kind, "config": json.dumps(model_config(kind, model))}
    meta.update({k: str(v) for k, v in (extra or {}).items()})
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    save_file(tensors, tmp, metadata=meta)
    os.chmod(tmp, 0o644)  # shipped files: readable by everyone
    os.replace(tmp, path)


def read_metadata(path: str) -> dict:
    with safe_open(path, framework="pt") as f:
        return dict(f.metadata() or {})


def load_weights(path: str, kind: str, device: str = "cpu", dtype: torch.dtype = torch.float32) -> nn.Module:
    """A shipped fp16 file -> the model in eval mode, strictly loaded."""
    meta = read_metadata(path)
    if meta.get("kind") != kind:
        raise ValueError(f"{path} holds a {meta.get('kind')!r} model, not {kind!r}")
    model = build_model(kind, json.loads(meta.get("config", "null")))
    state = {k: v.to(dtype) for k, v in load_file(path).items()}
    model.load_state_dict(state, strict=True)
    return model.to(device=device).eval()


def export_state(kind: str, state_dir: str, out: str | None = None) -> str:
    ckpt = torch.load(os.path.join(state_dir, "last.pt"), map_location="cpu", weights_only=True)
    model = build_model(kind, ckpt["config"])
    model.load_state_dict(ckpt["G"])
    out = out or os.path.join(SHIPPED_WEIGHTS_DIR, DEFAULT_OUT[kind])
    save_fp16(model, kind, out, {"step": ckpt["step"]})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m facesketch.models.export", description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=sorted(DEFAULT_OUT))
    ap.add_argument("state_dir")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    out = export_state(args.kind, args.state_dir, args.out)
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
