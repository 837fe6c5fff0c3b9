"""The `sketch` engine: photo -> pencil sketch with our lite HIDA generator and depth network.

Resolution strategy (pictures and reasons: docs/sketch_resolution.md):
1. Global pass: the picture, padded to a square by repeating its edges, is resized to the model's
   256x256; the depth network (or the user's depth layer) gives the depth map, HIDA the sketch.
2. Face pass: the depth map also says where the face is. If the face is smaller in that 256 frame
   than the faces HIDA was trained on (FS2K's aligned crops), a square around it is cropped from
   the full-resolution picture at the training framing and run again at 256; the result replaces
   the global one there, with a feathered edge.
3. Detail-preserving upsampling to the input size: each 256 result is resized with a bicubic
   filter and gets back the fine structure that the downscale removed, transferred from the
   photo's luminance through a local linear model (the guided filter's a-coefficients), in row
   strips so that huge pictures do not need huge buffers.
Alpha is kept; transparent pixels are treated as white paper for the model.
"""
from __future__ import annotations

import math
import os
import threading

import numpy as np
import torch
import torch.nn.functional as F

from facesketch.models.paths import shown

from .base import EngineError, Engine, ImageInput, JobContext, Param, as_float, weights_path

SKETCH_WEIGHTS = "hida_lite.safetensors"
DEPTH_WEIGHTS = "depth_lite.safetensors"
MODEL_SIZE = 256
MIN_SIDE = 16
# Where the face sits in FS2K's aligned 256 frames, measured on the pack's depth maps (depth above
# FACE_DEPTH, median over the training split): top 47, bottom 247, so height 200 = 0.78 of the frame.
# Face pixels in those maps are >= 0.24 (the 0.5th percentile), so 0.25 separates face from the
# small values the depth network leaves on the background.
FACE_DEPTH = 0.25
TRAIN_FACE_TOP = 47 / 256
TRAIN_FACE_HEIGHT = 200 / 256
FACE_PASS_BELOW = 0.75   # run the face pass when the face is smaller than 75% of the training size
STRIP_ROWS = 512
LUMA = (0.299, 0.587, 0.114)


