"""Landmarks of FS2K's artist sketches themselves, by registering each sketch onto its photo.

    python -m facesketch.models.data.sketch_register --landmarks ~/.cache/facesketch/landmarks [--fs2k DIR]

models.data.landmarks finds the five landmarks on the *photos*. FS2K's artists drew from their photos, and a
little off them: on average the drawn face sits 2-3 px (at 256) to the side, and each sketch another 3 px either
way (docs/results/face.md). Measured against the photo's landmarks, a locator that finds the drawn eyes exactly
is still 6-7 % of the eye distance "wrong", and trained on them it learns that noise.

So each artist sketch is registered onto a colour-dodge sketch of its photo (models.pencil.dodge_sketch: its
lines lie exactly on the photo) in the face template's frame at 128 px: the similarity transform (scale 0.91-1.09,
rotation +-7 degrees, shift +-12 % of the eye distance) that maximises the normalised cross-correlation of the
two blurred ink images inside an oval over the face (eyes, nose, mouth and cheeks; hair and shoulders are drawn
too freely to help). The photo's landmarks moved through it are the sketch's. Adds to each FS2K item of
`index.json`:

    sketch_points  5 x [x, y] in pixels, or null when the match is too weak (the correlation below MIN_NCC, or
                   the best shift at the edge of the search)
    sketch_fit     {"ncc": best correlation, "photo_ncc": the correlation with no transform, "shift": [dx, dy] at
                   256, "scale", "angle"}

Run it after models.data.landmarks (which rewrites the index); it is a few minutes on a CPU.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
from PIL import Image, ImageFilter

from .face_template import alignment_matrix, template_points, warp
from .fs2k import load_sketch_gray
from .landmarks import key_points, read_index

FRAME = 128                      # the registration's template canvas
# coarse to fine over scale and rotation (the shift is searched whole at each): the grid, then steps around the best
SCALE_GRID, ANGLE_GRID = (0.94, 1.0, 1.06), (-4.0, 0.0, 4.0)
REFINE_STEPS = ((0.02, 2.0), (0.01, 1.0))
MAX_SHIFT_IOD = 0.12
BLUR = 1.5                       # px at FRAME: lines drawn a pixel apart still overlap
MIN_NCC = 0.25


def face_oval(frame: int = FRAME) -> np.ndarray:
    """(frame, frame) weights: 1 over eyes, nose, mouth and cheeks, fading out before the hair line."""
    p = template_points(frame)
    iod = p[1, 0] - p[0, 0]
    cx, cy = (p[0, 0] + p[1, 0]) / 2, (p[0, 1] + p[3, 1]) / 2
    yy, xx = np.mgrid[0:frame, 0:frame] + 0.5
    r = np.sqrt(((xx - cx) / (1.25 * iod)) ** 2 + ((yy - cy) / (1.45 * iod)) ** 2)
    t = np.clip((1.0 - r) / 0.2, 0, 1)
    return (t * t * (3 - 2 * t)).astype(np.float64)


def _ink(gray_u8: np.ndarray) -> np.ndarray:
    img = Image.fromarray(255 - np.asarray(gray_u8, np.uint8))
    return np.asarray(img.filter(ImageFilter.GaussianBlur(BLUR)), np.float64) / 255.0


def _similarity(scale: float, angle_deg: float, centre) -> np.ndarray:
    a = math.radians(angle_deg)
    r = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    m = np.eye(3)
    m[:2, :2] = r
    m[:2, 2] = np.asarray(centre) - r @ np.asarray(centre)
    return m


class Registration:
    """Registers sketches onto reference drawings of the same face, both given in the template frame."""

    def __init__(self, frame: int = FRAME):
        self.frame = frame
        self.w = face_oval(frame)
        p = template_points(frame)
        self.centre = ((p[0, 0] + p[1, 0]) / 2, (p[0, 1] + p[3, 1]) / 2)
        self.max_shift = int(math.ceil(MAX_SHIFT_IOD * (p[1, 0] - p[0, 0])))
        self.n = 2 * frame                                   # zero padding: no wrap-around in the correlations
        self.W = np.fft.rfft2(self.w, (self.n, self.n))

    def _corr(self, a_fft, b):
        """C(t) = sum_x a(x) b(x - t) for shifts |t| <= max_shift, as a (2k+1, 2k+1) array indexed [ty, tx]."""
        c = np.fft.irfft2(a_fft * np.conj(np.fft.rfft2(b, (self.n, self.n))), (self.n, self.n))
        k = self.max_shift
        idx = np.r_[-k:k + 1] % self.n
        return c[np.ix_(idx, idx)]

    def register(self, sketch_in_frame, reference_in_frame) -> dict:
        """sketch_in_frame(M) -> the grey sketch (uint8, frame x frame) warped into the frame and then by the 3x3
        matrix M; reference: grey uint8 (frame, frame). Returns the best matrix A (sketch drawn at A^-1 y where
        the reference has y) and the correlations."""
        d = _ink(reference_in_frame)
        sw = self.w.sum()
        d = d - (self.w * d).sum() / sw
        wd = self.w * d
        d_norm = math.sqrt((self.w * d * d).sum())
        wd_fft = np.fft.rfft2(wd, (self.n, self.n))
        k = self.max_shift
        tried = {}

        def score(s, a):
            key = (round(s, 4), round(a, 3))
            if key not in tried:
                sk = _ink(sketch_in_frame(_similarity(s, a, self.centre)))
                num = self._corr(wd_fft, sk)
                e1 = self._corr(self.W, sk)
                e2 = self._corr(self.W, sk * sk)
                ncc = num / np.sqrt(np.maximum(e2 - e1 * e1 / sw, 1e-9)) / max(d_norm, 1e-9)
                j = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
                tried[key] = (float(ncc[j]), s, a, j, ncc)
            return tried[key]

        best = max((score(s, a) for s in SCALE_GRID for a in ANGLE_GRID), key=lambda b: b[0])
        photo_ncc = float(score(1.0, 0.0)[4][k, k])
        for ds, da in REFINE_STEPS:
            s0, a0 = best[1], best[2]
            best = max((score(s0 + i * ds, a0 + j * da) for i in (-1, 0, 1) for j in (-1, 0, 1)), key=lambda b: b[0])
        ncc_val, s, a, (jy, jx), ncc = best
        # sub-pixel shift: a parabola through the peak and its neighbours, where they exist
        def vertex(lo, mid, hi):
            den = lo - 2 * mid + hi
            return 0.0 if den >= 0 else 0.5 * (lo - hi) / den
        edge = jy in (0, 2 * k) or jx in (0, 2 * k)
        ty = jy - k + (0.0 if edge else vertex(ncc[jy - 1, jx], ncc[jy, jx], ncc[jy + 1, jx]))
        tx = jx - k + (0.0 if edge else vertex(ncc[jy, jx - 1], ncc[jy, jx], ncc[jy, jx + 1]))
        # C(t) = sum_x wd(x) sk(x - t): the sketch moved by +t matches the reference
        A = np.eye(3)
        A[:2, 2] = (tx, ty)
        A = A @ _similarity(s, a, self.centre)
        return {"matrix": A, "ncc": ncc_val, "photo_ncc": photo_ncc, "edge": bool(edge),
                "shift": (tx, ty), "scale": float(s), "angle": float(a)}


def register_item(reg: Registration, sketch_gray: np.ndarray, reference_gray: np.ndarray, points: np.ndarray):
    """Sketch and reference (grey uint8, the photo's frame), the reference's landmarks (5, 2) -> (the sketch's
    landmarks (5, 2) or None, fit)."""
    a5 = np.vstack([alignment_matrix(key_points(points), reg.frame), [0, 0, 1]])
    ref = warp(reference_gray, a5[:2], reg.frame, fill=255)
    fit = reg.register(lambda m: warp(sketch_gray, (m @ a5)[:2], reg.frame, fill=255), ref)
    # the reference's point y (frame) is drawn at A^-1 y in the sketch: back into the photo's pixels
    back = np.linalg.inv(a5) @ np.linalg.inv(fit["matrix"]) @ a5
    pts = np.asarray(points, np.float64) @ back[:2, :2].T + back[:2, 2]
    f = 256 / reg.frame
    info = {"ncc": round(fit["ncc"], 4), "photo_ncc": round(fit["photo_ncc"], 4),
            "shift": [round(fit["shift"][0] * f, 2), round(fit["shift"][1] * f, 2)],
            "scale": round(fit["scale"], 3), "angle": round(fit["angle"], 1)}
    ok = fit["ncc"] >= MIN_NCC and not fit["edge"]
    return (pts if ok else None), info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--landmarks", required=True, help="models.data.landmarks output folder (index.json is updated)")
    ap.add_argument("--fs2k", help="FS2K folder, when not where the landmarks were made")
    ap.add_argument("--limit", type=int, default=None, help="only the first N sketches (a quick check; not saved)")
    args = ap.parse_args(argv)
    from tqdm import tqdm

    from ..pencil import dodge_sketch
    index = read_index(args.landmarks, {"fs2k": args.fs2k})
    root = index["roots"]["fs2k"]
    items = [it for it in index["items"] if it["dataset"] == "fs2k" and it["points"] and it["sketch"]]
    items = items[:args.limit]
    reg = Registration()
    t0, kept, shifts = time.time(), 0, []
    for it in tqdm(items, desc="registering sketches", unit="sketch"):
        with Image.open(os.path.join(root, it["photo"])) as im:
            reference = dodge_sketch(np.asarray(im.convert("RGB")))
        sketch = np.asarray(load_sketch_gray(os.path.join(root, it["sketch"])))
        if sketch.shape != reference.shape:   # a few FS2K sketches are a pixel off their photo's size
            sketch = np.asarray(Image.fromarray(sketch).resize(reference.shape[::-1], Image.BICUBIC))
        pts, info = register_item(reg, sketch, reference, np.array(it["points"], np.float64))
        it["sketch_points"] = None if pts is None else np.round(pts, 2).tolist()
        it["sketch_fit"] = info
        kept += pts is not None
        shifts.append(info["shift"])
    sh = np.array(shifts)
    print(f"{kept} of {len(items)} sketches registered; shift at 256 mean {sh.mean(0).round(2).tolist()}, "
          f"sd {sh.std(0).round(2).tolist()}; {time.time() - t0:.0f} s")
    if args.limit:
        return 0
    index["stats"]["sketches_registered"] = kept
    path = os.path.join(args.landmarks, "index.json")
    with open(path + ".tmp", "w") as f:
        json.dump(index, f, separators=(",", ":"))
    os.replace(path + ".tmp", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
