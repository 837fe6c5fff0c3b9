"""Face landmarks of FS2K and CelebA-6k in the images' own frames, for the sketch face locator.

    .venv-prep/bin/python -m facesketch.models.data.landmarks --fs2k ../shared/datasets/fs2k \
        --celeba ../shared/datasets/celeba-6k --out ~/.cache/facesketch/landmarks

The locator learns to find a drawn face at any position, scale and rotation, so it trains on whole pictures
(shoulders, hair and background included) rather than on the packs' aligned crops. MediaPipe's face mesh (data
preparation only) gives five landmarks on each photo; FS2K's sketches are drawn over their photos and share them.
Writes `index.json`:

    {"version": 1, "point_names": [...5], "roots": {"fs2k": DIR, "celeba": DIR}, "items": [...]}
    item: id, dataset ("fs2k" | "celeba"), split, photo (path under the dataset root), sketch (the artist's
          sketch under the root, FS2K only, else null), style (FS2K's, else null), gender (FS2K's, else null),
          size [w, h], points (5 x [x, y] in pixels, POINT_NAMES order; null when no face was found)

Nothing from the datasets is copied; the paths are resolved against `roots` (or the --fs2k / --celeba options of
the readers, on another machine).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from PIL import Image

from .fs2k import LEFT_EYE_CONTOUR, NOSE_TIP, RIGHT_EYE_CONTOUR, MeshDetector, photo_path_for, sketch_path_for

VERSION = 1
# "left" = image-left, as face_template.POINT_NAMES. MediaPipe's "right eye" (the subject's) is image-left;
# mesh vertices 61 and 291 are the outer mouth corners (image-left, image-right).
POINT_NAMES = ("left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right")
MOUTH_LEFT, MOUTH_RIGHT = 61, 291


def points_from_mesh(mesh_xy: np.ndarray) -> np.ndarray:
    """(468, 2) face-mesh vertices -> (5, 2) landmarks in POINT_NAMES order."""
    return np.stack([mesh_xy[RIGHT_EYE_CONTOUR].mean(0), mesh_xy[LEFT_EYE_CONTOUR].mean(0), mesh_xy[NOSE_TIP],
                     mesh_xy[MOUTH_LEFT], mesh_xy[MOUTH_RIGHT]])


def key_points(points5: np.ndarray) -> np.ndarray:
    """(..., 5, 2) landmarks -> (..., 4, 2) face_template key points (eyes, nose tip, mouth centre)."""
    p = np.asarray(points5, np.float64)
    return np.concatenate([p[..., :3, :], p[..., 3:5, :].mean(-2, keepdims=True)], axis=-2)


def _entries(fs2k: str | None, celeba: str | None):
    if fs2k:
        for split in ("train", "test"):
            with open(os.path.join(fs2k, f"anno_{split}.json")) as f:
                for a in json.load(f):
                    name = a["image_name"]
                    yield {"id": "fs2k_" + name.replace("/", "_"), "dataset": "fs2k", "split": split,
                           "photo": os.path.relpath(photo_path_for(fs2k, name), fs2k),
                           "sketch": os.path.relpath(sketch_path_for(fs2k, name), fs2k),
                           "style": int(a["style"]), "gender": int(a["gender"])}
    if celeba:
        for split in ("train", "test"):
            base = os.path.join(celeba, split)
            for person in sorted(os.listdir(base)):
                for name in sorted(os.listdir(os.path.join(base, person))):
                    if name.lower().endswith((".jpg", ".jpeg", ".png")):
                        stem = os.path.splitext(name)[0]
                        yield {"id": f"celeba_{person}_{stem}", "dataset": "celeba", "split": split,
                               "photo": os.path.join(split, person, name), "sketch": None, "style": None,
                               "gender": None}


def read_index(path: str, roots: dict | None = None) -> dict:
    """The index with `roots` overridden where given (datasets elsewhere on this machine)."""
    with open(os.path.join(path, "index.json")) as f:
        index = json.load(f)
    if index.get("version") != VERSION:
        raise ValueError(f"landmarks index at {path} has version {index.get('version')}, expected {VERSION}")
    index["roots"].update({k: v for k, v in (roots or {}).items() if v})
    return index


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fs2k", help="FS2K folder")
    ap.add_argument("--celeba", help="CelebA-6k folder (train/, test/)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--limit", type=int, default=None, help="only the first N images (a quick check)")
    args = ap.parse_args(argv)
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        print("MediaPipe is not installed in this Python: use the data-preparation environment "
              "(python3 install.py --prep; .venv-prep/bin/python -m facesketch.models.data.landmarks ...)",
              file=sys.stderr)
        return 2
    from tqdm import tqdm
    roots = {"fs2k": os.path.abspath(args.fs2k) if args.fs2k else None,
             "celeba": os.path.abspath(args.celeba) if args.celeba else None}
    entries = list(_entries(roots["fs2k"], roots["celeba"]))[:args.limit]
    t0 = time.time()
    detector = MeshDetector()
    found = 0
    for e in tqdm(entries, desc="face mesh", unit="photo"):
        with Image.open(os.path.join(roots[e["dataset"]], e["photo"])) as im:
            rgb = np.asarray(im.convert("RGB"))
        e["size"] = [rgb.shape[1], rgb.shape[0]]
        mesh = detector.detect(rgb)
        e["points"] = None if mesh is None else np.round(points_from_mesh(mesh[:, :2]), 2).tolist()
        found += mesh is not None
    detector.close()
    os.makedirs(args.out, exist_ok=True)
    tmp = os.path.join(args.out, "index.json.tmp")
    with open(tmp, "w") as f:
        json.dump({"version": VERSION, "point_names": list(POINT_NAMES), "roots": roots, "items": entries,
                   "stats": {"images": len(entries), "faces_found": found,
                             "seconds": round(time.time() - t0, 1)}}, f, separators=(",", ":"))
    os.replace(tmp, os.path.join(args.out, "index.json"))
    print(f"{len(entries)} images, a face found on {found}; {time.time() - t0:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
