"""The sketch face locator: where a drawn face is, and its five landmarks, at any scale, position and rotation.

A small fully convolutional network (CenterNet-style heatmaps at stride 4 on a 128x128 grey input) with
two uses of the same weights:

1. **find**: the whole picture, fitted into 128x128 on white paper. A face-centre heatmap (a peak per
   face) and, at each peak, the face's size (the inter-ocular distance) say where faces are and how big.
2. **refine**: for the chosen face, a 128x128 crop framed around it (the eyes 40 px apart), run again;
   five landmark heatmaps with sub-cell offsets give eye centres, nose tip and mouth corners. A second
   refine pass, in a crop rotated by the first one's landmarks, makes tilted faces upright.

The face score of the last refine pass says whether there is a face at all (random strokes, a drawn cat or
text score low). Weights: `models/weights/locator.safetensors` (fp16, trained by `models.train locator`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

INPUT = 128
STRIDE = 4
GRID = INPUT // STRIDE
N_POINTS = 5  # models.data.landmarks.POINT_NAMES: left eye, right eye, nose tip, mouth left, mouth right
FLIP_ORDER = [1, 0, 2, 4, 3]  # in a mirror image, left and right swap
# channels of the head: centre heatmap, log size, centre offset (2), landmark heatmaps (5), landmark offsets (10)
CH_CENTRE, CH_SIZE, CH_COFF = 0, 1, slice(2, 4)
CH_HEAT = slice(4, 4 + N_POINTS)
CH_OFF = slice(4 + N_POINTS, 4 + 3 * N_POINTS)
N_OUT = 4 + 3 * N_POINTS
# refine framing: the inter-ocular distance in the 128 crop, and where the eyes' midpoint sits
CROP_IOD = 40.0
CROP_EYES_Y = 52.0
SIZE_REF = 32.0  # log-size target: log(IOD in input pixels / SIZE_REF)
# a second face is reported (and the largest drawn) only when it scores at least this share of the best one:
# busy drawings (a space suit, a collar) give weaker, larger candidates that must not win by size
RELATIVE_SCORE = 0.75


def conv_bn(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SketchFaceLocator(nn.Module):
    """(N, 1, 128, 128) ink in [0, 1] (0 = paper) -> (N, N_OUT, 32, 32) raw head outputs."""

    def __init__(self, widths=(16, 24, 48, 64, 96), head=32):
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        self.stem = conv_bn(1, w0, 2)                                   # 64
        self.s1 = nn.Sequential(conv_bn(w0, w1, 2), conv_bn(w1, w1))    # 32
        self.s2 = nn.Sequential(conv_bn(w1, w2, 2), conv_bn(w2, w2))    # 16
        self.s3 = nn.Sequential(conv_bn(w2, w3, 2), conv_bn(w3, w3))    # 8
        self.s4 = nn.Sequential(conv_bn(w3, w4, 2), conv_bn(w4, w4))    # 4: sees the whole picture
        self.lat3, self.lat2, self.lat1 = nn.Conv2d(w3, head, 1), nn.Conv2d(w2, head, 1), nn.Conv2d(w1, head, 1)
        self.top = nn.Conv2d(w4, head, 1)
        self.smooth = nn.Sequential(conv_bn(head, head), conv_bn(head, head))
        self.out = nn.Conv2d(head, N_OUT, 1)
        nn.init.constant_(self.out.bias, 0.0)
        with torch.no_grad():  # heatmaps start near 0.01 (CenterNet's prior), so early losses are sane
            self.out.bias[CH_CENTRE] = -4.6
            self.out.bias[CH_HEAT] = -4.6

    def forward(self, x):
        c1 = self.s1(self.stem(x))
        c2 = self.s2(c1)
        c3 = self.s3(c2)
        c4 = self.s4(c3)
        p = self.top(c4)
        p = F.interpolate(p, scale_factor=2, mode="nearest") + self.lat3(c3)
        p = F.interpolate(p, scale_factor=2, mode="nearest") + self.lat2(c2)
        p = F.interpolate(p, scale_factor=2, mode="nearest") + self.lat1(c1)
        return self.out(self.smooth(p))


# -- geometry ---------------------------------------------------------------------------------------------

def crop_matrix(points5: np.ndarray | None, centre=None, iod=None) -> np.ndarray:
    """2x3 similarity mapping picture coordinates into the refine crop: from landmarks (eyes level, IOD
    CROP_IOD) or, without them, from a face centre and inter-ocular distance (no rotation)."""
    if points5 is not None:
        le, re_ = points5[0], points5[1]
        angle = math.atan2(re_[1] - le[1], re_[0] - le[0])
        iod = float(np.hypot(*(re_ - le)))
        mid = (le + re_) / 2
        # the eyes' midpoint goes to (64, CROP_EYES_Y)
        s = CROP_IOD / max(iod, 1e-3)
        c, sn = math.cos(-angle) * s, math.sin(-angle) * s
        m = np.array([[c, -sn, 0.0], [sn, c, 0.0]])
        m[:, 2] = np.array([INPUT / 2, CROP_EYES_Y]) - m[:, :2] @ mid
        return m
    s = CROP_IOD / max(float(iod), 1e-3)
    m = np.array([[s, 0.0, 0.0], [0.0, s, 0.0]])
    # the face centre (mean of the five landmarks) sits lower than the eyes' midpoint by about 0.55 IOD
    m[:, 2] = np.array([INPUT / 2, CROP_EYES_Y + 0.55 * CROP_IOD]) - s * np.asarray(centre, np.float64)
    return m


def face_centre(points5: np.ndarray) -> np.ndarray:
    return np.asarray(points5, np.float64).mean(-2)


def fit_matrix(w: int, h: int) -> np.ndarray:
    """Picture -> the find pass's 128 input: aspect kept, centred."""
    s = INPUT / max(w, h)
    return np.array([[s, 0.0, (INPUT - w * s) / 2], [0.0, s, (INPUT - h * s) / 2]])


