"""FS2K evaluation metrics: SCOOT (exactly as FS2KToolbox's scoot_measure.m) and SSIM.

SCOOT (Fan et al., "Scoot: A Perceptual Metric for Facial Sketches", ICCV 2019), as the FS2K
toolbox computes it (scoot_measure.m, eval_from_json.m):
  * both images grayscale uint8 (MATLAB rgb2gray weights), the synthesis resized to the ground
    truth's size (eval_from_json: imresize, bicubic, antialiased);
  * the ground truth's size is cut into 4 x 4 blocks at floor(n * k / 4);
  * per block, graycomatrix with NumLevels 6 over GrayLimits [0 255]
    (level = round(v * 5/255) + 1) at offsets [0 1; -1 1; -1 0; -1 -1] (0, 45, 90, 135 degrees,
    distance 1, not symmetric), the 4 matrices averaged and rounded to integers;
  * graycoprops on that matrix (normalised to sum 1): Contrast = sum |i-j|^2 p(i,j) and
    Energy = sum p(i,j)^2;
  * the 32 numbers (16 blocks x [contrast, energy]) of each image form v1, v2 and
    Q = 1 / (1 + ||v1 - v2||_2).

SSIM: pytorch-msssim's ssim on the grayscale pair (11x11 Gaussian window, sigma 1.5,
K = (0.01, 0.03), data range 255, like MATLAB's ssim; pytorch-msssim ignores a 5-pixel border
instead of MATLAB's replicate padding, so values differ from MATLAB's in the third decimal).

periodic_energy: how strongly a sketch of a smooth region repeats on the lattice of a stride-2
decoder (the dotted grid texture of transposed convolutions); 1 = no more than chance.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

SCOOT_BLOCKS = 4
SCOOT_LEVELS = 6
# (row, column) offsets as in scoot_measure.m: 0, 45, 90 and 135 degrees at distance 1
SCOOT_OFFSETS = ((0, 1), (-1, 1), (-1, 0), (-1, -1))
# MATLAB rgb2gray weights
_RGB2GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])


def _round_half_away(x):
    # MATLAB's round(); numpy's round is half-to-even
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def to_gray_uint8(image) -> np.ndarray:
    """MATLAB-style im2uint8 + rgb2gray: accepts a PIL image or an array (H, W), (H, W, 3|4);
    floats are taken to be in [0, 1]. An alpha channel is dropped."""
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB") if image.mode not in ("L", "RGB") else image)
    a = np.asarray(image)
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating):
            a = _round_half_away(np.clip(a.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
        elif a.dtype == np.uint16:
            a = _round_half_away(a.astype(np.float64) / 257.0).astype(np.uint8)
        else:
            a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 3:
        if a.shape[2] == 1:
            a = a[..., 0]
        else:
            a = _round_half_away(a[..., :3].astype(np.float64) @ _RGB2GRAY).clip(0, 255).astype(np.uint8)
    if a.ndim != 2:
        raise ValueError(f"expected a grayscale or colour image, got shape {np.asarray(image).shape}")
    return a


def _resize_gray(a: np.ndarray, shape) -> np.ndarray:
    if a.shape == tuple(shape):
        return a
    return np.asarray(Image.fromarray(a).resize((shape[1], shape[0]), Image.BICUBIC))


def quantise_levels(gray_uint8: np.ndarray, levels: int = SCOOT_LEVELS) -> np.ndarray:
    """graycomatrix's scaling of uint8 values (GrayLimits [0 255]) to integers 1..levels."""
    q = _round_half_away(gray_uint8.astype(np.float64) * (levels - 1) / 255.0 + 1.0)
    return np.clip(q, 1, levels).astype(np.int64)


def glcm(levels_img: np.ndarray, offset, levels: int = SCOOT_LEVELS) -> np.ndarray:
    """Non-symmetric grey-level co-occurrence counts (levels x levels) for one (row, col) offset:
    G[i, j] counts pixels of level i+1 whose neighbour at the offset has level j+1."""
    dr, dc = offset
    h, w = levels_img.shape
    r0, r1 = max(0, -dr), min(h, h - dr)
    c0, c1 = max(0, -dc), min(w, w - dc)
    if r1 <= r0 or c1 <= c0:
        return np.zeros((levels, levels), np.int64)
    a = levels_img[r0:r1, c0:c1] - 1
    b = levels_img[r0 + dr:r1 + dr, c0 + dc:c1 + dc] - 1
    return np.bincount((a * levels + b).ravel(), minlength=levels * levels).reshape(levels, levels)


def contrast_energy(counts: np.ndarray):
    """graycoprops Contrast and Energy of a co-occurrence matrix (normalised here)."""
    total = counts.sum()
    if total <= 0:
        raise ValueError("empty co-occurrence matrix (image block too small)")
    p = counts / total
    i, j = np.indices(p.shape)
    return float(((i - j) ** 2 * p).sum()), float((p ** 2).sum())


