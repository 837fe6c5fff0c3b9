"""The pix2pix baseline generator.

* `UNetPix2Pix`: pix2pix's `unet_256` generator (Isola et al. 2017): 8 stride-2 convs down,
  8 transposed convs up with skips, photo (3 ch) -> sketch (1 ch, tanh). `ngf=24` gives about
  7.7M parameters, the same size as our lite HIDA, for a fair baseline.
* `NLayerDiscriminator` (the PatchGAN of the sketch and pix2pix training) lives in models/discriminators.py;
  it is re-exported here for older imports.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .discriminators import NLayerDiscriminator  # re-exported for older imports

__all__ = ["UNetPix2Pix", "NLayerDiscriminator"]


class UNetPix2Pix(nn.Module):
    def __init__(self, in_ch: int = 3, out_ch: int = 1, ngf: int = 24):
        super().__init__()
        mult = [1, 2, 4, 8, 8, 8, 8, 8]
        widths = [ngf * m for m in mult]
        self.down = nn.ModuleList()
        prev = in_ch
        for i, w in enumerate(widths):
            layers = [] if i == 0 else [nn.LeakyReLU(0.2, True)]
            layers.append(nn.Conv2d(prev, w, 4, 2, 1, bias=i == 0 or i == 7))
            if 0 < i < 7:
                layers.append(nn.InstanceNorm2d(w))
            self.down.append(nn.Sequential(*layers))
            prev = w
        self.up = nn.ModuleList()
        for i in reversed(range(8)):
            # up block i produces the resolution of down block i-1 (or the output for i == 0)
            cin = widths[i] if i == 7 else 2 * widths[i]
            cout = widths[i - 1] if i > 0 else out_ch
            layers = [nn.ReLU(True), nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=i == 0)]
            if i > 0:
                layers.append(nn.InstanceNorm2d(cout))
                if i >= 5:
                    layers.append(nn.Dropout(0.5))
            else:
                layers.append(nn.Tanh())
            self.up.append(nn.Sequential(*layers))

    def forward(self, photo: torch.Tensor) -> torch.Tensor:
        feats = []
        x = photo
        for block in self.down:
            x = block(x)
            feats.append(x)
        x = self.up[0](feats[7])
        for j, block in enumerate(self.up[1:], start=1):
            x = block(torch.cat([x, feats[7 - j]], 1))
        return x
