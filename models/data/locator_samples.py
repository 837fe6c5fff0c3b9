"""Training and evaluation samples for the sketch face locator (models.locator).

A sample is a 128x128 ink image (0 = paper) made the way a user's layer reaches the locator: a sketch of a
face (an FS2K artist's, or one made from a photo: models.data.made_sketches) placed at a random scale,
position, rotation and mirror image on paper of some tone and grain, with extra strokes (shoulders,
background), thicker or thinner lines, parts left undrawn, sometimes a second face, and the same paper
preprocessing as at run time (models.locator.ink_from_gray). Negatives (no face) are random strokes,
scribbles, shapes, text and hatching, and pieces of sketches away from the face.

Two framings, as the locator's two passes see them: `find` (the face 0.15-1.2 of the frame wide, anywhere) and
`refine` (the face framed by models.locator.crop_matrix, with noise in position, scale and angle).
Numpy + Pillow; the targets are built by `targets` in torch for a batch.
"""
from __future__ import annotations

import math
import os
import zlib

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .. import locator as L
from .landmarks import read_index

FLIP_ORDER = L.FLIP_ORDER
# face width is about 2.3 inter-ocular distances (eye centres to cheek contours, FS2K and CelebA meshes)
FACE_WIDTH_IOD = 2.3


def _load_ink(path: str) -> np.ndarray:
    with Image.open(path) as im:
        g = np.asarray(im.convert("L"), np.float32) / 255.0
    return L.ink_from_gray(g)


class Sources:
    """The sketches of one split: (path, points (5, 2)) per sketch, with the kind it is."""

    def __init__(self, landmarks_dir: str, made_dir: str | None, split: str, kinds=None, roots=None,
                 datasets=("fs2k", "celeba"), artist_weight: float = 1.0, artist_points: str = "sketch"):
        index = read_index(landmarks_dir, roots)
        self.entries: list[tuple[str, np.ndarray, str, str]] = []   # path, points, kind, dataset
        for it in index["items"]:
            if it["split"] != split or it["points"] is None or it["dataset"] not in datasets:
                continue
            pts = np.array(it["points"], np.float64)
            if it["sketch"] and (kinds is None or "artist" in kinds):
                # the sketch's own landmarks (models.data.sketch_register) where it was matched to its photo
                own = it.get("sketch_points") if artist_points == "sketch" else None
                self.entries.append((os.path.join(index["roots"][it["dataset"]], it["sketch"]),
                                     np.array(own, np.float64) if own else pts, "artist", it["dataset"]))
            if made_dir:
                for kind in sorted(os.listdir(made_dir)):
                    if kind == "scenes" or (kinds is not None and kind not in kinds):
                        continue
                    p = os.path.join(made_dir, kind, it["id"] + ".webp")
                    if os.path.isfile(p):
                        self.entries.append((p, pts, kind, it["dataset"]))
        # pictures without faces (models.data.made_sketches --scenes), for negatives
        scenes = os.path.join(made_dir, "scenes") if made_dir else None
        self.scenes = sorted(os.path.join(scenes, n) for n in os.listdir(scenes)) \
            if scenes and os.path.isdir(scenes) and split == "train" else []
        if not self.entries:
            raise ValueError(f"no sketches for split {split!r} in {landmarks_dir} / {made_dir}")
        # sampling weights: each (dataset, kind) group gets an equal share, so the many CelebA sketches do
        # not drown FS2K's artists; `artist_weight` multiplies the artists' share (their lines sit a little off
        # the photo's landmarks, in ways worth learning)
        groups = {}
        for i, e in enumerate(self.entries):
            groups.setdefault((e[3], e[2]), []).append(i)
        w = np.zeros(len(self.entries))
        for (ds, kind), idx in groups.items():
            w[idx] = (artist_weight if kind == "artist" else 1.0) / len(idx)
        self.weights = w / w.sum()
        self.groups = {f"{d}/{k}": len(v) for (d, k), v in sorted(groups.items())}

    def __len__(self):
        return len(self.entries)


