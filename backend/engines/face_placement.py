"""Where the drawn face is, and how the generated face goes back there (the face engine's `align=auto`).

The sketch face locator (models.locator) finds the face and its landmarks on a downscaled copy of the
layer; a similarity transform takes the face into the model's template canvas (models.data.face_template,
the frame the model was trained in), and the generated face is warped back and composited into a layer of
the input's size through a feathered oval, so that the rest of the layer is untouched.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .base import EngineError, weights_path

LOCATOR_WEIGHTS = "locator.safetensors"
LOCATE_SIDE = 512      # the locator works on a copy at most this big: enough for a face a quarter of the frame
NO_FACE_MESSAGE = ("no face was found in this layer. Draw a face as a line drawing: two eyes, a nose and a mouth "
                   "inside a head outline, dark lines on a light background (the face at least about a tenth "
                   "of the layer's width), or use align 'template' to place the face yourself on the template")


@dataclass
class Placement:
    matrix: np.ndarray      # 2x3, layer pixels -> template canvas pixels
    points: np.ndarray      # (5, 2) landmarks in layer pixels
    box: tuple              # (x, y, w, h) of the face in layer pixels
    score: float
    faces: int              # how many faces the locator found


class LocatorCache:
    """The locator's weights, loaded once per (path, mtime, device)."""

    def __init__(self, path: str | None = None):
        self._path = path  # None: the weights folder's (models.paths.weights_path)
        self._lock = threading.Lock()
        self._loaded = None

    def path(self) -> str:
        return self._path or weights_path(LOCATOR_WEIGHTS)

    def ready(self) -> tuple[bool, str]:
        if not os.path.isfile(self.path()):
            return False, (f"the sketch face locator has no trained weights ({self.path()} is missing); train them "
                           "with 'python -m facesketch.models.train locator --export', or use align 'template'")
        return True, ""

    def get(self, device: str):
        ok, why = self.ready()
        if not ok:
            raise EngineError("not_ready", why)
        path = self.path()
        key = (path, os.path.getmtime(path), device)
        with self._lock:
            if self._loaded is None or self._loaded[0] != key:
                from facesketch.models.locator import load
                try:
                    self._loaded = (key, load(path, device))
                except Exception as e:
                    raise EngineError("not_ready", f"the locator weights at {path} cannot be read ({e})") from e
            return self._loaded[1]


def downscaled(gray: np.ndarray, side: int = LOCATE_SIDE) -> tuple[np.ndarray, float]:
    """(H, W) float32 grey -> (copy at most `side` px on its longer edge, scale factor copy/layer)."""
    h, w = gray.shape
    k = max(h, w) / side
    if k <= 1:
        return gray, 1.0
    r = int(k)
    if r >= 2:  # box-average by the whole factor first (keeps thin lines; torch's pooling is the fastest here)
        import torch
        import torch.nn.functional as F
        g = torch.from_numpy(np.ascontiguousarray(gray[: h // r * r, : w // r * r], np.float32))
        gray = F.avg_pool2d(g[None, None], r)[0, 0].numpy()
    img = Image.fromarray(np.ascontiguousarray(gray, np.float32), "F")
    nw, nh = max(1, round(w / k)), max(1, round(h / k))
    img = img.resize((nw, nh), Image.BILINEAR)
    return np.asarray(img, np.float32), nw / w


def locate(gray: np.ndarray, locator, canvas: int) -> Placement:
    """Find the largest drawn face in a grey layer (1 = paper) and its transform into the template canvas.
    Raises EngineError('no_face') when there is none."""
    from facesketch.models.data.face_template import alignment_matrix
    from facesketch.models.data.landmarks import key_points
    from facesketch.models.locator import ink_from_gray
    small, s = downscaled(gray)
    faces = locator.find(ink_from_gray(small))
    if not faces:
        raise EngineError("no_face", NO_FACE_MESSAGE)
    face = faces[0]
    points = face.points / s
    x, y, w, h = (v / s for v in face.box)
    return Placement(matrix=alignment_matrix(key_points(points), canvas), points=points, box=(x, y, w, h),
                     score=face.score, faces=len(faces))


def to_canvas(gray: np.ndarray, matrix: np.ndarray, canvas: int) -> np.ndarray:
    """The layer's grey (1 = paper) warped into the template canvas; outside the layer is paper."""
    from facesketch.models.locator import warp_ink
    return 1.0 - warp_ink(1.0 - gray, matrix, canvas)


def face_mask(canvas: int, feather: float = 0.12) -> np.ndarray:
    """(S, S) float32 in [0, 1]: an oval over face, hair and chin in the template canvas, fading out over the
    outer `feather` of its radius (so the face merges into the drawing around it)."""
    from facesketch.models.data.face_template import template_points
    pts = template_points(canvas)
    iod = pts[1, 0] - pts[0, 0]
    cx = (pts[0, 0] + pts[1, 0]) / 2
    cy = pts[0, 1] + 0.35 * iod           # between the eyes and the mouth, a little high: the hair
    rx, ry = 1.45 * iod, 1.75 * iod
    yy, xx = np.mgrid[0:canvas, 0:canvas] + 0.5
    r = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
    t = np.clip((1.0 - r) / feather, 0.0, 1.0)
    return (t * t * (3 - 2 * t)).astype(np.float32)   # smoothstep


def to_layer(img: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(S, S, C) float in [0, 1] in the canvas -> (H, W, C) float32 in the layer (size = (H, W)); outside 0."""
    H, W = size
    coeffs = tuple(float(v) for v in np.asarray(matrix, np.float64).reshape(-1))  # Pillow wants layer -> canvas
    chans = []
    for c in range(img.shape[2]):
        ch = Image.fromarray(np.ascontiguousarray(img[..., c], np.float32), "F")
        chans.append(np.asarray(ch.transform((W, H), Image.AFFINE, coeffs, resample=Image.BICUBIC,
                                             fillcolor=0.0), np.float32))
    return np.clip(np.stack(chans, axis=2), 0, 1)


def paper_tone(gray: np.ndarray) -> float:
    small, _ = downscaled(gray, 256)
    return float(np.percentile(small, 90))


def describe(p: Placement) -> str:
    x, y, w, h = p.box
    where = f"the face at x {max(0, round(x))}, y {max(0, round(y))}, {round(w)} x {round(h)} pixels"
    if p.faces > 1:
        return f"found {p.faces} faces in the layer and drew the largest: {where}"
    return f"drew {where}"

