"""Manifold projection and shadow guidance for DeepFaceDrawing (the paper's manifold projection and shadow guidance), on the device, batched.

Projection: for every component, the K nearest neighbours of the sketch's latent in the per-gender feature
bank, locally-linear weights that sum to one, and a per-component blend between the projected latent
(1 = the most plausible face) and the raw one (0 = follow my lines).

Weights: standard locally-linear embedding weights with the sum-to-one constraint (the paper), with a ridge
scaled to the data so coincident neighbours (duplicate rows in a bank) never make the system singular. The
released demo's variant (an extra x10 row that pulls the solution toward one neighbour, which it picks
arbitrarily) is available as mode="official"; we sort the neighbours by distance so that one is the nearest
and the result is deterministic.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from .deepfacedrawing import COMPONENTS, DeepFaceDrawing

SUM_ROW_WEIGHT = 10.0   # the official extra row of 10s
RIDGE = 1e-3            # relative to the mean squared neighbour offset


@dataclasses.dataclass
class Projection:
    """Result for one component: neighbour indices (B,K) sorted by distance, weights (B,K) summing to one,
    the projected latent (B,D)."""

    indices: torch.Tensor
    weights: torch.Tensor
    projected: torch.Tensor


def knn(bank: torch.Tensor, query: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared L2 distances to every row; -> (distances (..., B, k), indices (..., B, k)), nearest first.

    bank (..., N, D), query (..., B, D). Ties are broken by the lower row index (stable), so the result does
    not depend on the device.
    """
    k = min(k, bank.shape[-2])
    d = (query.unsqueeze(-2) - bank.unsqueeze(-3)).pow(2).sum(-1) if bank.shape[-2] * query.shape[-2] <= 4096 \
        else (query.pow(2).sum(-1, keepdim=True) - 2 * query @ bank.transpose(-1, -2)
              + bank.pow(2).sum(-1).unsqueeze(-2)).clamp_min(0)
    dist, idx = torch.sort(d, dim=-1, stable=True)
    return dist[..., :k], idx[..., :k]


def lle_weights(neighbours: torch.Tensor, query: torch.Tensor, mode: str = "lle") -> torch.Tensor:
    """neighbours (..., K, D) sorted nearest first, query (..., D) -> weights (..., K) that sum exactly to 1.

    mode "lle" (default, the paper): minimise ||q - sum w_i v_i||^2 subject to sum w = 1, i.e. solve
    (C + ridge) w = 1 with the local Gram matrix C_ij = (v_i - q).(v_j - q), then normalise.
    mode "official" (the released demo code): w = [1 - sum x, x], x minimising
    ||(q - v0) - sum x_i (v_i - v0)||^2 + ||10 sum x||^2, which pulls the result toward the nearest neighbour v0.
    Both add a ridge of RIDGE x the mean diagonal, so coincident neighbours (duplicate bank rows, a query equal
    to a neighbour) never make the system singular.
    """
    K = neighbours.shape[-2]
    if K == 1:
        return torch.ones(neighbours.shape[:-1], dtype=neighbours.dtype, device=neighbours.device)
    v = neighbours.double()
    q = query.double().unsqueeze(-2)
    if mode == "lle":
        Z = v - q                                                    # (..., K, D)
        C = Z @ Z.transpose(-1, -2)
        eye = torch.eye(K, dtype=C.dtype, device=C.device)
        scale = C.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-6)[..., None, None]
        w = torch.linalg.solve(C + RIDGE * scale * eye, torch.ones(C.shape[:-1], dtype=C.dtype, device=C.device))
        w = w / w.sum(-1, keepdim=True)
    elif mode == "official":
        v0 = v[..., :1, :]
        A = v[..., 1:, :] - v0                                       # (..., K-1, D)
        G = A @ A.transpose(-1, -2)
        ones = torch.ones(K - 1, K - 1, dtype=G.dtype, device=G.device)
        eye = torch.eye(K - 1, dtype=G.dtype, device=G.device)
        scale = G.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-6)[..., None, None]
        x = torch.linalg.solve(G + SUM_ROW_WEIGHT ** 2 * ones + RIDGE * scale * eye,
                               (A @ (q - v0).transpose(-1, -2)).squeeze(-1))
        w = torch.cat([1 - x.sum(-1, keepdim=True), x], dim=-1)
    else:
        raise ValueError(f"unknown projection mode {mode!r}")
    return w.to(neighbours.dtype)


