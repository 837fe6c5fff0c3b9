"""Face-part weight maps from the pack's face meshes: where an artist draws with clear lines.

The sketch losses weigh pixels by `1 + w * parts` so that eyes, brows, nose, mouth and the face
outline count more than cheeks and background (the features users judge a portrait sketch by).
Regions come from MediaPipe's 468-point face-mesh topology; maps are soft (blurred), because an
artist's line is rarely exactly on the photo's landmark.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# MediaPipe face-mesh indices. "right" is the subject's right (on the image's left).
RIGHT_EYE_BROW = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246,
                  70, 63, 105, 66, 107, 55, 65, 52, 53, 46]
LEFT_EYE_BROW = [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466,
                 300, 293, 334, 296, 336, 285, 295, 282, 283, 276]
NOSE = [168, 6, 197, 195, 5, 4, 1, 2, 98, 327, 129, 358, 48, 278, 219, 439, 64, 294, 94, 19]
LIPS = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
FILLED = (RIGHT_EYE_BROW, LEFT_EYE_BROW, NOSE, LIPS)


def _hull(points: np.ndarray) -> list:
    """Convex hull (monotone chain) as a list of (x, y) tuples."""
    pts = sorted(map(tuple, points.tolist()))
    if len(pts) < 3:
        return pts

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def parts_map(mesh_xy: np.ndarray, size: int, grow: float = 0.06) -> np.ndarray:
    """(468, 2) mesh points in pixels -> (size, size) uint8 map, 255 on the parts, 0 elsewhere.

    Each filled region is its hull grown by `grow` x the face width around its centre; the outline is
    a band along the face oval."""
    im = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(im)
    face_w = float(np.ptp(mesh_xy[FACE_OVAL, 0])) or size / 2
    for region in FILLED:
        pts = mesh_xy[region]
        c = pts.mean(0)
        d = pts - c
        norm = np.linalg.norm(d, axis=1, keepdims=True) + 1e-6
        draw.polygon(_hull(pts + d / norm * grow * face_w), fill=255)
    oval = [tuple(p) for p in mesh_xy[FACE_OVAL].tolist()]
    draw.line(oval + oval[:1], fill=255, width=max(2, int(round(0.05 * face_w))))
    return np.asarray(im.filter(ImageFilter.GaussianBlur(max(1.0, 0.02 * face_w))))


def parts_maps(pack_dir: str, ids: list, size: int) -> np.ndarray:
    """(N, size, size) uint8 part maps for the pack items `ids`; zeros where no mesh was found."""
    from .pack import load_mesh
    mesh_ids, verts, _ = load_mesh(pack_dir, "all")
    row = {k: i for i, k in enumerate(mesh_ids)}
    out = np.zeros((len(ids), size, size), np.uint8)
    for i, k in enumerate(ids):
        if k in row:
            out[i] = parts_map(verts[row[k], :, :2], size)
    return out
