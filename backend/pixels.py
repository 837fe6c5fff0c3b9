"""Pixel frames <-> RGBA numpy arrays.

Hosts send layers in their own layout (Krita's BGRA, GIMP's RGBA or gray, 16-bit); engines see
(H, W, 4) RGBA arrays. RGBA8 with a tight stride is decoded and encoded without copying, so the
transport costs nothing beyond the sockets themselves.
"""
from __future__ import annotations

import numpy as np
from facesketch_client.protocol import PIXEL_FORMATS


def decode(spec: dict, frame) -> np.ndarray:
    """A validated image spec and its frame -> (H, W, 4) RGBA array, uint8 or uint16 for RGBA16."""
    w, h, fmt, stride = spec["width"], spec["height"], spec["format"], spec["stride"]
    bpp = PIXEL_FORMATS[fmt][0]
    raw = np.frombuffer(frame, dtype=np.uint8)
    rows = np.lib.stride_tricks.as_strided(raw, shape=(h, w * bpp), strides=(stride, 1), writeable=False)
    if fmt == "RGBA8":
        return rows.reshape(h, w, 4)
    if fmt == "BGRA8":
        return rows.reshape(h, w, 4)[..., [2, 1, 0, 3]]
    if fmt == "RGB8":
        out = np.empty((h, w, 4), np.uint8)
        out[..., :3] = rows.reshape(h, w, 3)
        out[..., 3] = 255
        return out
    if fmt == "GRAY8":
        out = np.empty((h, w, 4), np.uint8)
        out[..., :3] = rows.reshape(h, w, 1)
        out[..., 3] = 255
        return out
    if fmt == "GRAYA8":
        ga = rows.reshape(h, w, 2)
        out = np.empty((h, w, 4), np.uint8)
        out[..., :3] = ga[..., :1]
        out[..., 3] = ga[..., 1]
        return out
    if fmt == "RGBA16":
        return np.ascontiguousarray(rows).view(np.uint16).reshape(h, w, 4)
    raise ValueError(f"unknown pixel format {fmt}")


def _as_depth(image: np.ndarray, sixteen: bool) -> np.ndarray:
    if sixteen:
        if image.dtype == np.uint16:
            return image
        if image.dtype == np.uint8:
            return image.astype(np.uint16) * 257
        return np.clip(image * 65535.0 + 0.5, 0, 65535).astype(np.uint16)
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        # Round to nearest: 257 * v8 maps back to v8 exactly.
        return ((image.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _gray(rgb: np.ndarray) -> np.ndarray:
    # Integer Rec.601 luma; exact when R == G == B, so gray layers survive a round trip.
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    return ((77 * r + 150 * g + 29 * b + 128) >> 8).astype(np.uint8)


def encode(image: np.ndarray, fmt: str):
    """(H, W, 4) RGBA array (uint8, uint16 or float in [0, 1]) -> (width, height, stride, buffer)."""
    if image.ndim != 3 or image.shape[2] != 4:
        raise ValueError(f"engines must return (H, W, 4) RGBA arrays, got shape {image.shape}")
    h, w = image.shape[:2]
    px = _as_depth(image, sixteen=(fmt == "RGBA16"))
    if fmt in ("RGBA8", "RGBA16"):
        out = px
    elif fmt == "BGRA8":
        out = px[..., [2, 1, 0, 3]]
    elif fmt == "RGB8":
        out = px[..., :3]
    elif fmt == "GRAY8":
        out = _gray(px)
    elif fmt == "GRAYA8":
        out = np.stack([_gray(px), px[..., 3]], axis=-1)
    else:
        raise ValueError(f"unknown pixel format {fmt}")
    out = np.ascontiguousarray(out)
    return w, h, w * PIXEL_FORMATS[fmt][0], out
