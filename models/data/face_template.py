"""The canonical face template shared by the sketch and face models.

Both models work on faces aligned to one template: DeepFaceDrawing's component crop boxes
(defined on the released network's 512x512 canvas) scaled to any canvas, and four key points
(left-eye centre, right-eye centre, nose tip, mouth centre) derived from those boxes.
Photos are aligned by a similarity transform that maps their detected key points onto the
template points. numpy + Pillow only: the runtime engines use this module too.

Coordinates are continuous pixel coordinates as Pillow uses them: pixel (i, j) covers
[i, i+1) x [j, j+1), so its centre is (i + 0.5, j + 0.5). "Left" means image-left.
"""

from __future__ import annotations

import math
from typing import Dict, Tuple, Union

import numpy as np
from PIL import Image

TEMPLATE_CANVAS = 512

# DeepFaceDrawing's crop boxes on the 512 canvas as (x_left, y_top, size); crops are
# img[y:y+size, x:x+size]. Order is the official processing order.
BOXES_512: Dict[str, Tuple[int, int, int]] = {
    "eye1": (108, 156, 128),   # eye on the image-left side
    "eye2": (255, 156, 128),   # eye on the image-right side
    "nose": (182, 232, 160),
    "mouth": (169, 301, 192),
}
COMPONENTS = tuple(BOXES_512)

POINT_NAMES = ("left_eye", "right_eye", "nose_tip", "mouth")

Box = Tuple[int, int, int]


def _scaled(v: float, canvas: int) -> int:
    # round half up, so 255/2 -> 128 deterministically
    return int(math.floor(v * canvas / TEMPLATE_CANVAS + 0.5))


def crop_boxes(canvas: int = TEMPLATE_CANVAS, include_remainder: bool = False) -> Dict[str, Box]:
    """The four component boxes scaled to a `canvas` x `canvas` image, as (x, y, size) ints.

    With include_remainder the whole-canvas box is added under the key "" (DeepFaceDrawing's
    name for the remainder component)."""
    if canvas <= 0:
        raise ValueError(f"canvas must be positive, got {canvas}")
    boxes = {k: (_scaled(x, canvas), _scaled(y, canvas), _scaled(s, canvas))
             for k, (x, y, s) in BOXES_512.items()}
    if include_remainder:
        boxes[""] = (0, 0, canvas)
    return boxes


def template_points(canvas: int = TEMPLATE_CANVAS) -> np.ndarray:
    """Template key points on a `canvas` square: float array (4, 2) of (x, y) in POINT_NAMES order.

    Eye centres are the eye boxes' centres. The nose tip and the mouth centre take their
    heights from the nose and mouth boxes' centres, but their x is the midpoint of the eyes:
    a similarity transform cannot bend a symmetric face, so using the boxes' own centres (which
    sit 16-19 px right of the eye midpoint on the 512 canvas) would only tilt every aligned face.
    Both features stay well inside their boxes this way."""
    def centre(key):
        x, y, s = BOXES_512[key]
        return x + s / 2.0, y + s / 2.0

    le, re_ = centre("eye1"), centre("eye2")
    mid_x = (le[0] + re_[0]) / 2.0
    pts = np.array([le, re_, (mid_x, centre("nose")[1]), (mid_x, centre("mouth")[1])],
                   dtype=np.float64)
    return pts * (canvas / TEMPLATE_CANVAS)


def similarity_from_points(src_pts, dst_pts) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation; no reflection)
    mapping src_pts onto dst_pts (Umeyama 1991). Returns a 2x3 float64 matrix M with
    dst ~= M[:, :2] @ src + M[:, 2]."""
    src = np.asarray(src_pts, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst_pts, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError("need the same number (>= 2) of source and destination points")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s_c, d_c = src - mu_s, dst - mu_d
    var_s = (s_c ** 2).sum() / len(src)
    if var_s <= 1e-12:
        raise ValueError("source points are all the same point")
    cov = d_c.T @ s_c / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0  # forbid reflections
    rot = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / var_s
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def alignment_matrix(points, canvas: int = TEMPLATE_CANVAS) -> np.ndarray:
    """Matrix that maps a face with key points `points` (4, 2; POINT_NAMES order) onto the template."""
    return similarity_from_points(points, template_points(canvas))


def transform_points(pts, matrix) -> np.ndarray:
    """Apply a 2x3 affine matrix to points (..., 2)."""
    p = np.asarray(pts, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    return p @ m[:, :2].T + m[:, 2]


def invert_affine(matrix) -> np.ndarray:
    m = np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(m)[:2]


def matrix_scale(matrix) -> float:
    """Uniform scale factor of a similarity matrix."""
    m = np.asarray(matrix, dtype=np.float64)
    return float(math.sqrt(abs(np.linalg.det(m[:, :2]))))


ImageLike = Union[Image.Image, np.ndarray]


def warp(image: ImageLike, matrix, size: Union[int, Tuple[int, int]], fill=0,
         resample=Image.BICUBIC) -> ImageLike:
    """Warp `image` with the 2x3 matrix (source -> destination coordinates) into an output of
    `size` (int for a square, or (width, height)). Pixels from outside the source get `fill`.
    Returns the same kind of object it was given (PIL image or uint8 numpy array)."""
    as_array = isinstance(image, np.ndarray)
    img = Image.fromarray(image) if as_array else image
    w, h = (size, size) if isinstance(size, int) else size
    inv = invert_affine(matrix)  # Pillow wants output -> input coefficients
    coeffs = tuple(float(v) for v in inv.reshape(-1))
    if img.mode in ("RGB", "RGBA") and isinstance(fill, (int, float)):
        fill = (int(fill),) * len(img.mode)
    out = img.transform((w, h), Image.AFFINE, coeffs, resample=resample, fillcolor=fill)
    return np.asarray(out) if as_array else out


def align_face(image: ImageLike, points, canvas: int = 256, fill=0) -> Tuple[ImageLike, np.ndarray]:
    """Align a face given its key points (POINT_NAMES order) to the template on a square canvas.
    Returns (aligned image, matrix used)."""
    m = alignment_matrix(points, canvas)
    return warp(image, m, canvas, fill=fill), m


def head_mask(canvas: int = 256, feather: float = 0.1) -> np.ndarray:
    """(canvas, canvas) float32 in [0, 1]: a soft ellipse around an aligned face with its hair and chin (1 inside).
    The face model learns to draw a plain background outside it (photos' backgrounds are noise to a sketch)."""
    pts = template_points(canvas)
    eye_y, mouth_y = pts[0, 1], pts[3, 1]
    iod = pts[1, 0] - pts[0, 0]
    cx, cy = pts[:2, 0].mean(), (eye_y + mouth_y) / 2 - 0.25 * iod
    ax, ay = 1.55 * iod, 2.3 * iod
    yy, xx = np.mgrid[0:canvas, 0:canvas].astype(np.float64) + 0.5
    r = np.sqrt(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2)
    return np.clip((1 + feather - r) / (2 * feather), 0, 1).astype(np.float32)
