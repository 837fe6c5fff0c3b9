"""Classical pencil filters (no learning): a baseline for the sketch model and a source of
synthetic training sketches for the face model.

pencil_sketch: XDoG lines (Winnemoeller et al. 2012, "XDoG: an eXtended difference-of-Gaussians
compendium") multiplied by a tonal layer: the photo's smoothed luminance lifted towards paper white
and modulated by a procedural, diagonal pencil-hatching texture (in the spirit of Lu et al. 2012,
"Combining sketch and tone for pencil drawing production").

dodge_sketch: the classic colour-dodge pencil sketch every photo editor offers:
grey / (1 - blur(inverted grey)), the baseline a user compares us with.

rough_sketch: what a person draws in a few dozen strokes: only the strongest, coarse contours,
binarised, thickened, broken into stroke-length pieces and jittered by a smooth random displacement.

Plain torch + numpy (no OpenCV). Deterministic for a given seed.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

REFERENCE_SIZE = 256  # parameters are in pixels at this face size; larger images scale them


def _to_gray(rgb) -> torch.Tensor:
    a = np.asarray(rgb)
    if a.ndim == 2:
        g = a.astype(np.float32) / 255.0
    elif a.ndim == 3 and a.shape[2] in (1, 3, 4):
        if a.shape[2] == 1:
            g = a[..., 0].astype(np.float32) / 255.0
        else:
            c = a[..., :3].astype(np.float32) / 255.0
            g = c @ np.array([0.299, 0.587, 0.114], np.float32)
    else:
        raise ValueError(f"expected an image array (H, W) or (H, W, 3|4), got shape {a.shape}")
    if min(g.shape) < 8:
        raise ValueError(f"image too small for the pencil filter ({g.shape[1]}x{g.shape[0]})")
    return torch.from_numpy(np.ascontiguousarray(g))[None, None]


def _gauss_kernel(sigma: float) -> torch.Tensor:
    r = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, 1, H, W) with reflected borders."""
    if sigma <= 0:
        return x
    k = _gauss_kernel(sigma)
    r = len(k) // 2
    h, w = x.shape[-2:]
    mode = "reflect" if r < min(h, w) else "replicate"
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1))
    return x


def xdog(gray: torch.Tensor, sigma: float, k: float = 1.6, tau: float = 0.98,
         phi: float = 40.0, eps: float = -0.01) -> torch.Tensor:
    """XDoG line layer in [0, 1] (1 = paper): soft-thresholded difference of Gaussians."""
    d = blur(gray, sigma) - tau * blur(gray, sigma * k)
    return torch.where(d >= eps, torch.ones_like(d), 1.0 + torch.tanh(phi * (d - eps))).clamp(0, 1)


