"""Sketch -> face (DeepFaceDrawing, lite configuration trained on FS2K), with manifold projection and shadows.

The layer is composited over white. With `align=auto` (the default) the sketch face locator finds the drawn
face anywhere in the layer, at any size and small rotation; the face is warped into the model's template
canvas, generated, warped back and composited at the drawn position through a feathered oval (outside it the
layer is transparent, or paper: `outside`). With `align=template` the whole layer is the template canvas
(fitted, centred, aspect kept, white padding), as a host's face canvas draws it: strokes are expected where
the template puts eyes, nose and mouth. The shadow output is a guide drawn from the nearest plausible faces,
placed the same way.
"""
from __future__ import annotations

import json
import os
import struct
import threading

import numpy as np

from .base import Engine, EngineError, ImageInput, Param, as_float, weights_path
from .face_placement import LocatorCache, describe, face_mask, locate, paper_tone, to_canvas, to_layer

WEIGHTS_FILE = "face_lite.safetensors"

# parameter -> model component ("left" = on the left of the image, as the user sees the canvas)
BLEND_PARAMS = (("blend_left_eye", "eye1"), ("blend_right_eye", "eye2"), ("blend_nose", "nose"),
                ("blend_mouth", "mouth"), ("blend_remainder", "remainder"))


# hello details "boxes": host-facing part name -> face_template component ("left" = image-left, as BLEND_PARAMS)
TEMPLATE_PARTS = (("left_eye", "eye1"), ("right_eye", "eye2"), ("nose", "nose"), ("mouth", "mouth"))
DEFAULT_CONFIG = "lite"  # what load_safetensors assumes when the weights name no config


def _weights_config(path: str) -> str | None:
    """The DeepFaceDrawing config the weights were saved with (their safetensors metadata), read from the file's
    JSON header alone; None when the file names none or cannot be read."""
    try:
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n > 100_000_000:
                return None
            header = json.loads(fh.read(n))
        return (header.get("__metadata__") or {}).get("config")
    except (OSError, ValueError, struct.error, AttributeError):
        return None


def _blend_param(name: str, part: str) -> Param:
    return Param(name, "float", 1.0, f"{part}: 0 = follow my lines, 1 = the most plausible face", min=0.0, max=1.0)


