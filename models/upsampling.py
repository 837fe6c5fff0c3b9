"""Resize-conv upsampling (nearest x2, then a 3x3 conv), computed the fast way.

A stride-2 transposed conv gives each output pixel parity its own kernel, which draws a dotted grid on smooth
regions (Odena et al., "Deconvolution and Checkerboard Artifacts", 2016); nearest x2 + 3x3 conv does not, so the
shipped HIDA (`upsample="resize"`) and the lite2 face generator (`g_upsample="resize"`) use it. Computed as written
it convolves the upsampled map: 9 taps per output pixel. Yet each output parity sees only 2x2 input pixels, so the
same function is a ConvTranspose2d(k=4, s=2, p=1) with a tied kernel (4 taps per output pixel, at the input's
resolution): `resize_conv` computes it that way, in training and inference alike (2-2.5x faster on this CPU,
forward and backward, for the same output up to rounding).

`resize_conv_from_transpose` goes the other way for training: the closest resize-conv kernel to a trained
transposed one, so weights trained the old way are a starting point for the new layers.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


# Along one axis, output pixel 2i + p of the resize-conv reads the upsampled pixels 2i + p - 1 .. 2i + p + 1, i.e. the
# input pixels (i-1, i, i) for p = 0 and (i, i, i+1) for p = 1. A ConvTranspose2d(k=4, s=2, p=1) reaches output
# 2i + p from input i' through its kernel tap k = 2i + p - 2i' + 1, so tap k gathers these 3x3 taps:
_TAPS = torch.tensor([[0.0, 0.0, 1.0],    # k=0: p=1 from input i+1  <- tap 2
                      [0.0, 1.0, 1.0],    # k=1: p=0 from input i    <- taps 1, 2
                      [1.0, 1.0, 0.0],    # k=2: p=1 from input i    <- taps 0, 1
                      [1.0, 0.0, 0.0]])   # k=3: p=0 from input i-1  <- tap 0


def tied_transposed_kernel(weight: torch.Tensor) -> torch.Tensor:
    """Conv2d weight (out, in, 3, 3) -> the ConvTranspose2d weight (in, out, 4, 4) of the same resize-conv."""
    m = _TAPS.to(weight)
    return torch.einsum("ka,oiab,lb->iokl", m, weight, m)


def resize_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """conv3x3(nearest_x2(x), weight, bias, padding=1), computed at x's resolution (gradients included)."""
    return F.conv_transpose2d(x, tied_transposed_kernel(weight), bias, stride=2, padding=1)


class ResizeConv(nn.Module):
    """Nearest x2 then a 3x3 conv: the checkerboard-free replacement of ConvTranspose2d(k=4, s=2, p=1)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize_conv(x, self.conv.weight, self.conv.bias)


class NearestUpConv(nn.Sequential):
    """The same layer spelled as the face generator's nn.Sequential(Upsample(x2, nearest), Conv2d 3x3): its
    parameters keep the names ("1.weight", "1.bias") of the checkpoints trained with that Sequential."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_ch, out_ch, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize_conv(x, self[1].weight, self[1].bias)


def _transpose_to_resize_map() -> torch.Tensor:
    """The linear map (9 x 16) from a 4x4 stride-2 transposed kernel to the 3x3 kernel whose
    nearest-x2 + conv output is closest in least squares (on random inputs; channels separate)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, 24, 24, generator=g)
    up = F.interpolate(x, scale_factor=2, mode="nearest")
    basis_out = torch.stack([F.conv2d(up, e.view(1, 1, 3, 3), padding=1).flatten() for e in torch.eye(9)], 1)
    targets = torch.stack([F.conv_transpose2d(x, e.view(1, 1, 4, 4), stride=2, padding=1).flatten()
                           for e in torch.eye(16)], 1)
    return torch.linalg.lstsq(basis_out[100:-100], targets[100:-100]).solution  # (9, 16); borders left out


def resize_conv_from_transpose(weight: torch.Tensor) -> torch.Tensor:
    """ConvTranspose2d weight (in, out, 4, 4) -> Conv2d weight (out, in, 3, 3) of the nearest resize-conv."""
    m = _transpose_to_resize_map().to(weight)
    w = weight.permute(1, 0, 2, 3).reshape(-1, 16)          # (out*in, 16)
    return (w @ m.T).reshape(weight.shape[1], weight.shape[0], 3, 3)