# -- drawing helpers --------------------------------------------------------------------------------------

def _bezier(draw, rng, size, width, value, n_points=4, spread=None):
    spread = spread or size
    p0 = rng.uniform(-0.1, 1.1, 2) * size
    pts = [p0 + rng.normal(0, spread / 3, 2) for _ in range(n_points)]
    pts[0] = p0
    out = []
    for t in np.linspace(0, 1, 24):  # de Casteljau
        c = np.array(pts)
        while len(c) > 1:
            c = (1 - t) * c[:-1] + t * c[1:]
        out.append(tuple(c[0]))
    draw.line(out, fill=float(value), width=int(width), joint="curve")


def extra_strokes(ink: np.ndarray, rng, n: int) -> np.ndarray:
    """Background and shoulder strokes: n smooth curves over the picture."""
    size = ink.shape[0]
    layer = Image.new("F", (size, size), 0.0)
    d = ImageDraw.Draw(layer)
    for _ in range(n):
        _bezier(d, rng, size, rng.integers(1, 4), rng.uniform(0.3, 1.0), n_points=int(rng.integers(2, 5)))
    return np.maximum(ink, np.asarray(layer, np.float32))


def negative(rng, size=L.INPUT, pieces: list | None = None, scenes: list | None = None) -> np.ndarray:
    """A picture with no face in it."""
    layer = Image.new("F", (size, size), 0.0)
    d = ImageDraw.Draw(layer)
    kinds = {"scribble": 0.3, "shapes": 0.2, "text": 0.2, "hatching": 0.1}
    if pieces:
        kinds["piece"] = 0.2
    if scenes:
        kinds["scene"] = 0.4
    names = list(kinds)
    p = np.array([kinds[k] for k in names])
    kind = names[int(rng.choice(len(names), p=p / p.sum()))]
    if kind == "scribble":
        for _ in range(int(rng.integers(3, 40))):
            _bezier(d, rng, size, rng.integers(1, 4), rng.uniform(0.3, 1.0), n_points=int(rng.integers(2, 6)),
                    spread=size * rng.uniform(0.1, 0.6))
    elif kind == "shapes":
        for _ in range(int(rng.integers(2, 14))):
            x0, y0 = rng.uniform(-0.1, 0.9, 2) * size
            w, h = rng.uniform(0.05, 0.6, 2) * size
            box = [x0, y0, x0 + w, y0 + h]
            v, width = float(rng.uniform(0.4, 1.0)), int(rng.integers(1, 4))
            r = rng.random()
            if r < 0.4:
                d.ellipse(box, outline=v, width=width)   # circles: eyes and heads are round too
            elif r < 0.7:
                d.rectangle(box, outline=v, width=width)
            else:
                d.line(box, fill=v, width=width)
    elif kind == "text":
        for _ in range(int(rng.integers(1, 8))):
            font = ImageFont.load_default(size=int(rng.integers(8, 40)))
            letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,!?oOeE"
            text = "".join(rng.choice(list(letters), int(rng.integers(3, 20))))
            d.text(tuple(rng.uniform(-0.1, 0.9, 2) * size), text, fill=float(rng.uniform(0.5, 1.0)), font=font)
    elif kind == "hatching":
        angle = rng.uniform(0, math.pi)
        gap = rng.uniform(3, 10)
        for k in range(-size, 2 * size, max(2, int(gap))):
            c, s = math.cos(angle), math.sin(angle)
            p = np.array([size / 2, size / 2]) + (k - size / 2) * np.array([-s, c])
            if rng.random() < 0.7:
                d.line([tuple(p - 2 * size * np.array([c, s])), tuple(p + 2 * size * np.array([c, s]))],
                       fill=float(rng.uniform(0.2, 0.8)), width=1)
    ink = np.asarray(layer, np.float32)
    if kind == "scene":  # a piece of a sketched picture without faces, at any scale and angle
        src = _load_ink(scenes[int(rng.integers(len(scenes)))])
        h, w = src.shape
        side = rng.uniform(0.15, 1.0) * min(h, w)
        c = np.array([rng.uniform(side / 2, w - side / 2), rng.uniform(side / 2, h - side / 2)])
        a = math.radians(rng.uniform(-30, 30))
        s = size / side
        m = np.array([[s * math.cos(a), -s * math.sin(a), 0.0], [s * math.sin(a), s * math.cos(a), 0.0]])
        m[:, 2] = np.array([size / 2, size / 2]) - m[:, :2] @ c
        ink = L.warp_ink(src, m, size)
    if kind == "piece":
        path, pts = pieces[int(rng.integers(len(pieces)))]
        src = _load_ink(path)
        h, w = src.shape
        # a square well away from the face: below the chin or beside the head
        iod = np.hypot(*(pts[1] - pts[0]))
        for _ in range(10):
            side = rng.uniform(0.8, 2.0) * iod
            x0, y0 = rng.uniform(0, max(1, w - side)), rng.uniform(0, max(1, h - side))
            centre = np.array([x0 + side / 2, y0 + side / 2])
            if np.linalg.norm(centre - pts.mean(0)) > side / 2 + 1.6 * iod:
                m = np.array([[size / side, 0, -x0 * size / side], [0, size / side, -y0 * size / side]])
                ink = np.maximum(ink, L.warp_ink(src, m, size))
                break
    return ink