class SketchEngine(Engine):
    name = "sketch"
    summary = "Turns a photo into a pencil sketch (HIDA-style generator trained on FS2K, with depth and style control)."
    params = (
        Param("style", "choice", "1", "FS2K sketch style: 1, 2, 3, or mix (uses style_mix)",
              choices=("1", "2", "3", "mix")),
        Param("style_mix", "vector", [1 / 3, 1 / 3, 1 / 3],
              "weights of styles 1, 2, 3 when style is 'mix' (normalised to sum 1)", min=0.0, max=1.0, length=3),
        Param("strength", "float", 1.0, "1 = pure sketch; lower values blend the sketch over the original",
              min=0.0, max=1.0),
    )
    inputs = (ImageInput("image", "the photo to sketch (ideally a portrait)"),
              ImageInput("depth", "optional face depth map (gray, near = bright, same size as the image)",
                         required=False))
    outputs = ("sketch", "depth")
    default_outputs = ("sketch",)

    def __init__(self, weights_dir: str | None = None):
        self.weights_dir = weights_dir  # None: the shipped folder, or FACESKETCH_WEIGHTS_DIR (weights_path)
        self._models: dict[str, tuple] = {}
        self._lock = threading.Lock()

    # -- readiness and loading ----------------------------------------------------------------

    def _paths(self) -> tuple[str, str]:
        if self.weights_dir is None:
            return weights_path(SKETCH_WEIGHTS), weights_path(DEPTH_WEIGHTS)
        return os.path.join(self.weights_dir, SKETCH_WEIGHTS), os.path.join(self.weights_dir, DEPTH_WEIGHTS)

    def readiness(self) -> tuple[bool, str]:
        missing = [p for p in self._paths() if not os.path.isfile(p)]
        if missing:
            return False, ("no trained weights: " + " and ".join(shown(p) for p in missing) + " missing; train with "
                           "'python -m facesketch.models.train depth --data PACK --out STATEDIR --export' and "
                           "'python -m facesketch.models.train sketch --data PACK --out STATEDIR --export'")
        return True, ""

    def load(self, device: str) -> None:
        self._get_models(device)

    def _get_models(self, device: str):
        ready, reason = self.readiness()
        if not ready:
            raise EngineError("not_ready", reason)
        with self._lock:
            if device not in self._models:
                from facesketch.models.export import load_weights  # imported late: the service starts without torch work
                sketch_path, depth_path = self._paths()
                dtype = torch.float16 if device.startswith("cuda") else torch.float32
                self._models[device] = (load_weights(sketch_path, "sketch", device, dtype),
                                        load_weights(depth_path, "depth", device, dtype), dtype)
            return self._models[device]

    # -- the job -------------------------------------------------------------------------------

    def run(self, images, params, outputs, job: JobContext):
        image = images.get("image")
        if image is None:
            raise EngineError("bad_param", "the sketch engine needs an input image named 'image'")
        h, w = image.shape[:2]
        if h == 0 or w == 0:
            raise EngineError("empty_image", "the image is empty (0 pixels)")
        if min(h, w) < MIN_SIDE:
            raise EngineError("bad_param", f"the image is {w}x{h} pixels; the sketch engine needs at least "
                                           f"{MIN_SIDE} pixels on each side")
        rgba = as_float(image)
        alpha = rgba[..., 3]
        if alpha.max() <= 0:
            raise EngineError("empty_image", "the layer is fully transparent: there is nothing to sketch")
        style = _style_weights(params)
        strength = float(params["strength"])
        user_depth = images.get("depth")
        if user_depth is not None and user_depth.shape[:2] != (h, w):
            raise EngineError("size_mismatch", f"the depth layer is {user_depth.shape[1]}x{user_depth.shape[0]}, "
                                               f"the image {w}x{h}: they must be the same size")

        job.progress(0.02, "loading the sketch model")
        sketch_net, depth_net, dtype = self._get_models(job.device)
        device = job.device
        job.check()

        # Photo on white paper where transparent; luminance is the guide for detail transfer.
        rgb = rgba[..., :3] * alpha[..., None] + (1 - alpha[..., None])
        photo = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]  # 1x3xHxW in [0,1], CPU
        luma = (photo * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
        depth_full = None
        if user_depth is not None:
            d = as_float(user_depth)
            depth_full = torch.from_numpy(np.ascontiguousarray(d[..., :3].mean(-1)))[None, None]
        style_vec = _style_tensor(style, device, dtype)

        def model_pass(box, fraction):
            """Run depth + sketch on the square `box` (x0, y0, side) of the full picture, at 256."""
            crop = _crop_resize(photo, box, MODEL_SIZE)
            if depth_full is not None:
                depth = _crop_resize(depth_full, box, MODEL_SIZE, pad_value=0.0)
            job.progress(fraction, "estimating depth" if depth_full is None else "using the given depth")
            with torch.inference_mode():
                x = (crop * 2 - 1).to(device, dtype)
                if depth_full is None:
                    depth = depth_net(x).float().cpu()
                job.check()
                job.progress(fraction + 0.1, "drawing")
                sketch, _ = sketch_net(x, depth.to(device, dtype), style_vec)
            return (sketch.float().cpu() + 1) / 2, depth

        # 1. Global pass on the picture padded to a square.
        side = max(h, w)
        global_box = ((w - side) / 2, (h - side) / 2, side)
        g_sketch, g_depth = model_pass(global_box, 0.05)
        job.check()
        passes = [(global_box, g_sketch, g_depth, None)]

        # 2. Face pass when the face is small in the global frame.
        face_box = _face_box(g_depth[0, 0], global_box)
        if face_box is not None:
            f_sketch, f_depth = model_pass(face_box, 0.3)
            passes.append((face_box, f_sketch, f_depth, _feather(MODEL_SIZE)))
            job.check()

        # 3. Upsample with detail, strip by strip, compositing the passes.
        want_sketch = "sketch" in outputs
        want_depth = "depth" in outputs
        out_sketch = np.empty((h, w), np.float32) if want_sketch else None
        out_depth = np.empty((h, w), np.float32) if want_depth else None
        n_strips = math.ceil(h / STRIP_ROWS)
        low_lumas = [_crop_resize(luma, box, MODEL_SIZE) for box, _, _, _ in passes]
        detail = [_detail_coefficients(low, s) for low, (_, s, _, _) in zip(low_lumas, passes)]
        for k in range(n_strips):
            job.check()
            job.progress(0.5 + 0.45 * k / n_strips, "upsampling")
            y0, y1 = k * STRIP_ROWS, min(h, (k + 1) * STRIP_ROWS)
            strip_luma = luma[..., y0:y1, :]
            acc_s = acc_d = None
            for (box, s, d, weight_map), a, low in zip(passes, detail, low_lumas):
                grid = _grid_for(box, y0, y1, w, MODEL_SIZE)
                sk = d_up = None
                if want_sketch:
                    sk = _sample(s, grid, "bicubic")
                    low_luma = _sample(low, grid, "bilinear")
                    sk = sk + _sample(a, grid, "bilinear") * (strip_luma - low_luma)
                if want_depth:
                    d_up = _sample(d, grid, "bilinear")
                if weight_map is None:
                    acc_s, acc_d = sk, d_up
                else:
                    m = _sample(weight_map, grid, "bilinear", zeros_outside=True)
                    acc_s = acc_s * (1 - m) + sk * m if want_sketch else None
                    acc_d = acc_d * (1 - m) + d_up * m if want_depth else None
            if want_sketch:
                out_sketch[y0:y1] = acc_s[0, 0].clamp(0, 1).numpy()
            if want_depth:
                out_depth[y0:y1] = acc_d[0, 0].clamp(0, 1).numpy()

        result = {}
        if want_sketch:
            gray = out_sketch[..., None]
            rgb_out = strength * gray + (1 - strength) * rgba[..., :3] if strength < 1 else np.repeat(gray, 3, 2)
            result["sketch"] = np.concatenate([rgb_out, alpha[..., None]], -1).astype(np.float32)
        if want_depth:
            result["depth"] = np.concatenate([np.repeat(out_depth[..., None], 3, 2), alpha[..., None]], -1)
        return result


# -- helpers -----------------------------------------------------------------------------------


def _style_weights(params) -> list[float]:
    style = params["style"]
    if style != "mix":
        return [1.0 if str(k) == style else 0.0 for k in (1, 2, 3)]
    weights = [float(v) for v in params["style_mix"]]
    total = sum(weights)
    if total <= 0:
        raise EngineError("bad_param", "parameter 'style_mix': at least one style weight must be above 0")
    return [v / total for v in weights]


def _style_tensor(weights, device, dtype) -> torch.Tensor:
    from facesketch.models.hida import style_vector
    return style_vector(list(weights)).to(device, dtype)


def _crop_resize(img: torch.Tensor, box, size: int, pad_value: float | None = None) -> torch.Tensor:
    """Square `box` = (x0, y0, side) of a 1xCxHxW picture, resampled to size x size.

    Outside the picture: the nearest edge pixel (so padding looks like more of the photo), or
    `pad_value` when given. Downscales are area-averaged first to avoid aliasing.
    """
    x0, y0, side = box
    _, _, h, w = img.shape
    factor = side / size
    src = img
    if factor > 1.5:  # pre-shrink by an integer factor with box averaging, then resample precisely
        k = int(factor)
        src = F.avg_pool2d(img, k, k, ceil_mode=True)
        h2, w2 = src.shape[-2:]
        x0, y0, side = x0 * w2 / w, y0 * h2 / h, side * w2 / w
        h, w = h2, w2
    ys = y0 + (torch.arange(size, dtype=torch.float32) + 0.5) * side / size
    xs = x0 + (torch.arange(size, dtype=torch.float32) + 0.5) * side / size
    gy = ys / h * 2 - 1
    gx = xs / w * 2 - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], -1)[None]
    out = F.grid_sample(src.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    if pad_value is not None:
        inside = ((ys >= 0) & (ys < h)).view(1, 1, size, 1) & ((xs >= 0) & (xs < w)).view(1, 1, 1, size)
        out = torch.where(inside, out, torch.full_like(out, pad_value))
    return out


def _grid_for(box, y0: int, y1: int, w: int, size: int) -> torch.Tensor:
    """Sampling grid that maps output rows y0..y1 (all columns) into a size x size result of `box`."""
    bx, by, side = box
    ys = (torch.arange(y0, y1, dtype=torch.float32) + 0.5 - by) / side * 2 - 1
    xs = (torch.arange(w, dtype=torch.float32) + 0.5 - bx) / side * 2 - 1
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], -1)[None]


