"""Resize-conv upsampling (nearest x2, then a 3x3 conv) and its exact fast form for inference.

A stride-2 transposed conv gives each output pixel parity its own kernel, which draws a dotted grid on smooth
regions (Odena et al., "Deconvolution and Checkerboard Artifacts", 2016); nearest x2 + 3x3 conv does not, so the
shipped HIDA (`upsample="resize"`) and the lite2 face generator (`g_upsample="resize"`) train with it. Run as
written it convolves the upsampled map: 9 taps per output pixel. Yet each output parity sees only 2x2 input pixels,
so the same function is a ConvTranspose2d(k=4, s=2, p=1) whose kernel is tied (4 taps per output pixel, at the
input's resolution): `fuse_resize_convs` swaps that in for inference, with the same output up to rounding.

`resize_conv_from_transpose` goes the other way for training: the closest resize-conv kernel to a trained
transposed one, so weights trained the old way are a starting point for the new layers.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ResizeConv(nn.Module):
    """Nearest x2 then a 3x3 conv: the checkerboard-free replacement of ConvTranspose2d(k=4, s=2, p=1)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


# Along one axis, output pixel 2i + p of the resize-conv reads the upsampled pixels 2i + p - 1 .. 2i + p + 1, i.e. the
# input pixels (i-1, i, i) for p = 0 and (i, i, i+1) for p = 1. A ConvTranspose2d(k=4, s=2, p=1) reaches output
# 2i + p from input i' through its kernel tap k = 2i + p - 2i' + 1, so tap k gathers these 3x3 taps:
_TAPS = torch.tensor([[0.0, 0.0, 1.0],    # k=0: p=1 from input i+1  <- tap 2
                      [0.0, 1.0, 1.0],    # k=1: p=0 from input i    <- taps 1, 2
                      [1.0, 1.0, 0.0],    # k=2: p=1 from input i    <- taps 0, 1
                      [1.0, 0.0, 0.0]])   # k=3: p=0 from input i-1  <- tap 0


def transpose_from_resize_conv(conv: nn.Conv2d) -> nn.ConvTranspose2d:
    """A 3x3, stride-1, padding-1 Conv2d applied after nearest x2 -> the ConvTranspose2d(4, 2, 1) equal to both."""
    if conv.kernel_size != (3, 3) or conv.stride != (1, 1) or conv.padding != (1, 1) or conv.groups != 1 \
            or conv.dilation != (1, 1) or conv.padding_mode != "zeros":
        raise ValueError(f"not a plain 3x3 resize-conv: {conv}")
    w = conv.weight.detach()
    m = _TAPS.to(w)
    k = torch.einsum("ka,oiab,lb->oikl", m, w, m)            # (out, in, 4, 4)
    up = nn.ConvTranspose2d(conv.in_channels, conv.out_channels, 4, 2, 1, bias=conv.bias is not None)
    up = up.to(device=w.device, dtype=w.dtype)
    with torch.no_grad():
        up.weight.copy_(k.permute(1, 0, 2, 3))               # ConvTranspose2d keeps (in, out, kh, kw)
        if conv.bias is not None:
            up.bias.copy_(conv.bias.detach())
    return up


def _is_nearest_x2(m: nn.Module) -> bool:
    return isinstance(m, nn.Upsample) and m.mode == "nearest" and m.size is None and \
        float(m.scale_factor if not isinstance(m.scale_factor, tuple) else m.scale_factor[0]) == 2.0 and \
        (not isinstance(m.scale_factor, tuple) or len(set(m.scale_factor)) == 1)


def fuse_resize_convs(model: nn.Module) -> nn.Module:
    """Replace every ResizeConv and every nn.Sequential(Upsample(nearest, x2), Conv2d 3x3) in `model` (in place)
    by the equal transposed conv. For inference: the fused modules no longer train like the originals."""
    for name, child in list(model.named_children()):
        if isinstance(child, ResizeConv):
            setattr(model, name, transpose_from_resize_conv(child.conv))
        elif isinstance(child, nn.Sequential) and len(child) == 2 and _is_nearest_x2(child[0]) \
                and isinstance(child[1], nn.Conv2d):
            try:
                setattr(model, name, transpose_from_resize_conv(child[1]))
            except ValueError:
                fuse_resize_convs(child)
        else:
            fuse_resize_convs(child)
    return model


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