def _noise(shape, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(shape, generator=gen)


def hatching_texture(h: int, w: int, scale: float, gen: torch.Generator) -> torch.Tensor:
    """Pencil-grain texture in [0, 1] (1 = no graphite): white noise smeared along a diagonal,
    like strokes of a pencil held at an angle."""
    length = max(3, int(round(6 * scale)))
    n = _noise((1, 1, h + 2 * length, w + 2 * length), gen)
    # motion blur along the 45-degree diagonal: average of shifted copies
    acc = torch.zeros((1, 1, h, w))
    for t in range(length):
        acc += n[..., length + t - length // 2: length + t - length // 2 + h,
                 length - t + length // 2: length - t + length // 2 + w]
    acc /= length
    acc = (acc - acc.mean()) / (acc.std() + 1e-6)
    return (0.5 + 0.5 * torch.tanh(acc)).clamp(0, 1)


def _scale_for(h: int, w: int, scale: Optional[float]) -> float:
    return float(scale) if scale else max(0.5, min(h, w) / REFERENCE_SIZE)


def pencil_sketch(rgb_uint8, sigma: float = 1.0, k: float = 1.6, tau: float = 0.98, phi: float = 60.0,
                  eps: float = -0.004, shading: float = 0.45, texture: float = 0.25, tone_gamma: float = 1.8,
                  scale: Optional[float] = None, seed: int = 0) -> np.ndarray:
    """Photo -> pencil sketch, grayscale uint8 (H, W): dark lines and light graphite shading on white.

    sigma, k, tau, phi, eps: XDoG line parameters (sigma in pixels at a 256-pixel face; scaled by
    `scale`, by default min(H, W) / 256). shading: how much tone dark regions get (0 = lines only).
    texture: how strongly the tone is broken into pencil grain. tone_gamma > 1 keeps light areas
    paper-white."""
    g = _to_gray(rgb_uint8)
    h, w = g.shape[-2:]
    s = _scale_for(h, w, scale)
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        lines = xdog(g, sigma * s, k, tau, phi, eps)
        # tone: smoothed luminance, contrast-stretched per image, then how much graphite it needs
        base = blur(g, 2.0 * s)
        lo, hi = torch.quantile(base.flatten(), 0.02), torch.quantile(base.flatten(), 0.98)
        if hi - lo > 0.25:  # a flat or low-contrast picture is left as it is, not blown up
            base = ((base - lo) / (hi - lo)).clamp(0, 1)
        darkness = (1.0 - base) ** tone_gamma * shading          # 0 = white paper
        grain = hatching_texture(h, w, s, gen)
        darkness = darkness * (1.0 - texture + texture * 2.0 * (1.0 - grain))
        tone = (1.0 - darkness).clamp(0, 1)
        out = lines * tone
    return (out[0, 0].numpy() * 255.0 + 0.5).clip(0, 255).astype(np.uint8)


def dodge_sketch(rgb_uint8, radius: float = 6.0, reference: int = 250) -> np.ndarray:
    """Photo -> the colour-dodge pencil sketch, grayscale uint8 (H, W).

    Grey layer, an inverted copy blurred with a Gaussian of `radius` pixels (at a picture whose longer
    side is `reference` pixels; scaled with the picture), combined in colour-dodge mode:
    grey / (1 - blur(1 - grey)), clipped to white."""
    g = _to_gray(rgb_uint8)
    sigma = radius * max(g.shape[-2:]) / reference
    with torch.no_grad():
        inv_blur = blur(1.0 - g, sigma)
        out = (g / (1.0 - inv_blur).clamp_min(1e-4)).clamp(0, 1)
    return (out[0, 0].numpy() * 255.0 + 0.5).clip(0, 255).astype(np.uint8)


def _smooth_field(h: int, w: int, cell: float, gen: torch.Generator) -> torch.Tensor:
    """Smooth random field in [-1, 1] with features about `cell` pixels across."""
    gh, gw = max(2, int(math.ceil(h / cell)) + 1), max(2, int(math.ceil(w / cell)) + 1)
    coarse = _noise((1, 1, gh, gw), gen) * 2 - 1
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True).clamp(-1, 1)


def _ridges(d: torch.Tensor) -> torch.Tensor:
    """1-2 pixel wide valleys of a DoG response (where d is lowest across the line)."""
    p = F.pad(d, (1, 1, 1, 1), mode="replicate")
    c = p[..., 1:-1, 1:-1]
    horiz = (c <= p[..., 1:-1, :-2]) & (c <= p[..., 1:-1, 2:])
    vert = (c <= p[..., :-2, 1:-1]) & (c <= p[..., 2:, 1:-1])
    diag1 = (c <= p[..., :-2, :-2]) & (c <= p[..., 2:, 2:])
    diag2 = (c <= p[..., :-2, 2:]) & (c <= p[..., 2:, :-2])
    return (horiz | vert | diag1 | diag2).float()


def rough_sketch(rgb_uint8, sigma: float = 2.0, k: float = 1.6, strength: float = 0.04, thickness: int = 3,
                 jitter: float = 2.0, breaks: float = 0.1, min_length: int = 14,
                 scale: Optional[float] = None, seed: int = 0) -> np.ndarray:
    """Photo (or artist sketch) -> rough line drawing, grayscale uint8: sparse, even, slightly
    wobbly black strokes on white, like a quick drawing of a few dozen strokes.

    sigma: coarseness of the contours (pixels at a 256-pixel face). strength: the fraction of
    pixels with the strongest dark-line response that seed strokes; strokes then follow the line
    while the response stays above a third of that level (hysteresis, as in Canny). thickness: stroke width
    in pixels (at 256). jitter: amplitude of the smooth random displacement in pixels (at 256).
    breaks: fraction of the line length removed as gaps between strokes. min_length: pieces of
    line shorter than about this many pixels (at 256) are dropped."""
    g = _to_gray(rgb_uint8)
    h, w = g.shape[-2:]
    s = _scale_for(h, w, scale)
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        # pre-smooth so texture (hair strands, skin pores) does not become strokes
        gs = blur(g, 1.5 * s)
        d = blur(gs, sigma * s) - blur(gs, sigma * s * k)   # negative on dark lines
        cut = torch.quantile(d.flatten(), strength).clamp(max=-1e-4)
        ridges = _ridges(d)
        weak = (d < cut / 3).float() * ridges
        ink = (d < cut).float() * ridges
        for _ in range(int(12 * s)):  # grow strong lines along the weak ones
            ink = torch.minimum(F.max_pool2d(ink, 3, stride=1, padding=1), weak)
        # drop specks: a stroke pixel needs enough stroke pixels around it
        r = max(2, int(round(min_length * s / 2)))
        density = F.avg_pool2d(F.pad(ink, (r, r, r, r)), 2 * r + 1, stride=1) * (2 * r + 1) ** 2
        ink = ink * (density >= min_length * s * 0.8).float()
        # gaps: a smooth random mask cuts the lines into strokes
        if breaks > 0:
            field = _smooth_field(h, w, 12.0 * s, gen)
            ink = ink * (field > torch.quantile(field.flatten(), breaks)).float()
        # thicken to an even pen width
        t = max(1, int(round(thickness * s)))
        if t > 1:
            pad_l, pad_r = (t - 1) // 2, t // 2
            ink = F.max_pool2d(F.pad(ink, (pad_l, pad_r, pad_l, pad_r)), t, stride=1)
        # wobble: displace by a smooth random field
        if jitter > 0:
            amp = jitter * s
            dx = _smooth_field(h, w, 40.0 * s, gen) * amp * 2.0 / max(w - 1, 1)
            dy = _smooth_field(h, w, 40.0 * s, gen) * amp * 2.0 / max(h - 1, 1)
            ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
            grid = torch.stack([xs + dx[0, 0], ys + dy[0, 0]], -1)[None]
            ink = F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        ink = blur(ink, 0.4 * s).clamp(0, 1) * 1.15
        out = 1.0 - ink.clamp(0, 1)
    return (out[0, 0].numpy() * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
