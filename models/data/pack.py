"""The FS2K training pack: layout, writer helpers and the reader used by training.

Torch-free and MediaPipe-free (numpy + Pillow). Layout of a pack directory:

    index.json            {"version", "size", "point_names", "items": [...], "stats": {...}}
                          item: id, split, style (0/1/2), gender (0 = male, 1 = female, as FS2K annotates), source
                          image_name, points (4x2 key points in the aligned frame, POINT_NAMES
                          order), face_found, mesh_row (row in mesh.npy, or -1),
                          sketch_offset (mean distance in pixels between the key points of a face
                          mesh found on the aligned sketch and the photo's; null when none was
                          found on the sketch; a few pixels is detector noise, over ~12 means the
                          artist's drawing is shifted or scaled against the photo)
    photos/<id>.webp      aligned photo, RGB, size x size (lossy WebP: a third the size of JPEG)
    sketches/<id>.webp    aligned artist sketch, grayscale (same geometry as the photo)
    depths/<id>.webp      face depth map, grayscale, near = bright, black background
    mesh.npy              (M, 468, 3) float16 face-mesh vertices in the aligned frame (x, y in
                          pixels, z in pixels, smaller z = nearer), for re-rendering depth at
                          other sizes with models.data.depth_render
    triangles.npy         (T, 3) int16 triangles of the mesh (MediaPipe's tessellation plus
                          triangles closing the eye and mouth openings)

FS2K's gender annotation: 0 = male, 1 = female (FS2KToolbox eval_from_json.m files gender 0 under
"m"; the photos agree).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
from PIL import Image

PACK_VERSION = 1
SPLITS = ("train", "test")
IMAGE_EXT = ".webp"
# WebP qualities chosen by measurement on FS2K (KB per 256x256 image, mean abs error in grey levels):
# photo q80 ~8 KB; sketch q75 ~12 KB (JPEG q75 is 13 KB at a similar error); depth q95 ~2.7 KB,
# error 0.25 (lossless is 6 KB). The whole pack stays under 50 MB this way.
QUALITY = {"photos": 80, "sketches": 75, "depths": 95}


@dataclass
class FS2KPack:
    ids: List[str]
    photos: np.ndarray      # (N, S, S, 3) uint8
    sketches: np.ndarray    # (N, S, S) uint8, black strokes on white
    depths: np.ndarray      # (N, S, S) uint8, near = bright, 0 = background / no face found
    styles: np.ndarray      # (N,) uint8 in {0, 1, 2}
    genders: np.ndarray     # (N,) uint8, 0 = male, 1 = female (FS2K's annotation)
    landmarks: np.ndarray   # (N, 4, 2) float32 key points in the aligned frame
    face_found: np.ndarray  # (N,) bool
    sketch_offsets: np.ndarray  # (N,) float32 px, NaN where unmeasured (see the layout notes)
    sources: List[str] = field(default_factory=list)

    def __len__(self):
        return len(self.ids)


def read_index(pack_dir: str) -> dict:
    path = os.path.join(pack_dir, "index.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"no FS2K pack at {pack_dir} (index.json missing); build one with "
            f"'python -m facesketch.models.data.fs2k --root FS2K_DIR --out {pack_dir}' in the data-preparation environment")
    with open(path) as f:
        index = json.load(f)
    if index.get("version") != PACK_VERSION:
        raise ValueError(f"pack at {pack_dir} has version {index.get('version')}, expected {PACK_VERSION}")
    return index


def _load_gray(path: str) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


def load_pack(pack_dir: str, split: str = "train", limit: Optional[int] = None) -> FS2KPack:
    """Decode a split ("train", "test" or "all") of the pack into uint8 numpy arrays."""
    if split not in SPLITS + ("all",):
        raise ValueError(f"split must be one of train, test, all; got {split!r}")
    index = read_index(pack_dir)
    items = [it for it in index["items"] if split == "all" or it["split"] == split]
    if limit is not None:
        items = items[:limit]
    s = int(index["size"])
    n = len(items)
    photos = np.zeros((n, s, s, 3), np.uint8)
    sketches = np.zeros((n, s, s), np.uint8)
    depths = np.zeros((n, s, s), np.uint8)
    for i, it in enumerate(items):
        with Image.open(os.path.join(pack_dir, "photos", it["id"] + IMAGE_EXT)) as im:
            photos[i] = np.asarray(im.convert("RGB"))
        sketches[i] = _load_gray(os.path.join(pack_dir, "sketches", it["id"] + IMAGE_EXT))
        depths[i] = _load_gray(os.path.join(pack_dir, "depths", it["id"] + IMAGE_EXT))
    return FS2KPack(
        ids=[it["id"] for it in items],
        photos=photos, sketches=sketches, depths=depths,
        styles=np.array([it["style"] for it in items], np.uint8),
        genders=np.array([it["gender"] for it in items], np.uint8),
        landmarks=np.array([it["points"] for it in items], np.float32).reshape(n, 4, 2),
        face_found=np.array([it["face_found"] for it in items], bool),
        sketch_offsets=np.array([np.nan if it.get("sketch_offset") is None else it["sketch_offset"]
                                 for it in items], np.float32),
        sources=[it["source"] for it in items],
    )


def load_mesh(pack_dir: str, split: str = "train"):
    """(ids, vertices (M, 468, 3) float32, triangles (T, 3) int64) for the items whose face was found."""
    index = read_index(pack_dir)
    mesh = np.load(os.path.join(pack_dir, "mesh.npy")).astype(np.float32)
    tri = np.load(os.path.join(pack_dir, "triangles.npy")).astype(np.int64)
    items = [it for it in index["items"]
             if (split == "all" or it["split"] == split) and it["mesh_row"] >= 0]
    return [it["id"] for it in items], mesh[[it["mesh_row"] for it in items]], tri


def save_item_images(pack_dir: str, item_id: str, photo: np.ndarray, sketch: np.ndarray,
                     depth: np.ndarray, quality: Optional[dict] = None) -> None:
    """Write one item's three images in the pack layout."""
    q = dict(QUALITY, **(quality or {}))
    for sub, arr, mode in (("photos", photo, "RGB"), ("sketches", sketch, "L"), ("depths", depth, "L")):
        os.makedirs(os.path.join(pack_dir, sub), exist_ok=True)
        Image.fromarray(np.ascontiguousarray(arr), mode).save(
            os.path.join(pack_dir, sub, item_id + IMAGE_EXT), "WEBP", quality=q[sub], method=6)


def write_index(pack_dir: str, size: int, items: list, stats: dict, point_names) -> None:
    index = {"version": PACK_VERSION, "size": size, "point_names": list(point_names),
             "items": items, "stats": stats}
    tmp = os.path.join(pack_dir, "index.json.tmp")
    with open(tmp, "w") as f:
        json.dump(index, f, separators=(",", ":"))
    os.replace(tmp, os.path.join(pack_dir, "index.json"))
