"""The face model's training pack: FS2K and CelebA photos aligned to the face template, with every sketch of them.

    python -m facesketch.models.data.face_pack --landmarks ~/.cache/facesketch/landmarks \
        --made ~/.cache/facesketch/made-sketches --out ~/.cache/facesketch/face-pack [--split train] [--size 256]

DeepFaceDrawing learned from sketches made from its photos; this pack joins the FS2K artist sketches with the made
sketches of models.data.made_sketches (dodge, pencil, rough, outline, sketch-engine styles, HED edges), for FS2K and
CelebA photos alike, all warped into the template frame by the photo's landmarks (models.data.landmarks). Photos
without any made sketch are left out.

Layout of `<out>/<split>/` (read with `load_face_pack`; the arrays are memory-mapped, so a pack larger than the
machine's memory trains fine):

    items.json      [{"id", "dataset", "identity", "gender" (0 male, 1 female, null unknown)}, ...], "kinds", "size"
    ../genders.json the CelebA people's gender from models.data.face_gender (optional; shared by the splits)
    photos.npy      (N, S, S, 3) uint8, aligned photos (black outside the source photo)
    sketches.npy    (M, S, S) uint8, aligned sketches (white outside the source)
    sketch_of.npy   (M, 2) int32: (photo row, kind index into "kinds")
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from . import face_template as ft
from .landmarks import key_points, read_index

# a person's inferred gender is used only when the classifier's mean p(female) is this far from 0.5 (looked at by
# hand on 2026-12-01: between 0.35 and 0.65 about a third were wrong, outside it few)
INFERRED_MARGIN = 0.15
KINDS = ("artist", "dodge", "pencil", "rough", "outline", "engine", "hed")


def identity_of(item: dict) -> str:
    """CelebA's folder is the person; every FS2K photo is its own person."""
    return item["photo"].split("/")[1] if item["dataset"] == "celeba" else item["id"]


@dataclass
class FacePack:
    items: list
    kinds: tuple
    photos: np.ndarray      # (N,S,S,3) uint8, memory-mapped
    sketches: np.ndarray    # (M,S,S) uint8, memory-mapped
    sketch_of: np.ndarray   # (M,2) int32: photo row, kind index

    inferred: dict = field(default_factory=dict)  # models.data.face_gender's {person: {"female": p, ...}}

    @property
    def genders(self) -> np.ndarray:
        """(N,) int8: 0 male, 1 female (annotated, else inferred for the person when the classifier is sure:
        p(female) outside 0.5 +- INFERRED_MARGIN), -1 unknown."""
        def one(it):
            if it["gender"] is not None:
                return it["gender"]
            guess = self.inferred.get(it["identity"])
            if guess is None or abs(guess["female"] - 0.5) < INFERRED_MARGIN:
                return -1
            return int(guess["female"] > 0.5)
        return np.array([one(it) for it in self.items], np.int8)

    def kind_rows(self, kind: str) -> np.ndarray:
        return np.flatnonzero(self.sketch_of[:, 1] == self.kinds.index(kind)) if kind in self.kinds \
            else np.zeros(0, np.int64)


def load_face_pack(root: str, split: str = "train") -> FacePack:
    d = os.path.join(root, split)
    with open(os.path.join(d, "items.json")) as f:
        meta = json.load(f)
    inferred = {}
    if os.path.isfile(genders := os.path.join(root, "genders.json")):
        with open(genders) as f:
            inferred = json.load(f)["identities"]
    return FacePack(meta["items"], tuple(meta["kinds"]), np.load(os.path.join(d, "photos.npy"), mmap_mode="r"),
                    np.load(os.path.join(d, "sketches.npy"), mmap_mode="r"), np.load(os.path.join(d, "sketch_of.npy")),
                    inferred)


def _gray(path: str) -> Image.Image:
    from .fs2k import load_sketch_gray
    return load_sketch_gray(path) if path.lower().endswith((".jpg", ".png")) else Image.open(path).convert("L")


def _write_index(d: str, size: int, kinds, items: list, sketch_of) -> None:
    np.save(os.path.join(d, "sketch_of.npy"), np.asarray(sketch_of, np.int32))
    with open(os.path.join(d, "items.json"), "w") as f:
        json.dump({"size": size, "kinds": list(kinds), "items": items}, f)


