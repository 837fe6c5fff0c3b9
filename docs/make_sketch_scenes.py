"""Sketches beyond FS2K's frame: in-the-wild faces and natural scenes, previous weights beside new.

    python docs/make_sketch_scenes.py --old OLD_WEIGHTS_DIR [--new NEW_WEIGHTS_DIR] [--celeba DIR]

Pictures: scikit-image's public-domain test images (camera, astronaut, coffee, chelsea), taken from its
wheel (fetched once with `pip download --no-deps`, cached), at their full 512-pixel size; CelebA test
photos (if `--celeba` names ../shared/datasets/celeba-6k; research use, not redistributed: only the
figure is kept); one FS2K test sample shipped in tests/data. Each row: photo | previous weights | new
weights | colour dodge, all through the sketch engine as users run it (style 1). Also prints the grid
texture score (models.metrics.periodic_energy) of each on camera's sky. Writes
docs/results/sketch_scenes.png.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys

import numpy as np
from PIL import Image

from facesketch.backend.engines.base import JobContext
from facesketch.backend.engines.sketch import SketchEngine
from facesketch.models.metrics import periodic_energy
from facesketch.models.data.skimage_pictures import pictures
from facesketch.models.paths import REPO, weights_dir
from facesketch.models.pencil import dodge_sketch

SCENES = ("camera.png", "astronaut.png", "coffee.png", "chelsea.png")
SAMPLE = os.path.join(REPO, "tests", "data", "fs2k_samples", "photo", "photo1")
ROW_H = 256


def skimage_pictures() -> dict[str, np.ndarray]:
    return pictures(SCENES)


def sketch(engine: SketchEngine, rgb: np.ndarray) -> np.ndarray:
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], 2)
    out = engine.run({"image": rgba}, engine.validate_params({"style": "1"}), ["sketch"], JobContext())["sketch"]
    return (out[..., 0] * 255 + 0.5).clip(0, 255).astype(np.uint8)


def _row_tile(a: np.ndarray) -> np.ndarray:
    """The picture fitted into a ROW_H square cell on white, so that every column lines up."""
    im = Image.fromarray(a).convert("RGB")
    im.thumbnail((ROW_H, ROW_H), Image.LANCZOS)
    cell = Image.new("RGB", (ROW_H, ROW_H), (255, 255, 255))
    cell.paste(im, ((ROW_H - im.width) // 2, (ROW_H - im.height) // 2))
    return np.asarray(cell)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", required=True, help="folder with the previous hida_lite/depth_lite weights")
    ap.add_argument("--new", default=weights_dir())
    ap.add_argument("--celeba", default=None, help="celeba-6k folder: adds three of its test photos")
    ap.add_argument("--out", default=os.path.join(REPO, "docs", "results", "sketch_scenes.png"))
    args = ap.parse_args(argv)
    old, new = SketchEngine(weights_dir=args.old), SketchEngine(weights_dir=args.new)
    pictures = skimage_pictures()
    if args.celeba:
        for d in sorted(glob.glob(os.path.join(args.celeba, "test", "celeb_*")))[:3]:
            f = sorted(os.listdir(d))[0]
            pictures[f"celeba {f}"] = np.asarray(Image.open(os.path.join(d, f)).convert("RGB"))
    f = sorted(os.listdir(SAMPLE))[0]
    pictures[f"fs2k {f}"] = np.asarray(Image.open(os.path.join(SAMPLE, f)).convert("RGB"))
    rows = []
    for name, rgb in pictures.items():
        a, b, c = sketch(old, rgb), sketch(new, rgb), dodge_sketch(rgb)
        if name == "camera.png":  # the sky and the coat: smooth regions, where a grid texture shows first
            for part, box in (("sky", (slice(10, 170), slice(20, 480))), ("coat", (slice(180, 330), slice(120, 230)))):
                print(f"grid texture on camera's {part} (1 = none): previous %.1f, new %.1f, dodge %.1f" % tuple(
                    periodic_energy(x[box], model_frame=max(rgb.shape[:2])) for x in (a, b, c)))
        rows.append(np.concatenate([_row_tile(x) for x in (rgb, a, b, c)], 1))
    rows = [np.pad(r, ((0, 4), (0, 0), (0, 0)), constant_values=255) for r in rows]
    Image.fromarray(np.concatenate(rows, 0)).save(args.out, optimize=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
