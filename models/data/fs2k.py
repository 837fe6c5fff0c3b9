"""Turn FS2K into a compact, aligned training pack (see models/data/pack.py for the layout).

    python -m facesketch.models.data.fs2k --root /work/shared/datasets/fs2k --out DIR [--size 256] [--limit N]

Runs in the separate data-preparation environment (models/data/requirements-prep.txt, made by
`python3 install.py --prep`), because it needs MediaPipe's face mesh. For every pair of the
official split: face-mesh landmarks on the photo, photo and sketch warped to the face template
by one similarity transform, and a depth map rendered from the mesh in the aligned frame.
Photos without a detected face get a typical crop for their source folder and an empty depth map,
and are flagged (face_found = false).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import sys
import time

import numpy as np
from PIL import Image

from . import face_template as ft
from . import pack as fspack
from .depth_render import depth_to_uint8, rasterise_depth

# MediaPipe face-mesh indices (468-point topology). The subject's right eye is on the image left.
RIGHT_EYE_CONTOUR = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246]
LEFT_EYE_CONTOUR = [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466]
NOSE_TIP = 1
MOUTH_OUTER = [0, 17, 61, 291]  # top, bottom, left and right corners of the outer lip line

# The tessellation leaves the eye and mouth openings as holes; 3DDFA-style depth maps (HIDA's
# input) have none, so the openings are closed by zipping each upper chain to its lower chain
# (both run corner to corner with the same number of points).
OPENING_CHAINS = [
    ([33, 246, 161, 160, 159, 158, 157, 173, 133], [33, 7, 163, 144, 145, 153, 154, 155, 133]),
    ([263, 466, 388, 387, 386, 385, 384, 398, 362], [263, 249, 390, 373, 374, 380, 381, 382, 362]),
    ([78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308], [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]),
]


def closing_triangles() -> np.ndarray:
    tris = []
    for upper, lower in OPENING_CHAINS:
        for k in range(len(upper) - 1):
            for t in ((upper[k], upper[k + 1], lower[k + 1]), (upper[k], lower[k + 1], lower[k])):
                if len(set(t)) == 3:  # the corners are shared: skip the degenerate ones
                    tris.append(t)
    return np.array(tris, np.int64)


def key_points_from_mesh(mesh_xy: np.ndarray) -> np.ndarray:
    """(468, 2) mesh points -> (4, 2) key points in face_template.POINT_NAMES order."""
    return np.stack([mesh_xy[RIGHT_EYE_CONTOUR].mean(0), mesh_xy[LEFT_EYE_CONTOUR].mean(0),
                     mesh_xy[NOSE_TIP], mesh_xy[MOUTH_OUTER].mean(0)])


def sketch_path_for(root: str, image_name: str) -> str:
    # photo1/image0110 <-> sketch/sketch1/sketch0110.jpg
    folder, stem = image_name.split("/")
    return os.path.join(root, "sketch", folder.replace("photo", "sketch"), stem.replace("image", "sketch") + ".jpg")


def photo_path_for(root: str, image_name: str) -> str:
    for ext in (".jpg", ".png", ".jpeg", ".JPG"):
        p = os.path.join(root, "photo", image_name + ext)
        if os.path.isfile(p):
            return p
    raise FileNotFoundError(f"FS2K photo {image_name} not found under {root}/photo")


def load_sketch_gray(path: str) -> Image.Image:
    """FS2K sketches are RGB, a few RGBA: composite on white paper, then grayscale."""
    with Image.open(path) as im:
        if im.mode in ("RGBA", "LA", "P"):
            im = im.convert("RGBA")
            paper = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(paper, im)
        return im.convert("L")


def tessellation_triangles() -> np.ndarray:
    """MediaPipe's face-mesh triangles. FACEMESH_TESSELATION is a frozenset of edges, but its
    source lists them triangle by triangle ((a,b),(b,c),(c,a)), so the order is read from there."""
    from mediapipe.python.solutions import face_mesh_connections as fmc
    src = inspect.getsource(fmc)
    block = src[src.index("FACEMESH_TESSELATION = frozenset(["):]
    block = block[:block.index("])")]
    pairs = [(int(a), int(b)) for a, b in re.findall(r"\((\d+),\s*(\d+)\)", block)]
    if len(pairs) % 3:
        raise RuntimeError("unexpected FACEMESH_TESSELATION layout")
    tris = []
    for i in range(0, len(pairs), 3):
        (a, b), (b2, c), (c2, a2) = pairs[i:i + 3]
        if not (b == b2 and c == c2 and a == a2):
            raise RuntimeError(f"FACEMESH_TESSELATION entry {i // 3} is not a triangle: {pairs[i:i + 3]}")
        tris.append((a, b, c))
    tris = np.array(tris, np.int64)
    if set(map(tuple, (sorted(p) for p in pairs))) != set(tuple(sorted(e)) for e in fmc.FACEMESH_TESSELATION):
        raise RuntimeError("parsed triangles do not match FACEMESH_TESSELATION")
    return tris


class MeshDetector:
    def __init__(self):
        import mediapipe as mp
        self._fm = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                   refine_landmarks=False, min_detection_confidence=0.5)

    def _run(self, rgb: np.ndarray):
        res = self._fm.process(rgb)
        if not res.multi_face_landmarks:
            return None
        lm = res.multi_face_landmarks[0].landmark
        h, w = rgb.shape[:2]
        # x, y normalised by width/height; z uses roughly the x scale (MediaPipe docs)
        return np.array([(p.x * w, p.y * h, p.z * w) for p in lm], np.float64)

    def detect(self, rgb: np.ndarray):
        """(468, 3) mesh in the photo's pixel coordinates, or None. Tight crops are retried
        with a border, because the short-range face detector misses faces touching the edges."""
        mesh = self._run(rgb)
        if mesh is not None:
            return mesh
        h, w = rgb.shape[:2]
        pad = max(h, w) // 4
        padded = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        mesh = self._run(padded)
        if mesh is not None:
            mesh[:, :2] -= pad
        return mesh

    def close(self):
        self._fm.close()


def fallback_matrix(w: int, h: int, typical: dict, size: int) -> np.ndarray:
    """Similarity for a photo without a detected face: the median placement of detected faces in
    photos of the same source folder (relative to the photo's size), or a centred crop."""
    short = min(w, h)
    if typical:
        scale = typical["scale"] * size / short
        cx = w / 2 + typical["dx"] * short
        cy = h / 2 + typical["dy"] * short
    else:
        scale, cx, cy = size / short, w / 2, h / 2
    tpl_centre = ft.template_points(size).mean(0) if typical else np.array([size / 2, size / 2])
    m = np.zeros((2, 3))
    m[0, 0] = m[1, 1] = scale
    m[:, 2] = tpl_centre - scale * np.array([cx, cy])
    return m


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", required=True, help="FS2K folder (anno_train.json, anno_test.json, photo/, sketch/)")
    ap.add_argument("--out", required=True, help="pack folder to write")
    ap.add_argument("--size", type=int, default=256, help="aligned canvas size (default 256)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N pairs of each split")
    args = ap.parse_args(argv)

    try:
        import mediapipe  # noqa: F401
    except ImportError:
        print("MediaPipe is not installed in this Python: run this command with the data-preparation "
              "environment's Python (create it with 'python3 install.py --prep', then use "
              ".venv-prep/bin/python -m facesketch.models.data.fs2k ...).", file=sys.stderr)
        return 2
    from tqdm import tqdm

    t_start = time.time()
    entries = []
    for split in fspack.SPLITS:
        path = os.path.join(args.root, f"anno_{split}.json")
        if not os.path.isfile(path):
            print(f"FS2K annotation file {path} is missing; --root must be the FS2K folder.", file=sys.stderr)
            return 2
        with open(path) as f:
            annos = json.load(f)
        if args.limit:
            annos = annos[:args.limit]
        entries += [(split, a) for a in annos]

    os.makedirs(args.out, exist_ok=True)
    triangles = np.concatenate([tessellation_triangles(), closing_triangles()])
    size = args.size

    # pass 1: landmarks
    detector = MeshDetector()
    meshes, dims = [], []
    for split, a in tqdm(entries, desc="face mesh", unit="photo"):
        with Image.open(photo_path_for(args.root, a["image_name"])) as im:
            rgb = np.asarray(im.convert("RGB"))
        dims.append((rgb.shape[1], rgb.shape[0]))
        meshes.append(detector.detect(rgb))
    detector.close()

    # typical face placement per source folder, for photos where no face was found
    placements = {}
    for (split, a), mesh, (w, h) in zip(entries, meshes, dims):
        if mesh is None:
            continue
        m = ft.alignment_matrix(key_points_from_mesh(mesh[:, :2]), size)
        short = min(w, h)
        centre = key_points_from_mesh(mesh[:, :2]).mean(0)
        placements.setdefault(a["image_name"].split("/")[0], []).append(
            (ft.matrix_scale(m) * short / size, (centre[0] - w / 2) / short, (centre[1] - h / 2) / short))
    typical = {k: dict(zip(("scale", "dx", "dy"), np.median(np.array(v), 0).tolist())) for k, v in placements.items()}

    # pass 2: align, render, write
    # FS2K's artists drew over the photo, but some sketches are shifted or scaled against it; the
    # face mesh found on the aligned sketch measures that (mean key-point distance in pixels;
    # the detector is noisier on drawings, so a few pixels is noise, 12+ is a real misfit)
    sketch_detector = MeshDetector()
    items, mesh_rows = [], []
    not_found = {s: 0 for s in fspack.SPLITS}
    for (split, a), mesh, (w, h) in tqdm(list(zip(entries, meshes, dims)), desc="align+depth", unit="pair"):
        name = a["image_name"]
        item_id = name.replace("/", "_")
        with Image.open(photo_path_for(args.root, name)) as im:
            photo = im.convert("RGB")
        sketch = load_sketch_gray(sketch_path_for(args.root, name))
        if sketch.size != photo.size:
            raise RuntimeError(f"{name}: sketch size {sketch.size} differs from photo size {photo.size}")
        if mesh is not None:
            m = ft.alignment_matrix(key_points_from_mesh(mesh[:, :2]), size)
            verts = np.concatenate([ft.transform_points(mesh[:, :2], m), mesh[:, 2:] * ft.matrix_scale(m)], 1)
            verts = verts.astype(np.float16)  # as stored: the depth map is exactly render(mesh.npy row)
            depth = depth_to_uint8(rasterise_depth(verts.astype(np.float64), triangles, size))
            points = ft.transform_points(key_points_from_mesh(mesh[:, :2]), m)
            mesh_row = len(mesh_rows)
            mesh_rows.append(verts)
        else:
            not_found[split] += 1
            m = fallback_matrix(w, h, typical.get(name.split("/")[0]), size)
            depth = np.zeros((size, size), np.uint8)
            points = ft.template_points(size)
            mesh_row = -1
        photo_a = np.asarray(ft.warp(photo, m, size, fill=0))
        sketch_a = np.asarray(ft.warp(sketch, m, size, fill=255))
        fspack.save_item_images(args.out, item_id, photo_a, sketch_a, depth)
        sk_mesh = sketch_detector.detect(np.repeat(sketch_a[..., None], 3, axis=2))
        sketch_offset = None
        if sk_mesh is not None:
            sk_points = key_points_from_mesh(sk_mesh[:, :2])
            sketch_offset = round(float(np.linalg.norm(sk_points - points, axis=1).mean()), 2)
        items.append({"id": item_id, "split": split, "style": int(a["style"]), "gender": int(a["gender"]),
                      "source": name, "points": np.round(points, 2).tolist(),
                      "face_found": mesh is not None, "mesh_row": mesh_row, "sketch_offset": sketch_offset})
    sketch_detector.close()

    np.save(os.path.join(args.out, "mesh.npy"),
            np.stack(mesh_rows) if mesh_rows else np.zeros((0, 468, 3), np.float16))
    np.save(os.path.join(args.out, "triangles.npy"), triangles.astype(np.int16))
    counts = {s: sum(1 for it in items if it["split"] == s) for s in fspack.SPLITS}
    offsets = np.array([it["sketch_offset"] for it in items if it["sketch_offset"] is not None])
    stats = {"counts": counts, "faces_not_found": not_found,
             "sketch_offset": {"measured": int(len(offsets)),
                               "median_px": round(float(np.median(offsets)), 2) if len(offsets) else None,
                               "over_12px": int((offsets > 12).sum())}, "seconds": round(time.time() - t_start, 1),
             "typical_placement": typical, "source_root": os.path.abspath(args.root)}
    fspack.write_index(args.out, size, items, stats, ft.POINT_NAMES)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(args.out) for f in fs)
    print(f"wrote {len(items)} pairs to {args.out} ({total / 1e6:.1f} MB): {counts}; "
          f"no face found: {not_found}; {stats['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