# -- one sample ---------------------------------------------------------------------------------------------

def placement(rng, pts: np.ndarray, framing: str, size=L.INPUT) -> np.ndarray:
    """2x3 matrix from the sketch's pixels into the sample canvas for one face."""
    iod = float(np.hypot(*(pts[1] - pts[0])))
    centre = pts.mean(0)
    angle = math.radians(rng.uniform(-25, 25))
    if framing == "refine":
        # as the locator's own crop, with the error of a previous pass
        m = L.crop_matrix(pts)
        jitter_s = math.exp(rng.normal(0, 0.12))
        jitter_a = math.radians(rng.normal(0, 6)) + (angle if rng.random() < 0.3 else 0.0)
        shift = rng.normal(0, 0.12 * L.CROP_IOD, 2)
        c = np.array([size / 2, L.CROP_EYES_Y])
        r = np.array([[math.cos(jitter_a), -math.sin(jitter_a)], [math.sin(jitter_a), math.cos(jitter_a)]])
        m2 = np.zeros((2, 3))
        m2[:, :2] = jitter_s * r
        m2[:, 2] = c - m2[:, :2] @ c + shift
        return np.vstack([m2, [0, 0, 1]])[:2] @ np.vstack([m, [0, 0, 1]])
    frac = rng.uniform(0.15, 1.2)               # face width over the frame (eval: 0.3-1.0)
    scale = frac * size / (FACE_WIDTH_IOD * iod)
    target = rng.uniform(0.5 - 0.4 * (1.2 - frac) / 1.05, 0.5 + 0.4 * (1.2 - frac) / 1.05, 2) * size
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    m = np.array([[c, -s, 0.0], [s, c, 0.0]])
    m[:, 2] = target - m[:, :2] @ centre
    return m


def _flip(pts: np.ndarray, w: float) -> np.ndarray:
    p = pts.copy()
    p[:, 0] = w - p[:, 0]
    return p[FLIP_ORDER]


def _shifts(a: np.ndarray):
    p = np.pad(a, 1, mode="edge")
    h, w = a.shape
    return [p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]


def _soften(a: np.ndarray, times: int = 1) -> np.ndarray:
    """[1 2 1] / 4 separable blur, `times` over."""
    for _ in range(times):
        p = np.pad(a, 1, mode="edge")
        a = (p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]) / 4
        a = (a[:-2] + 2 * a[1:-1] + a[2:]) / 4
    return a.astype(np.float32)


