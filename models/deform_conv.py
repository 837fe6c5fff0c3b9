"""Modulated deformable convolution (DCNv2) in plain, vectorised PyTorch.

Same tensor layout and boundary rule as `torchvision.ops.deform_conv2d` and CharlesShang's DCNv2
CUDA kernel, so HIDA's released weights work unchanged:

* offset [B, 2*G*kh*kw, Ho, Wo]: for deformable group g and kernel point k = i*kw + j, channel
  g*2*kh*kw + 2*k is the row shift (dy) and the next one the column shift (dx);
* mask   [B, G*kh*kw, Ho, Wo]: channel g*kh*kw + k;
* the input channels are split into G contiguous groups;
* bilinear sampling where every corner outside the image counts as zero, so a sample outside
  (-1, H) x (-1, W) is zero.

How: build the sampled "columns" [B, C*kh*kw, Ho*Wo] with four gathers (one per bilinear corner),
scale by the mask, then one matmul with the weight. No Python loop over pixels.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def deform_conv2d(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  stride: int = 1, padding: int = 1, dilation: int = 1,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    b, c, h, w = x.shape
    out_ch, c_w, kh, kw = weight.shape
    if c_w != c:
        raise ValueError(f"weight expects {c_w} input channels, input has {c}")
    k = kh * kw
    ho = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    wo = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    groups = offset.shape[1] // (2 * k)
    if groups * 2 * k != offset.shape[1] or c % groups:
        raise ValueError(f"offset has {offset.shape[1]} channels: not 2*G*{k} with G dividing {c}")
    if offset.shape[2:] != (ho, wo):
        raise ValueError(f"offset is {tuple(offset.shape[2:])}, output is {(ho, wo)}")
    cg = c // groups
    n = k * ho * wo

    # Sampling positions p = p0 + pk + offset, shape [B, G, K, Ho, Wo].
    off = offset.view(b, groups, k, 2, ho, wo).to(x.dtype)
    dev = x.device
    base_y = (torch.arange(ho, device=dev, dtype=x.dtype) * stride - padding).view(1, 1, 1, ho, 1)
    base_x = (torch.arange(wo, device=dev, dtype=x.dtype) * stride - padding).view(1, 1, 1, 1, wo)
    ki = torch.arange(kh, device=dev, dtype=x.dtype).repeat_interleave(kw) * dilation
    kj = torch.arange(kw, device=dev, dtype=x.dtype).repeat(kh) * dilation
    py = base_y + ki.view(1, 1, k, 1, 1) + off[:, :, :, 0]
    px = base_x + kj.view(1, 1, k, 1, 1) + off[:, :, :, 1]

    y0 = torch.floor(py)
    x0 = torch.floor(px)
    ly, lx = py - y0, px - x0
    y0 = y0.long()
    x0 = x0.long()
    flat = x.reshape(b, groups, cg, h * w)
    cols = x.new_zeros(b, groups, cg, n)
    for dy, dx, wgt in ((0, 0, (1 - ly) * (1 - lx)), (0, 1, (1 - ly) * lx),
                        (1, 0, ly * (1 - lx)), (1, 1, ly * lx)):
        yy, xx = y0 + dy, x0 + dx
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        idx = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).view(b, groups, 1, n)
        val = flat.gather(3, idx.expand(b, groups, cg, n))
        cols = cols + val * (wgt * inside).view(b, groups, 1, n)
    if mask is not None:
        cols = cols * mask.view(b, groups, 1, n).to(x.dtype)
    # [B, G, Cg, K, L] -> [B, C*K, L] with channel-major order, as weight.view(O, C*K) expects.
    cols = cols.view(b, c * k, ho * wo)
    out = torch.matmul(weight.view(out_ch, c * k), cols)
    if bias is not None:
        out = out + bias.view(1, out_ch, 1)
    return out.view(b, out_ch, ho, wo)


class DCN(nn.Module):
    """DCNv2 layer as HIDA saves it: `weight`, `bias` and the zero-initialised `conv_offset_mask`.

    conv_offset_mask predicts 3*G*kh*kw channels: the first 2*G*kh*kw are the offsets, the last
    G*kh*kw pass through a sigmoid to become the modulation mask.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 1, dilation: int = 1, deformable_groups: int = 2):
        super().__init__()
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.kernel_size = (kernel_size, kernel_size)
        self.deformable_groups = deformable_groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        k = kernel_size * kernel_size
        self.conv_offset_mask = nn.Conv2d(in_channels, 3 * deformable_groups * k, kernel_size, stride=stride,
                                          padding=padding, dilation=dilation, bias=True)
        bound = 1.0 / math.sqrt(in_channels * k)
        nn.init.uniform_(self.weight, -bound, bound)
        # Zero offsets and mask 0.5 at the start: training begins as a plain (halved) convolution.
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self.conv_offset_mask(x)
        n_off = 2 * self.deformable_groups * self.kernel_size[0] * self.kernel_size[1]
        offset, mask = o[:, :n_off], torch.sigmoid(o[:, n_off:])
        return deform_conv2d(x, offset, self.weight, self.bias, self.stride, self.padding, self.dilation, mask)
