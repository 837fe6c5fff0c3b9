"""Pictures for docs/sketch_resolution.md: how the sketch engine handles pictures larger than 256.

    python docs/make_sketch_figures.py [--weights DIR]

Input: an FS2K test photo from tests/data/fs2k_samples, enlarged 3x and placed on a wider canvas
(a stand-in for a large photo where the face is a small part of the picture). Three strategies:
  a. whole picture -> 256 -> model -> bicubic upsample (one pass, no face pass, no detail);
  b. tiles: the full-resolution picture cut into overlapping 256 tiles, each sketched on its own;
  c. the engine: global pass + face pass at FS2K framing + detail-preserving upsampling.
Writes docs/sketch_resolution.png (full pictures) and docs/sketch_resolution_face.png (face crops).
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from facesketch.backend.engines.base import JobContext
from facesketch.backend.engines.sketch import SketchEngine
from facesketch.models.paths import weights_dir
from facesketch.models.hida import style_vector

SAMPLE = os.path.join(ROOT, "tests", "data", "fs2k_samples", "photo", "photo3", "image0151.jpg")


def big_picture() -> np.ndarray:
    photo = Image.open(SAMPLE).convert("RGB")
    w, h = photo.size
    photo = photo.resize((w * 3, h * 3), Image.BICUBIC)
    canvas = Image.new("RGB", (int(w * 3 * 1.9), int(h * 3 * 1.25)), (196, 206, 214))
    # a soft vertical gradient so the background is not flat
    grad = np.linspace(0.85, 1.1, canvas.size[1])[:, None, None]
    canvas = Image.fromarray(np.clip(np.asarray(canvas) * grad, 0, 255).astype(np.uint8))
    canvas.paste(photo, (int(canvas.size[0] * 0.42), int(canvas.size[1] * 0.12)))
    return np.asarray(canvas.convert("RGBA"))


def one_pass(engine, img, device="cpu") -> np.ndarray:
    sketch_net, depth_net, _ = engine._get_models(device)
    h, w = img.shape[:2]
    side = max(h, w)
    rgb = torch.from_numpy(img[..., :3].astype(np.float32) / 255).permute(2, 0, 1)[None]
    pad = F.pad(rgb, ((side - w) // 2, side - w - (side - w) // 2, (side - h) // 2, side - h - (side - h) // 2),
                mode="replicate")
    x = F.interpolate(pad, size=(256, 256), mode="area") * 2 - 1
    with torch.inference_mode():
        s, _ = sketch_net(x, depth_net(x), style_vector(1))
    up = F.interpolate((s + 1) / 2, size=(side, side), mode="bicubic", align_corners=False)
    top, left = (side - h) // 2, (side - w) // 2
    return up[0, 0, top:top + h, left:left + w].clamp(0, 1).numpy()


def tiled(engine, img, tile=256, overlap=64) -> np.ndarray:
    sketch_net, depth_net, _ = engine._get_models("cpu")
    h, w = img.shape[:2]
    rgb = torch.from_numpy(img[..., :3].astype(np.float32) / 255).permute(2, 0, 1)[None]
    acc = torch.zeros(1, 1, h, w)
    weight = torch.zeros(1, 1, h, w)
    ramp = torch.minimum(torch.arange(tile) + 1, torch.arange(tile).flip(0) + 1).float().clamp(max=overlap) / overlap
    win = (ramp[:, None] * ramp[None, :])[None, None]
    step = tile - overlap
    for y in list(range(0, max(h - tile, 0), step)) + [max(h - tile, 0)]:
        for x in list(range(0, max(w - tile, 0), step)) + [max(w - tile, 0)]:
            crop = rgb[..., y:y + tile, x:x + tile] * 2 - 1
            with torch.inference_mode():
                s, _ = sketch_net(crop, depth_net(crop), style_vector(1))
            acc[..., y:y + tile, x:x + tile] += (s + 1) / 2 * win
            weight[..., y:y + tile, x:x + tile] += win
    return (acc / weight.clamp(min=1e-6))[0, 0].clamp(0, 1).numpy()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=weights_dir())
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    engine = SketchEngine(args.weights)
    img = big_picture()
    a = one_pass(engine, img)
    b = tiled(engine, img)
    out = engine.run({"image": img}, engine.validate_params({}), ["sketch", "depth"], JobContext())
    c = out["sketch"][..., 0]
    to8 = lambda g: (np.clip(g, 0, 1) * 255 + 0.5).astype(np.uint8)
    h, w = img.shape[:2]
    full = [img[..., :3], np.repeat(to8(a)[..., None], 3, 2), np.repeat(to8(b)[..., None], 3, 2),
            np.repeat(to8(c)[..., None], 3, 2)]
    strip = np.concatenate([np.pad(t, ((0, 0), (0, 8), (0, 0)), constant_values=255) for t in full], 1)
    Image.fromarray(strip).resize((strip.shape[1] // 3, strip.shape[0] // 3), Image.LANCZOS).save(
        os.path.join(ROOT, "docs", "sketch_resolution.png"), optimize=True)
    # Face crops at full resolution.
    d = out["depth"][..., 0] > 0.25
    ys, xs = np.nonzero(d)
    cy, cx = (ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2
    half = int(max(ys.max() - ys.min(), xs.max() - xs.min()) * 0.65)
    y0, x0 = max(cy - half, 0), max(cx - half, 0)
    crops = [t[y0:y0 + 2 * half, x0:x0 + 2 * half] for t in full]
    strip = np.concatenate([np.pad(t, ((0, 0), (0, 8), (0, 0)), constant_values=255) for t in crops], 1)
    Image.fromarray(strip).save(os.path.join(ROOT, "docs", "sketch_resolution_face.png"), optimize=True)
    print(f"picture {w}x{h}; wrote docs/sketch_resolution.png and docs/sketch_resolution_face.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