def _line_weight(ink: np.ndarray, rng) -> np.ndarray:
    r = rng.random()
    if r < 0.2:
        ink = np.max(_shifts(ink), axis=0)        # a heavier pen
    elif r < 0.3 and ink.mean() > 0.02:
        ink = np.min(_shifts(ink), axis=0)        # a finer one (thin lines may vanish: they do at small sizes)
    elif r < 0.45:
        ink = _soften(ink, int(rng.integers(1, 3)))  # soft pencil, a blurry scan
    return np.clip(ink ** rng.uniform(0.6, 1.8) * rng.uniform(0.5, 1.0), 0, 1).astype(np.float32)


def _erase_parts(ink: np.ndarray, pts_canvas: np.ndarray, rng) -> np.ndarray:
    """Leave a part undrawn: blank a disc over one landmark or a band across the face."""
    out = ink.copy()
    size = ink.shape[0]
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    iod = float(np.hypot(*(pts_canvas[1] - pts_canvas[0])))
    for _ in range(int(rng.integers(1, 3))):
        if rng.random() < 0.7:
            c = pts_canvas[int(rng.integers(5))] + rng.normal(0, 0.2 * iod, 2)
            r = rng.uniform(0.2, 0.5) * iod
            out[(xx - c[0]) ** 2 + (yy - c[1]) ** 2 < r * r] = 0
        else:
            # the face outline, hair or one side: everything beyond a random line
            c = pts_canvas.mean(0)
            a = rng.uniform(0, 2 * math.pi)
            n = np.array([math.cos(a), math.sin(a)])
            out[((xx - c[0]) * n[0] + (yy - c[1]) * n[1]) > rng.uniform(1.0, 1.6) * iod] = 0
    return out


def paper(ink: np.ndarray, rng) -> np.ndarray:
    """Ink on paper as the user's layer: a grey image (1 = white paper), then the run-time preprocessing."""
    size = ink.shape[0]
    tone = rng.uniform(0.75, 1.0) if rng.random() < 0.4 else 1.0
    g = np.full((size, size), tone, np.float32)
    if rng.random() < 0.3:  # a smooth gradient (scanned paper, uneven light)
        yy, xx = np.mgrid[0:size, 0:size] / size
        a = rng.uniform(-0.15, 0.15, 2)
        g = g + a[0] * (xx - 0.5) + a[1] * (yy - 0.5)
    dark = rng.uniform(0.0, 0.35)
    g = g - ink * (g - dark)
    if rng.random() < 0.4:
        g = g + rng.normal(0, rng.uniform(0.01, 0.06), g.shape).astype(np.float32)
    if rng.random() < 0.2:  # a JPEG-ish softness
        g = _soften(g)
    return L.ink_from_gray(np.clip(g, 0, 1))


class Sampler:
    """Random samples (ink (128, 128) float32, faces: list of (5, 2) landmarks in canvas pixels)."""

    def __init__(self, sources: Sources, seed=0, negatives=0.2, refine=0.5, second_face=0.08, extra=0.5,
                 erase=0.15):
        self.sources = sources
        self.rng = np.random.default_rng(seed)
        self.p_neg, self.p_refine, self.p_two, self.p_extra, self.p_erase = negatives, refine, second_face, extra, erase
        self.pieces = [(p, pts) for p, pts, kind, ds in sources.entries[::7] if ds == "fs2k"]

    def _pick(self):
        i = int(self.rng.choice(len(self.sources.entries), p=self.sources.weights))
        path, pts, kind, ds = self.sources.entries[i]
        return _load_ink(path), pts.copy()

    def _place(self, framing):
        ink, pts = self._pick()
        if self.rng.random() < 0.5:
            ink = ink[:, ::-1].copy()
            pts = _flip(pts, ink.shape[1])
        m = placement(self.rng, pts, framing)
        return L.warp_ink(ink, m), L.apply(m, pts)

    def sample(self):
        rng = self.rng
        if rng.random() < self.p_neg:
            ink, faces = negative(rng, pieces=self.pieces, scenes=self.sources.scenes), []
        else:
            framing = "refine" if rng.random() < self.p_refine else "find"
            ink, pts = self._place(framing)
            faces = [pts]
            if framing == "find" and rng.random() < self.p_two:
                ink2, pts2 = self._place("find")
                ink, faces = np.maximum(ink, ink2), [pts, pts2]
            ink = _line_weight(ink, rng)
            if rng.random() < self.p_erase:
                ink = _erase_parts(ink, faces[0], rng)
        if rng.random() < self.p_extra:
            ink = extra_strokes(ink, rng, int(rng.integers(1, 8)))
        return paper(ink, rng), faces