def scoot_features(gray_uint8: np.ndarray, block_shape=None) -> np.ndarray:
    """The 32 SCOOT features (16 blocks x [contrast, energy]) of a grayscale uint8 image.
    Blocks follow the ground truth's size (block_shape), which is the image's own by default."""
    h, w = gray_uint8.shape if block_shape is None else block_shape
    if h < 2 * SCOOT_BLOCKS or w < 2 * SCOOT_BLOCKS:
        raise ValueError(f"SCOOT needs an image of at least {2 * SCOOT_BLOCKS}x{2 * SCOOT_BLOCKS} pixels, got {w}x{h}")
    q = quantise_levels(gray_uint8)
    rows = np.floor(h * np.arange(SCOOT_BLOCKS + 1) / SCOOT_BLOCKS).astype(int)
    cols = np.floor(w * np.arange(SCOOT_BLOCKS + 1) / SCOOT_BLOCKS).astype(int)
    feats = []
    for bi in range(SCOOT_BLOCKS):          # row-major, like the MATLAB loop
        for bj in range(SCOOT_BLOCKS):
            block = q[rows[bi]:rows[bi + 1], cols[bj]:cols[bj + 1]]
            mean_counts = np.mean([glcm(block, off) for off in SCOOT_OFFSETS], axis=0)
            feats.extend(contrast_energy(_round_half_away(mean_counts)))
    return np.array(feats)


def scoot(ground_truth, synthesis) -> float:
    """SCOOT score in (0, 1]; 1 means identical block statistics. Arguments are images (PIL or
    numpy, any channels); the synthesis is resized to the ground truth's size."""
    gt = to_gray_uint8(ground_truth)
    syn = _resize_gray(to_gray_uint8(synthesis), gt.shape)
    v1 = scoot_features(gt)
    v2 = scoot_features(syn)
    return float(1.0 / (1.0 + np.linalg.norm(v1 - v2)))


def ssim(ground_truth, synthesis) -> float:
    """SSIM of the grayscale pair (synthesis resized to the ground truth's size), via pytorch-msssim."""
    import torch
    from pytorch_msssim import ssim as _ssim
    gt = to_gray_uint8(ground_truth)
    syn = _resize_gray(to_gray_uint8(synthesis), gt.shape)
    if min(gt.shape) < 11:
        raise ValueError(f"SSIM needs an image of at least 11x11 pixels, got {gt.shape[1]}x{gt.shape[0]}")
    x = torch.from_numpy(gt.astype(np.float32))[None, None]
    y = torch.from_numpy(syn.astype(np.float32))[None, None]
    return float(_ssim(x, y, data_range=255.0, size_average=True))


def masked_ssim(ground_truth, synthesis, mask) -> float:
    """Mean of the SSIM map (Gaussian window 11, sigma 1.5, as pytorch-msssim) over the pixels where `mask` is
    true: SSIM of one region, e.g. the inside of a face. Same size inputs; mask (H, W) bool."""
    import torch
    import torch.nn.functional as F
    gt = torch.from_numpy(to_gray_uint8(ground_truth).astype(np.float64))[None, None]
    syn = torch.from_numpy(_resize_gray(to_gray_uint8(synthesis), gt.shape[-2:]).astype(np.float64))[None, None]
    coords = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-coords ** 2 / (2 * 1.5 ** 2))
    g = (g / g.sum())
    win = (g[:, None] * g[None, :])[None, None]

    def filt(x):
        return F.conv2d(F.pad(x, (5, 5, 5, 5), mode="reflect"), win)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = filt(gt), filt(syn)
    sxx, syy, sxy = filt(gt * gt) - mx ** 2, filt(syn * syn) - my ** 2, filt(gt * syn) - mx * my
    smap = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    m = torch.from_numpy(np.asarray(mask, bool))
    return float(smap[0, 0][m].mean())


def periodic_energy(gray, model_frame: int, model_size: int = 256, periods=(2, 4, 8)) -> float:
    """Grid-texture score of `gray` (a crop of a sketch), 1 = none, >> 1 = a visible grid.

    A decoder whose upsampling repeats every `period` pixels at the model's resolution puts its
    energy on a lattice of frequencies. `model_frame` is how many picture pixels the model's
    `model_size` frame covered (the sketch engine's global pass covers the picture's longer side), so
    the lattice is placed in the crop's own frequencies. Score: the share of the crop's fine detail
    (minus a Gaussian blur of 1.5 px) on the lattice, divided by the share of lattice bins."""
    import torch

    from .pencil import blur
    a = torch.from_numpy(np.asarray(gray, np.float32) / 255.0)[None, None]
    r = (a - blur(a, 1.5))[0, 0].numpy().astype(np.float64)
    r = r - r.mean()
    h, w = r.shape
    power = np.abs(np.fft.fft2(r)) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(h) * h, np.fft.fftfreq(w) * w, indexing="ij")  # cycles per crop
    lattice = np.zeros(power.shape, bool)
    for period in periods:
        px = period * model_frame / model_size  # that period in picture pixels
        cy, cx = h / px, w / px
        lattice |= (np.abs(np.round(fy / cy) * cy - fy) < 0.5) & (np.abs(np.round(fx / cx) * cx - fx) < 0.5)
    lattice[0, 0] = False
    total = power.sum()
    if total <= 1e-12:
        return 1.0  # a blank crop has no texture at all
    return float((power[lattice].sum() / total) / (lattice.sum() / lattice.size))