class FaceEngine(Engine):
    name = "face"
    summary = "Turns a face sketch (black strokes on white or transparent) into a photo-like face (DeepFaceDrawing)."
    params = (
        _blend_param("blend_left_eye", "eye on the left of the image"),
        _blend_param("blend_right_eye", "eye on the right of the image"),
        _blend_param("blend_nose", "nose"),
        _blend_param("blend_mouth", "mouth"),
        _blend_param("blend_remainder", "face outline, hair and the rest"),
        Param("master", "float", 1.0, "multiplies all five blend weights", min=0.0, max=1.0),
        Param("gender", "choice", "female", "which faces the sketch is pulled toward", choices=("female", "male")),
        Param("k", "int", 10, "how many nearest faces each part is rebuilt from", min=1, max=50),
        Param("align", "choice", "auto", "auto = find the drawn face anywhere in the layer and put the result "
              "there; template = the layer is the face template (a face canvas)", choices=("auto", "template")),
        Param("outside", "choice", "transparent", "with align auto, what the result layer holds around the "
              "face: transparent (the drawing shows through) or paper", choices=("transparent", "paper")),
    )
    inputs = (ImageInput("image", "the sketch layer: dark strokes on white or on transparent"),)
    outputs = ("face", "shadow")
    default_outputs = ("face",)

    def __init__(self, locator_weights: str | None = None):
        self._lock = threading.Lock()
        self._loaded = None  # (path, mtime, device, model, bank)
        self._canvas = None  # ((path, mtime), canvas)
        self._locator = LocatorCache(locator_weights)

    def _path(self) -> str:
        return weights_path(WEIGHTS_FILE)

    def readiness(self) -> tuple[bool, str]:
        if not os.path.isfile(self._path()):
            return False, (f"the face model has no trained weights yet ({self._path()} is missing); "
                           "train and export them with 'python -m facesketch.models.train face'")
        return True, ""

    def load(self, device: str) -> None:
        self._get(device)
        if self._locator.ready()[0]:
            self._locator.get(device)

    # -- what hosts are told (hello details) ------------------------------------------------------

    def host_details(self) -> dict:
        """The canvas the model works on and the template boxes on it (from models/data/face_template.py, the
        boxes the training data was aligned to), so hosts draw the template and size a face canvas from the
        model instead of keeping copies. Known without loading the weights, also when they are missing."""
        from facesketch.models.data.face_template import crop_boxes
        canvas = self.canvas()
        boxes = crop_boxes(canvas)
        return {**super().host_details(), "canvas": canvas,
                "boxes": {part: list(boxes[component]) for part, component in TEMPLATE_PARTS}}

    def canvas(self) -> int:
        """The model's square canvas: its config's, as the weights file names it (the default config without one)."""
        path = self._path()
        try:
            key = (path, os.path.getmtime(path))
        except OSError:
            key = (path, None)
        if self._canvas is None or self._canvas[0] != key:
            from facesketch.models.deepfacedrawing import get_config
            name = _weights_config(path) if key[1] is not None else None
            try:
                cfg = get_config(name or DEFAULT_CONFIG)
            except ValueError:
                cfg = get_config(DEFAULT_CONFIG)
            self._canvas = (key, cfg.canvas)
        return self._canvas[1]

    def _get(self, device: str):
        ready, reason = self.readiness()
        if not ready:
            raise EngineError("not_ready", reason)
        path = self._path()
        mtime = os.path.getmtime(path)
        with self._lock:
            if self._loaded is None or self._loaded[:3] != (path, mtime, device):
                from facesketch.models.deepfacedrawing import load_safetensors
                from facesketch.models.projection import FeatureBank
                try:
                    model, bank, gender, _ = load_safetensors(path, device)
                except Exception as e:  # a broken file is the user's to fix, not an internal error
                    raise EngineError("not_ready", f"the face weights at {path} cannot be read ({e})") from e
                if bank is None or gender is None:
                    raise EngineError("not_ready", f"the face weights at {path} carry no feature bank")
                self._loaded = (path, mtime, device, model, FeatureBank.from_labels(bank, gender, device))
            return self._loaded[3], self._loaded[4]

    def run(self, images, params, outputs, job):
        import torch

        from facesketch.models.deepfacedrawing import COMPONENTS
        from facesketch.models.projection import blend, composite_shadow, shadow_components

        model, bank = self._get(job.device)
        layer = images["image"]
        if layer.ndim != 3 or layer.shape[0] == 0 or layer.shape[1] == 0:
            raise EngineError("empty_image", "the sketch layer is empty (no pixels)")
        gender = params["gender"]
        if gender not in bank.genders():
            raise EngineError("bad_param", f"the face model has no {gender} faces in its feature bank")
        canvas = model.cfg.canvas
        layer_gray = sketch_gray(layer)
        size = layer.shape[:2]
        if params["align"] == "auto":
            job.progress(0.05, "finding the face")
            placement = locate(layer_gray, self._locator.get(job.device), canvas)
            job.note(describe(placement))
            gray = to_canvas(layer_gray, placement.matrix, canvas)
            mask = face_mask(canvas)[..., None]
            back = lambda img: to_layer(img, placement.matrix, size)   # noqa: E731
        else:
            gray, box = fit_to_canvas(layer_gray, canvas)
            mask = None
            back = lambda img: restore_size(img, box, size)            # noqa: E731
        job.progress(0.1, "encoding the sketch")
        job.check()
        weights = {part: params[name] * params["master"] for name, part in BLEND_PARAMS}
        result = {}
        with torch.inference_mode():
            x = (torch.from_numpy(np.ascontiguousarray(gray)).to(job.device) - 0.5) * 2  # white = +1, strokes = -1
            latents = model.encode(x[None, None])
            proj = bank.project(latents, gender, params["k"])
            feats = blend(latents, proj, weights)
            job.progress(0.3, "drawing the face")
            job.check()
            if "face" in outputs:
                face = model.generate(feats)[0]                          # (3,S,S) in [-1,1]
                rgb = ((face.float().clamp(-1, 1) + 1) * 0.5).permute(1, 2, 0).cpu().numpy()
                if mask is None:
                    result["face"] = np.concatenate([back(rgb), np.ones(size + (1,), np.float32)], axis=2)
                else:
                    rgba = back(np.concatenate([rgb, mask], axis=2))
                    if params["outside"] == "paper":
                        a = rgba[..., 3:]
                        rgba = np.concatenate([rgba[..., :3] * a + (1 - a) * paper_tone(layer_gray),
                                               np.ones(size + (1,), np.float32)], axis=2)
                    result["face"] = rgba
            if "shadow" in outputs:
                job.progress(0.7, "drawing the guide")
                job.check()
                dark = composite_shadow(model, shadow_components(model, bank, gender, proj),
                                        haze_quantile=0.5)[0, 0].float().cpu().numpy()[..., None]
                if mask is not None:
                    dark = dark * mask
                alpha = np.clip(back(dark), 0, 1)
                # black at the guide's darkness: over white paper this is exactly the official shadow image
                result["shadow"] = np.concatenate([np.zeros(size + (3,), np.float32), alpha], axis=2)
        job.check()
        return result


def sketch_gray(layer: np.ndarray) -> np.ndarray:
    """RGBA layer -> float32 (H,W) gray in [0,1] composited over white (transparent = paper)."""
    f = as_float(layer)
    rgb, a = f[..., :3], f[..., 3:4]
    lum = (rgb * np.array([0.299, 0.587, 0.114], np.float32)).sum(-1, keepdims=True)
    return (lum * a + (1 - a))[..., 0].astype(np.float32)


def fit_to_canvas(gray: np.ndarray, canvas: int):
    """Centre-fit (aspect kept, white padding) -> ((canvas,canvas) float32, (x, y, w, h) of the layer inside)."""
    from PIL import Image
    h, w = gray.shape
    s = canvas / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    resized = np.asarray(Image.fromarray(gray, "F").resize((nw, nh), Image.BILINEAR if s >= 1 else Image.BOX))
    out = np.ones((canvas, canvas), np.float32)
    x, y = (canvas - nw) // 2, (canvas - nh) // 2
    out[y:y + nh, x:x + nw] = np.clip(resized, 0, 1)
    return out, (x, y, nw, nh)


def restore_size(img: np.ndarray, box, size) -> np.ndarray:
    """(S,S,C) float -> the layer's region cut out and resized to size=(H,W) -> (H,W,C) float32."""
    from PIL import Image
    x, y, w, h = box
    crop = img[y:y + h, x:x + w]
    H, W = size
    if (h, w) == (H, W):
        return crop.astype(np.float32)
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(crop[..., c], np.float32), "F")
                        .resize((W, H), Image.BICUBIC)) for c in range(crop.shape[2])]
    return np.clip(np.stack(chans, axis=2), 0, 1).astype(np.float32)


ENGINE = FaceEngine