# -- targets ------------------------------------------------------------------------------------------------

def targets(faces_batch: list[list[np.ndarray]]):
    """Per sample's faces -> dict of torch tensors: heat (N, 1 + 5, G, G) Gaussian targets, and the
    regression targets with their cells: centre/size/offsets at the face centres, offsets at the landmarks."""
    import torch
    n, g = len(faces_batch), L.GRID
    heat = np.zeros((n, 1 + L.N_POINTS, g, g), np.float32)
    reg_idx, reg_val = [], []      # (sample, channel, y, x) -> value
    cy, cx = np.mgrid[0:g, 0:g] + 0.5
    for b, faces in enumerate(faces_batch):
        for pts in faces:
            iod_cells = float(np.hypot(*(pts[1] - pts[0]))) / L.STRIDE
            centre = pts.mean(0) / L.STRIDE
            s_c = max(0.7, 0.35 * iod_cells)
            s_p = max(0.6, min(1.2, 0.12 * iod_cells))
            heat[b, 0] = np.maximum(heat[b, 0], np.exp(-((cx - centre[0]) ** 2 + (cy - centre[1]) ** 2) / (2 * s_c ** 2)))
            ix, iy = int(math.floor(centre[0])), int(math.floor(centre[1]))
            if 0 <= ix < g and 0 <= iy < g:
                reg_idx += [(b, L.CH_SIZE, iy, ix), (b, 2, iy, ix), (b, 3, iy, ix)]
                reg_val += [math.log(max(iod_cells * L.STRIDE, 1.0) / L.SIZE_REF), centre[0] - ix, centre[1] - iy]
            for j, p in enumerate(pts / L.STRIDE):
                heat[b, 1 + j] = np.maximum(heat[b, 1 + j],
                                            np.exp(-((cx - p[0]) ** 2 + (cy - p[1]) ** 2) / (2 * s_p ** 2)))
                px, py = int(math.floor(p[0])), int(math.floor(p[1]))
                if 0 <= px < g and 0 <= py < g:
                    off = L.CH_OFF.start + 2 * j
                    reg_idx += [(b, off, py, px), (b, off + 1, py, px)]
                    reg_val += [p[0] - px, p[1] - py]
    for b in range(n):  # exact peaks: the cell holding each point is 1 (the focal loss's positives)
        for faces in [faces_batch[b]]:
            for pts in faces:
                for ch, p in [(0, pts.mean(0))] + [(1 + j, q) for j, q in enumerate(pts)]:
                    px, py = int(math.floor(p[0] / L.STRIDE)), int(math.floor(p[1] / L.STRIDE))
                    if 0 <= px < g and 0 <= py < g:
                        heat[b, ch, py, px] = 1.0
    idx = torch.tensor(reg_idx, dtype=torch.long).reshape(-1, 4)
    return {"heat": torch.from_numpy(heat), "reg_idx": idx, "reg_val": torch.tensor(reg_val, dtype=torch.float32)}


def item_seed(item_id: str, k: int = 0) -> int:
    return zlib.crc32(f"{item_id}:{k}".encode())
