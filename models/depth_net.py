"""A small U-Net that predicts a face depth map from a photo, so inference needs no 3D face fitter.

Trained on the data pack's depth maps (rendered from MediaPipe's face mesh at data-preparation
time). Input: aligned photo in [-1, 1], Bx3x256x256. Output: depth in [0, 1], Bx1x256x256,
0 (black) off the face, as HIDA's 3DDFA depth maps are.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclasses.dataclass(frozen=True)
class DepthNetConfig:
    widths: tuple[int, ...] = (16, 32, 64, 96, 128)   # encoder widths, each stage halves the resolution
    name: str = "lite"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "DepthNetConfig":
        return DepthNetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(min(8, cout // 4), cout),
                         nn.LeakyReLU(0.2, inplace=True))


class DepthNet(nn.Module):
    def __init__(self, config: DepthNetConfig | None = None):
        super().__init__()
        self.config = cfg = config or DepthNetConfig()
        w = cfg.widths
        self.down = nn.ModuleList([_block(3 if i == 0 else w[i - 1], w[i], stride=2) for i in range(len(w))])
        self.up = nn.ModuleList([_block(w[i + 1] + w[i], w[i]) for i in reversed(range(len(w) - 1))])
        self.head = nn.Conv2d(w[0], 1, 3, 1, 1)

    def forward(self, photo: torch.Tensor) -> torch.Tensor:
        skips = []
        x = photo
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        x = F.interpolate(x, size=photo.shape[-2:], mode="bilinear", align_corners=False)
        return torch.sigmoid(self.head(x))