def warp_ink(ink: np.ndarray, matrix: np.ndarray, size: int = INPUT) -> np.ndarray:
    """Ink image (H, W) float32 in [0, 1] -> (size, size) through a 2x3 matrix (picture -> output); outside = 0.

    When the matrix shrinks the picture a lot, it is box-filtered down first, so thin lines survive."""
    from PIL import Image
    m = np.asarray(matrix, np.float64)
    scale = math.sqrt(abs(np.linalg.det(m[:, :2])))
    img = Image.fromarray(np.ascontiguousarray(ink, np.float32), "F")
    if scale < 0.5:
        k = max(1, int(1 / scale / 1.5))
        if k > 1:
            img = img.reduce(k)
            m = m @ np.array([[k, 0, 0], [0, k, 0], [0, 0, 1.0]])   # (2x3): reduced pixels -> output
    full = np.vstack([m, [0, 0, 1.0]])
    inv = np.linalg.inv(full)[:2]
    out = img.transform((size, size), Image.AFFINE, tuple(inv.reshape(-1)), resample=Image.BILINEAR, fillcolor=0.0)
    return np.asarray(out, np.float32)


def apply(matrix, pts) -> np.ndarray:
    m = np.asarray(matrix, np.float64)
    return np.asarray(pts, np.float64) @ m[:, :2].T + m[:, 2]


def invert(matrix) -> np.ndarray:
    return np.linalg.inv(np.vstack([np.asarray(matrix, np.float64), [0, 0, 1.0]]))[:2]


# -- decoding ---------------------------------------------------------------------------------------------

@dataclass
class Face:
    points: np.ndarray          # (5, 2) landmarks in picture pixels
    score: float                # face score of the last refine pass, 0..1
    box: tuple = ()             # (x, y, w, h) around the face in picture pixels
    candidates: int = 1         # faces found by the find pass (above the threshold)
    extra: dict = field(default_factory=dict)

    @property
    def iod(self) -> float:
        return float(np.hypot(*(self.points[1] - self.points[0])))


def _peaks(heat: torch.Tensor, threshold: float, k: int = 8):
    """Local maxima (3x3) of a (H, W) heatmap above threshold: list of (score, y, x), best first."""
    hm = heat[None, None]
    keep = (F.max_pool2d(hm, 3, 1, 1) == hm)[0, 0] & (heat >= threshold)
    ys, xs = torch.nonzero(keep, as_tuple=True)
    scores = heat[ys, xs]
    order = torch.argsort(scores, descending=True)[:k]
    return [(float(scores[i]), int(ys[i]), int(xs[i])) for i in order]


