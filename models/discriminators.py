"""Discriminators and GAN losses of the training loops (the generators are in hida.py, pix2pix.py,
deepfacedrawing.py).

* `NLayerDiscriminator`: PatchGAN as in HIDA's training (k4, pad 2, instance norm), width and depth from the
  arguments (HIDA: ndf=64, n_layers=4; a lighter one on CPU). Used by the sketch and pix2pix training.
* `PatchDiscriminator`, `MultiscaleDiscriminator`: pix2pixHD's, returning every layer's output for feature
  matching. Used by the face model's stage 2.
* Losses: `d_hinge` (HIDA's hinge loss with its squared mean-gap penalty), `lsgan`, `feature_matching`.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class NLayerDiscriminator(nn.Module):
    def __init__(self, in_ch: int = 2, ndf: int = 64, n_layers: int = 4):
        super().__init__()
        layers = [nn.Conv2d(in_ch, ndf, 4, 2, 2), nn.LeakyReLU(0.2, True)]
        nf = ndf
        for n in range(1, n_layers):
            prev, nf = nf, min(nf * 2, 512)
            stride = 2 if n < n_layers - 1 else 1
            layers += [nn.Conv2d(prev, nf, 4, stride, 2), nn.InstanceNorm2d(nf), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(nf, 1, 4, 1, 2)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """pix2pixHD NLayerDiscriminator returning every layer's output (for feature matching)."""

    def __init__(self, in_ch: int, ndf: int = 32, n_layers: int = 3):
        super().__init__()
        blocks = [nn.Sequential(nn.Conv2d(in_ch, ndf, 4, 2, 2), nn.LeakyReLU(0.2, True))]
        nf = ndf
        for n in range(1, n_layers):
            prev, nf = nf, min(nf * 2, 256)
            blocks.append(nn.Sequential(nn.Conv2d(prev, nf, 4, 2, 2), nn.InstanceNorm2d(nf), nn.LeakyReLU(0.2, True)))
        prev, nf = nf, min(nf * 2, 256)
        blocks.append(nn.Sequential(nn.Conv2d(prev, nf, 4, 1, 2), nn.InstanceNorm2d(nf), nn.LeakyReLU(0.2, True)))
        blocks.append(nn.Sequential(nn.Conv2d(nf, 1, 4, 1, 2)))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        feats = []
        for b in self.blocks:
            x = b(x)
            feats.append(x)
        return feats


class MultiscaleDiscriminator(nn.Module):
    """`num_d` PatchDiscriminators, each on the input downsampled once more; a list of their feature lists."""

    def __init__(self, in_ch: int, ndf: int = 32, n_layers: int = 3, num_d: int = 2):
        super().__init__()
        self.ds = nn.ModuleList(PatchDiscriminator(in_ch, ndf, n_layers) for _ in range(num_d))

    def forward(self, x):
        out = []
        for i, d in enumerate(self.ds):
            if i:
                x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
            out.append(d(x))
        return out


def d_hinge(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss + HIDA's hinge_panalty (lambda 2) on the squared gap of the mean scores."""
    loss = F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    gap = fake.mean() - real.mean()
    return loss + 2.0 * 0.5 * (gap * gap) ** 2


def lsgan(outputs, real: bool):
    """Least-squares GAN loss over MultiscaleDiscriminator outputs (the last feature of each scale)."""
    return sum(F.mse_loss(o[-1], torch.full_like(o[-1], 1.0 if real else 0.0)) for o in outputs) / len(outputs)


def feature_matching(fake, real):
    """L1 between the discriminator's intermediate features of fake and (detached) real inputs."""
    loss = 0.0
    for f_scale, r_scale in zip(fake, real):
        for f, r in zip(f_scale[:-1], r_scale[:-1]):
            loss = loss + F.l1_loss(f, r.detach())
    return loss / len(fake)