def _sample(t: torch.Tensor, grid: torch.Tensor, mode: str, zeros_outside: bool = False) -> torch.Tensor:
    return F.grid_sample(t, grid, mode=mode, padding_mode="zeros" if zeros_outside else "border",
                         align_corners=False)


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    return F.avg_pool2d(F.pad(x, (r, r, r, r), mode="replicate"), 2 * r + 1, 1)


def _detail_coefficients(guide: torch.Tensor, target: torch.Tensor, r: int = 2, eps: float = 2e-3) -> torch.Tensor:
    """The guided filter's slope a = cov(I, p) / (var(I) + eps), box-smoothed: how strongly the sketch
    follows the photo's luminance locally. Multiplying the photo's lost fine detail by it gives the
    sketch's missing fine detail (only where the sketch really tracks the photo)."""
    mean_i, mean_p = _box(guide, r), _box(target, r)
    cov = _box(guide * target, r) - mean_i * mean_p
    var = _box(guide * guide, r) - mean_i * mean_i
    a = cov / (var + eps)
    return _box(a, r)


def _face_box(depth256: torch.Tensor, global_box):
    """Square crop around the face (in picture pixels) at FS2K's framing, or None when no face is found
    or the face is already large enough in the global pass."""
    mask = depth256 > FACE_DEPTH
    if mask.sum() < 0.01 * mask.numel():
        return None
    rows = torch.nonzero(mask.any(1)).flatten()
    cols = torch.nonzero(mask.any(0)).flatten()
    top, bottom = rows.min().item(), rows.max().item() + 1
    left, right = cols.min().item(), cols.max().item() + 1
    face_h = bottom - top
    if face_h >= FACE_PASS_BELOW * TRAIN_FACE_HEIGHT * MODEL_SIZE:
        return None
    gx, gy, gside = global_box
    scale = gside / MODEL_SIZE
    side = face_h * scale / TRAIN_FACE_HEIGHT
    cx = gx + (left + right) / 2 * scale
    y0 = gy + top * scale - TRAIN_FACE_TOP * side
    return (cx - side / 2, y0, side)


def _feather(size: int, margin: float = 0.12) -> torch.Tensor:
    """1 inside, falling to 0 at the border with a raised-cosine ramp of `margin` x size."""
    ramp = torch.clamp((torch.arange(size, dtype=torch.float32) + 0.5) / (margin * size), 0, 1)
    ramp = 0.5 - 0.5 * torch.cos(math.pi * ramp)
    edge = torch.minimum(ramp, ramp.flip(0))
    return (edge[:, None] * edge[None, :])[None, None]


ENGINE = SketchEngine