def decode_points(out: torch.Tensor, near=None, radius: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N_OUT, G, G) head output -> ((5, 2) points in input pixels, (5,) peak scores). With `near` (x, y in input
    pixels) and `radius`, each landmark's peak is looked for only within that distance (one face of several)."""
    heat = torch.sigmoid(out[CH_HEAT])
    if near is not None:
        yy, xx = torch.meshgrid(torch.arange(GRID), torch.arange(GRID), indexing="ij")
        d2 = ((xx + 0.5) * STRIDE - near[0]) ** 2 + ((yy + 0.5) * STRIDE - near[1]) ** 2
        heat = heat * (d2 <= radius ** 2)
    off = out[CH_OFF].view(N_POINTS, 2, GRID, GRID)
    pts, scores = [], []
    for j in range(N_POINTS):
        flat = int(torch.argmax(heat[j]))
        y, x = divmod(flat, GRID)
        dx, dy = float(off[j, 0, y, x]), float(off[j, 1, y, x])
        pts.append(((x + dx) * STRIDE, (y + dy) * STRIDE))
        scores.append(float(heat[j, y, x]))
    return np.array(pts, np.float64), np.array(scores)


class Locator:
    """The two-pass decoder around a trained SketchFaceLocator."""

    def __init__(self, model: SketchFaceLocator, threshold: float = 0.3, device="cpu"):
        self.model, self.threshold, self.device = model.eval(), threshold, device

    @torch.inference_mode()
    def _run(self, crops: list[np.ndarray]) -> torch.Tensor:
        x = torch.from_numpy(np.stack(crops)[:, None]).to(self.device)
        return self.model(x).float().cpu()

    def find(self, ink: np.ndarray, max_faces: int = 4) -> list[Face]:
        """All faces in an ink picture (H, W) float32 in [0, 1] (0 = paper), largest first; [] when none."""
        h, w = ink.shape
        fit = fit_matrix(w, h)
        out = self._run([warp_ink(ink, fit)])[0]
        heat = torch.sigmoid(out[CH_CENTRE])
        # candidates: a low bar here, the refine pass decides
        cands = _peaks(heat, min(self.threshold, 0.15), k=max_faces)
        if not cands:
            return []
        inv_fit = invert(fit)
        first = []
        for score, y, x in cands:
            cx = (x + float(out[CH_COFF][0, y, x])) * STRIDE
            cy = (y + float(out[CH_COFF][1, y, x])) * STRIDE
            iod = SIZE_REF * math.exp(float(out[CH_SIZE, y, x]))
            # this pass's own landmarks of the face frame the crop, tilt included, when they agree with its size
            coarse, _ = decode_points(out, near=(cx, cy), radius=1.6 * iod)
            coarse_iod = float(np.hypot(*(coarse[1] - coarse[0])))
            if 0.6 * iod < coarse_iod < 1.6 * iod and coarse[1, 0] > coarse[0, 0]:
                first.append(crop_matrix(apply(inv_fit, coarse)))
            else:
                first.append(crop_matrix(None, centre=apply(inv_fit, [cx, cy]), iod=iod / fit[0, 0]))
        faces = []
        for m in first:
            face = self._refine(ink, m)
            if face is not None and face.score >= self.threshold:
                faces.append(face)
        faces = _dedupe(faces)
        if faces:  # several faces count only when each is nearly as clearly a face as the best one
            best = max(f.score for f in faces)
            faces = [f for f in faces if f.score >= RELATIVE_SCORE * best]
        faces.sort(key=lambda f: -f.iod)
        for f in faces:
            f.candidates = len(faces)
        return faces

    def _refine(self, ink: np.ndarray, m: np.ndarray, passes: int = 1, mirror: bool = True) -> Face | None:
        """Landmarks from crops framed by the previous estimate; the last pass also reads the crop's mirror
        image and averages the two (halves the landmarks' random error for one more batch row)."""
        score = 0.0
        pts = None
        for i in range(passes):
            crop = warp_ink(ink, m)
            both = mirror and i == passes - 1
            outs = self._run([crop, np.ascontiguousarray(crop[:, ::-1])] if both else [crop])
            local, _ = decode_points(outs[0])
            score = _centre_score(outs[0])
            if both:
                flipped, _ = decode_points(outs[1])
                flipped[:, 0] = INPUT - flipped[:, 0]
                local = (local + flipped[FLIP_ORDER]) / 2
                score = (score + _centre_score(outs[1])) / 2
            pts = apply(invert(m), local)
            m = crop_matrix(pts)
        if pts is None or not np.all(np.isfinite(pts)):
            return None
        lo, hi = pts.min(0), pts.max(0)
        iod = float(np.hypot(*(pts[1] - pts[0])))
        # a box around the whole face: the landmarks' extent grown by about one inter-ocular distance
        x0, y0 = lo[0] - 0.9 * iod, lo[1] - 1.2 * iod
        x1, y1 = hi[0] + 0.9 * iod, hi[1] + 0.9 * iod
        return Face(points=pts, score=score, box=(float(x0), float(y0), float(x1 - x0), float(y1 - y0)))