class FeatureBank:
    """Per-gender, per-component latent banks stacked as (5, N_g, D) on one device."""

    def __init__(self, per_gender: Mapping[str, Mapping[str, np.ndarray | torch.Tensor]], device="cpu"):
        self.banks: dict[str, torch.Tensor] = {}
        for gender, comps in per_gender.items():
            rows = [torch.as_tensor(np.asarray(comps[c]) if not torch.is_tensor(comps[c]) else comps[c])
                    for c in COMPONENTS]
            self.banks[gender] = torch.stack([r.float() for r in rows]).to(device)

    @classmethod
    def from_labels(cls, bank: Mapping[str, torch.Tensor], gender: torch.Tensor, device="cpu") -> "FeatureBank":
        """One bank with a 0/1 gender label per row (0 male, 1 female) -> per-gender banks."""
        g = torch.as_tensor(gender).long().cpu()
        per = {}
        for name, value in (("male", 0), ("female", 1)):
            sel = (g == value).nonzero().squeeze(1)
            if len(sel):
                per[name] = {c: torch.as_tensor(bank[c]).cpu().float()[sel] for c in COMPONENTS}
        return cls(per, device)

    def genders(self) -> list[str]:
        return list(self.banks)

    def size(self, gender: str) -> int:
        return self.banks[gender].shape[1]

    def project(self, latents: Mapping[str, torch.Tensor], gender: str, k: int,
                mode: str = "lle") -> dict[str, Projection]:
        """Project every component at once: latents {component: (B,D)} -> {component: Projection}."""
        if gender not in self.banks:
            raise KeyError(f"no feature bank for gender {gender!r} (have {', '.join(self.banks)})")
        bank = self.banks[gender]                                   # (5, N, D)
        q = torch.stack([latents[c].float() for c in COMPONENTS])   # (5, B, D)
        _, idx = knn(bank, q, k)                                    # (5, B, K)
        nb = torch.gather(bank.unsqueeze(1).expand(-1, q.shape[1], -1, -1), 2,
                          idx.unsqueeze(-1).expand(-1, -1, -1, bank.shape[-1]))  # (5, B, K, D)
        w = lle_weights(nb, q, mode)                                # (5, B, K)
        p = (w.unsqueeze(-1) * nb).sum(-2)
        return {c: Projection(idx[i], w[i], p[i]) for i, c in enumerate(COMPONENTS)}

    def neighbours(self, gender: str, component: str, indices: torch.Tensor) -> torch.Tensor:
        return self.banks[gender][COMPONENTS.index(component)][indices]


def blend(latents: Mapping[str, torch.Tensor], projections: Mapping[str, Projection],
          weights: Mapping[str, float]) -> dict[str, torch.Tensor]:
    """f = w_c * projected + (1 - w_c) * raw, per component."""
    return {c: weights[c] * projections[c].projected + (1.0 - weights[c]) * latents[c].float() for c in COMPONENTS}


# ---------------------------------------------------------------------------------------------- shadows

def feather_mask(size: int, device="cpu", border: float = 0.22) -> torch.Tensor:
    """(size,size) mask, 0 in the interior rising smoothly to 1 at the borders (stands in for heat/<key>.jpg)."""
    t = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size
    edge = torch.minimum(t, 1 - t) / border                       # 0 at the border, >=1 inside
    ramp = 1 - torch.clamp(edge, 0, 1)
    ramp = ramp * ramp * (3 - 2 * ramp)                           # smoothstep
    return torch.maximum(ramp[:, None], ramp[None, :])


@torch.no_grad()
def shadow_components(model: DeepFaceDrawing, bank: FeatureBank, gender: str,
                      projections: Mapping[str, Projection]) -> dict[str, torch.Tensor]:
    """Per component: 1 - sum_i min(w_i, .5) * (1 - dec(v_i))/2 over neighbours with w_i > 0 -> (B,1,n,n) in [0,1]
    (1 = white). All neighbours of a component are decoded in one batch."""
    out = {}
    for c in COMPONENTS:
        pr = projections[c]
        B, K = pr.indices.shape
        nb = bank.neighbours(gender, c, pr.indices.reshape(-1))              # (B*K, D)
        dec = model.image_decoders[c](nb).float()                            # (B*K, 1, n, n)
        dec = dec.view(B, K, *dec.shape[1:])
        w = pr.weights.clamp(min=0, max=0.5).to(dec.dtype)                   # negative weights are skipped
        dark = ((1 - dec) / 2 * w[:, :, None, None, None]).sum(1)
        out[c] = (1 - dark).clamp(0, 1)
    return out


def composite_shadow(model: DeepFaceDrawing, shadows: Mapping[str, torch.Tensor],
                     haze_quantile: float | None = None) -> torch.Tensor:
    """Composite component shadows into one guide: (B,1,S,S) darkness in [0,1] (0 = nothing drawn).

    As the official GUI: the remainder shadow is lightened inside the component boxes, each component
    shadow is feathered at its edges and placed on a white canvas, darkness = clip(sum 0.5*dark_k +
    dark_remainder), and the displayed background is 1 - 0.4 * darkness. With haze_quantile, that quantile
    of the darkness is taken as blank paper and subtracted (not in the official code).
    """
    cfg = model.cfg
    rem = shadows["remainder"]
    B, device = rem.shape[0], rem.device
    lighten = torch.ones(cfg.canvas, cfg.canvas, device=device)
    total = torch.zeros(B, 1, cfg.canvas, cfg.canvas, device=device)
    for c in COMPONENTS[:-1]:
        x, y, n = cfg.box(c)
        mask = feather_mask(n, device)
        region = lighten[y:y + n, x:x + n]
        lighten[y:y + n, x:x + n] = torch.minimum(region, 1 - 0.2 * (1 - mask))
        dark = (1 - shadows[c]) * (1 - mask)
        total[:, :, y:y + n, x:x + n] += 0.5 * dark
    total += (1 - rem) * lighten
    total = total.clamp(0, 1)
    if haze_quantile is not None:
        # decoders that leave the paper light gray would veil the whole canvas: lift that floor (per face)
        floor = torch.quantile(total.flatten(1), haze_quantile, dim=1)[:, None, None, None]
        total = ((total - floor) / (1 - floor).clamp_min(1e-3)).clamp(0, 1)
    return 0.4 * total