def write(root: str, split: str, items: list, kinds, size: int, photos, sketches, sketch_of) -> FacePack:
    """A face pack split from arrays already in memory (the one-shot GPU bundle unpacks this way)."""
    photos, sketches = np.asarray(photos, np.uint8), np.asarray(sketches, np.uint8)
    if photos.shape[1:] != (size, size, 3) or sketches.shape[1:] != (size, size):
        raise ValueError(f"photos {photos.shape} and sketches {sketches.shape} are not a {size}px face pack")
    d = os.path.join(root, split)
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, "photos.npy"), photos)
    np.save(os.path.join(d, "sketches.npy"), sketches)
    _write_index(d, size, kinds, items, sketch_of)
    return load_face_pack(root, split)


def build(index: dict, made: str, out: str, split: str, size: int, kinds=KINDS, log=print) -> FacePack:
    from tqdm import tqdm
    items, sources = [], []   # sources[n] = [(kind index, path), ...]
    for it in index["items"]:
        if it["split"] != split or it["points"] is None:
            continue
        found = []
        for k, kind in enumerate(kinds):
            if kind == "artist":
                if it.get("sketch"):
                    found.append((k, os.path.join(index["roots"][it["dataset"]], it["sketch"])))
            elif os.path.isfile(p := os.path.join(made, kind, it["id"] + ".webp")):
                found.append((k, p))
        if not found or (split == "train" and not any(kinds[k] != "artist" for k, _ in found)):
            continue  # in training, a photo without made sketches would only teach the artists' style
        items.append({"id": it["id"], "dataset": it["dataset"], "identity": identity_of(it), "gender": it["gender"],
                      "photo": it["photo"], "points": it["points"]})
        sources.append(found)
    if not items:
        raise SystemExit(f"no {split} photos with landmarks and made sketches")
    d = os.path.join(out, split)
    os.makedirs(d, exist_ok=True)
    m_total = sum(len(s) for s in sources)
    photos = np.lib.format.open_memmap(os.path.join(d, "photos.npy.tmp"), "w+", np.uint8, (len(items), size, size, 3))
    sketches = np.lib.format.open_memmap(os.path.join(d, "sketches.npy.tmp"), "w+", np.uint8, (m_total, size, size))
    sketch_of = np.zeros((m_total, 2), np.int32)
    row = 0
    for n, (it, found) in enumerate(tqdm(list(zip(items, sources)), desc=f"face pack {split}", unit="photo",
                                         mininterval=10)):
        m = ft.alignment_matrix(key_points(np.array(it["points"])), size)
        with Image.open(os.path.join(index["roots"][it["dataset"]], it["photo"])) as im:
            photos[n] = np.asarray(ft.warp(im.convert("RGB"), m, size, fill=0))
        for k, path in found:
            sketches[row] = np.asarray(ft.warp(_gray(path), m, size, fill=255))
            sketch_of[row] = (n, k)
            row += 1
    photos.flush()
    sketches.flush()
    del photos, sketches
    for name in ("photos", "sketches"):
        os.replace(os.path.join(d, f"{name}.npy.tmp"), os.path.join(d, f"{name}.npy"))
    for it in items:
        del it["points"], it["photo"]
    _write_index(d, size, kinds, items, sketch_of)
    pack = load_face_pack(out, split)
    counts = {kind: len(pack.kind_rows(kind)) for kind in kinds}
    log(f"{split}: {len(items)} photos, {m_total} sketches {counts} -> {d}")
    return pack


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--landmarks", required=True, help="folder of models.data.landmarks' index.json")
    ap.add_argument("--made", required=True, help="models.data.made_sketches' output folder")
    ap.add_argument("--out", required=True)
    ap.add_argument("--split", default="train", choices=("train", "test"))
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--fs2k", help="FS2K folder, when not where the index was made")
    ap.add_argument("--celeba", help="CelebA-6k folder, when not where the index was made")
    args = ap.parse_args(argv)
    build(read_index(args.landmarks, {"fs2k": args.fs2k, "celeba": args.celeba}), args.made, args.out, args.split,
          args.size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