def _centre_score(out: torch.Tensor) -> float:
    """The face score of a refine crop: the centre heatmap near the crop's centre, where the face was put."""
    heat = torch.sigmoid(out[CH_CENTRE])
    c = GRID // 2
    return float(heat[c - 4:c + 5, c - 5:c + 4].max())


def _dedupe(faces: list[Face]) -> list[Face]:
    """Two candidates that refine onto the same face (landmarks within half an IOD) are one face."""
    kept: list[Face] = []
    for f in sorted(faces, key=lambda f: -f.score):
        if all(np.linalg.norm(face_centre(f.points) - face_centre(k.points)) > 0.5 * max(k.iod, 1.0) for k in kept):
            kept.append(f)
    return kept


def ink_from_gray(gray: np.ndarray) -> np.ndarray:
    """Grey in [0, 1] (1 = paper) -> ink in [0, 1]: the paper tone taken out (tinted or grey paper) and faint
    drawings (a light pencil, a pale sketch-engine result) stretched so their darkest lines are near full ink."""
    g = np.asarray(gray, np.float32)
    if not g.size:
        return g
    sample = g[::2, ::2].ravel() if g.size > 4096 else g.ravel()   # percentiles of a quarter: same, 4x faster
    paper = float(np.percentile(sample, 90))
    ink = np.clip((paper - g) / max(paper, 0.2), 0.0, 1.0)
    darkest = float(np.percentile(np.clip((paper - sample) / max(paper, 0.2), 0, 1), 99.5))
    if darkest > 0.05:  # below that the layer is (nearly) blank: nothing to stretch but noise
        ink = np.clip(ink / max(darkest, 0.4), 0.0, 1.0)
    return ink


def fused_for_inference(model: SketchFaceLocator) -> SketchFaceLocator:
    """The same network with each batch norm folded into its convolution (eval mode only): about a third
    faster on a CPU."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    model = model.eval()
    for module in model.modules():
        if isinstance(module, nn.Sequential) and len(module) == 3 and isinstance(module[0], nn.Conv2d) \
                and isinstance(module[1], nn.BatchNorm2d):
            module[0] = fuse_conv_bn_eval(module[0], module[1])
            module[1] = nn.Identity()
    return model


def read_model(path: str) -> tuple[SketchFaceLocator, dict]:
    """Exported weights -> (the network as trained, in float32, not fused; the file's metadata)."""
    from safetensors.torch import load_file
    from safetensors import safe_open
    with safe_open(path, "pt") as fh:
        meta = fh.metadata() or {}
    widths = tuple(int(v) for v in meta.get("widths", "16,24,48,64,96").split(","))
    model = SketchFaceLocator(widths=widths, head=int(meta.get("head", 32)))
    model.load_state_dict({k: v.float() for k, v in load_file(path).items()})
    return model, meta


def load(path: str, device="cpu") -> Locator:
    model, meta = read_model(path)
    return Locator(fused_for_inference(model).to(device), threshold=float(meta.get("threshold", 0.3)), device=device)


def save(model: SketchFaceLocator, path: str, threshold: float, extra_meta: dict | None = None) -> None:
    import os
    from safetensors.torch import save_file
    widths = [model.stem[0].out_channels, model.s1[0][0].out_channels, model.s2[0][0].out_channels,
              model.s3[0][0].out_channels, model.s4[0][0].out_channels]
    meta = {"widths": ",".join(map(str, widths)), "head": str(model.top.out_channels),
            "threshold": f"{threshold:.4f}", **{k: str(v) for k, v in (extra_meta or {}).items()}}
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    tmp = path + ".tmp"
    save_file(state, tmp, metadata=meta)
    os.replace(tmp, path)
