"""Sketch to face on drawings that are not in the template's frame: `align=template` beside `align=auto`.

    python docs/make_face_align_figure.py [--celeba ../shared/datasets/celeba-6k]

Rows: scikit-image's astronaut portrait (public domain, 512x512, the face about a third of the frame) first
sketchified by the sketch engine; an FS2K test sketch (tests/data) pasted small and tilted into a wide white
canvas; the rough test drawing with shoulders and background strokes added; an FS2K test sketch with another
one drawn beside it, smaller. Columns: input | align=template (the whole layer taken as the face template, what
the engine did before) | align=auto (the result layer over the input, as a host shows it) | the result layer alone
on a checkerboard (transparent outside the face). Writes docs/results/face_align.png and prints the notes.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

from facesketch.backend.engines.base import JobContext
from facesketch.backend.engines.face import FaceEngine
from facesketch.backend.engines.sketch import SketchEngine
from facesketch.models.paths import REPO, RESULTS_DIR

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_sketch_scenes import skimage_pictures  # noqa: E402  (the cached scikit-image pictures)

SAMPLES = os.path.join(REPO, "tests", "data", "fs2k_samples", "sketch", "sketch1")
ROW_H = 220


def rgba(gray: Image.Image) -> np.ndarray:
    return np.asarray(gray.convert("RGBA")).copy()


def checker(w, h, cell=12):
    yy, xx = np.mgrid[0:h, 0:w]
    c = np.where(((yy // cell) + (xx // cell)) % 2 == 0, 235, 205).astype(np.uint8)
    return np.stack([c] * 3, 2)


def over(rgba_f: np.ndarray, under_rgb: np.ndarray) -> np.ndarray:
    a = rgba_f[..., 3:]
    return (rgba_f[..., :3] * a + under_rgb / 255.0 * (1 - a)) * 255


def inputs():
    rows = []
    pics = skimage_pictures()
    sk = SketchEngine()
    photo = pics["astronaut.png"]
    layer = np.concatenate([photo, np.full(photo.shape[:2] + (1,), 255, np.uint8)], 2)
    out = sk.run({"image": layer}, sk.validate_params({"style": "1"}), ("sketch",), JobContext())["sketch"]
    out = out if out.dtype == np.uint8 else (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)
    rows.append(("astronaut, sketchified", Image.fromarray(out[..., :3]).convert("L"), "female"))

    s = Image.open(os.path.join(SAMPLES, "sketch1396.jpg")).convert("L")
    canvas = Image.new("L", (720, 480), 255)
    small = s.resize((150, 150), Image.LANCZOS).rotate(14, resample=Image.BICUBIC, fillcolor=255, expand=True)
    canvas.paste(small, (430, 200))
    rows.append(("FS2K sketch, small and tilted", canvas, "male"))

    rough = Image.open(os.path.join(REPO, "tests", "data", "rough_sketch.png")).convert("L").resize((200, 200))
    canvas = Image.new("L", (420, 480), 255)
    canvas.paste(rough, (110, 40))
    d = ImageDraw.Draw(canvas)
    d.line([(120, 300), (60, 380), (30, 480)], fill=40, width=3)          # shoulders
    d.line([(300, 300), (360, 380), (390, 480)], fill=40, width=3)
    d.line([(180, 250), (185, 320)], fill=60, width=2)                    # neck
    d.line([(240, 250), (235, 320)], fill=60, width=2)
    d.line([(0, 30), (100, 0)], fill=90, width=2)                         # background
    rows.append(("rough drawing with shoulders", canvas, "female"))

    a = Image.open(os.path.join(SAMPLES, "sketch0790.jpg")).convert("L")
    b = Image.open(os.path.join(SAMPLES, "sketch1107.jpg")).convert("L").resize((170, 170), Image.LANCZOS)
    canvas = Image.new("L", (520, 300), 255)
    canvas.paste(a.resize((260, 260), Image.LANCZOS), (240, 20))
    canvas.paste(b, (30, 100))
    rows.append(("two sketches (the larger is drawn)", canvas, "female"))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(RESULTS_DIR, "face_align.png"))
    args = ap.parse_args(argv)
    face = FaceEngine()
    tiles = []
    for name, gray, gender in inputs():
        layer = rgba(gray)
        base = face.validate_params({"gender": gender})
        tpl = face.run({"image": layer}, {**base, "align": "template"}, ("face",), JobContext())["face"]
        ctx = JobContext()
        auto = face.run({"image": layer}, {**base, "align": "auto"}, ("face",), ctx)["face"]
        print(f"{name}: {'; '.join(ctx.notes)}")
        under = np.asarray(gray.convert("RGB"))
        row = [under, (np.clip(tpl[..., :3], 0, 1) * 255).astype(np.uint8),
               over(auto, under).astype(np.uint8), over(auto, checker(*gray.size)).astype(np.uint8)]
        tiles.append([Image.fromarray(t).resize((round(t.shape[1] * ROW_H / t.shape[0]), ROW_H), Image.LANCZOS)
                      for t in row])
    width = max(sum(t.width for t in row) + 8 * (len(row) - 1) for row in tiles)
    fig = Image.new("RGB", (width, len(tiles) * (ROW_H + 8) - 8), "white")
    y = 0
    for row in tiles:
        x = 0
        for t in row:
            fig.paste(t, (x, y))
            x += t.width + 8
        y += ROW_H + 8
    fig.save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
