"""Manifold projection (KNN + locally-linear weights) and the shadow guide."""
import numpy as np
import torch

from facesketch.models.deepfacedrawing import COMPONENTS, DeepFaceDrawing, lite_config
from facesketch.models.projection import FeatureBank, blend, composite_shadow, feather_mask, knn, lle_weights, shadow_components

torch.set_num_threads(1)


def _bank(n=40, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {c: torch.randn(n, d, generator=g) for c in COMPONENTS}


def test_knn_sorted_nearest_first():
    bank = torch.tensor([[5.0, 0], [1, 0], [3, 0], [0.5, 0], [10, 0]])
    dist, idx = knn(bank, torch.zeros(1, 2), 3)
    assert idx.tolist() == [[3, 1, 2]]
    assert torch.allclose(dist, torch.tensor([[0.25, 1.0, 9.0]]))


def test_weights_sum_to_one_and_reconstruct_points_in_the_span():
    g = torch.Generator().manual_seed(1)
    nb = torch.randn(3, 10, 32, generator=g)                     # 3 queries, K=10, D=32 (full rank)
    true = torch.softmax(torch.randn(3, 10, generator=g), -1)     # convex combination
    q = (true.unsqueeze(-1) * nb).sum(1)
    w = lle_weights(nb, q)
    assert torch.allclose(w.sum(-1), torch.ones(3), atol=1e-6)
    recon = (w.unsqueeze(-1) * nb).sum(1)
    assert (recon - q).norm(dim=-1).max() < 0.05 * q.norm(dim=-1).min()
    # the released demo's variant also sums to one, and it leans on the nearest neighbour
    wo = lle_weights(nb, q, "official")
    assert torch.allclose(wo.sum(-1), torch.ones(3), atol=1e-6)


def test_duplicate_neighbours_do_not_break_the_solve():
    row = torch.randn(1, 8)
    nb = row.repeat(10, 1).unsqueeze(0)                          # all K neighbours identical
    for mode in ("lle", "official"):
        w = lle_weights(nb, torch.randn(1, 8), mode)
        assert torch.isfinite(w).all() and torch.allclose(w.sum(-1), torch.ones(1), atol=1e-6)
    w = lle_weights(nb, row)                                      # query equal to every neighbour
    assert torch.isfinite(w).all() and torch.allclose(w.sum(-1), torch.ones(1), atol=1e-6)
    bank = {c: torch.cat([torch.randn(3, 8), row.repeat(20, 1)]) for c in COMPONENTS}
    fb = FeatureBank({"female": bank})
    proj = fb.project({c: row + 1e-4 for c in COMPONENTS}, "female", 10)
    for c in COMPONENTS:
        assert torch.isfinite(proj[c].projected).all()
        assert torch.allclose(proj[c].projected, row, atol=1e-3)


def test_project_batched_blend_and_gender():
    male, female = _bank(seed=0), _bank(n=30, seed=1)
    fb = FeatureBank({"male": male, "female": female})
    q = {c: torch.randn(2, 16) for c in COMPONENTS}
    pf, pm = fb.project(q, "female", 10), fb.project(q, "male", 10)
    for c in COMPONENTS:
        assert pf[c].indices.shape == (2, 10) and pf[c].weights.shape == (2, 10)
        assert pf[c].indices.max() < 30
        # the batched solve equals the per-query, per-component solve
        d = ((female[c][None] - q[c][:, None]) ** 2).sum(-1)
        order = torch.argsort(d, dim=1, stable=True)[:, :10]
        assert torch.equal(pf[c].indices, order)
        w1 = lle_weights(female[c][order[1]][None], q[c][1:2])
        assert torch.allclose(pf[c].weights[1], w1[0], atol=1e-5)
        assert not torch.allclose(pf[c].projected, pm[c].projected)
    weights = {"eye1": 0.0, "eye2": 1.0, "nose": 0.5, "mouth": 0.0, "remainder": 1.0}
    f = blend(q, pf, weights)
    assert torch.equal(f["eye1"], q["eye1"]) and torch.allclose(f["eye2"], pf["eye2"].projected)
    assert torch.allclose(f["nose"], 0.5 * (q["nose"] + pf["nose"].projected))


def test_from_labels_splits_by_gender():
    bank = {c: torch.arange(10.0)[:, None].repeat(1, 4) for c in COMPONENTS}
    fb = FeatureBank.from_labels(bank, torch.tensor([0, 1] * 5))
    assert fb.size("male") == 5 and fb.size("female") == 5
    assert fb.banks["female"][0, :, 0].tolist() == [1, 3, 5, 7, 9]


def test_feather_mask():
    m = feather_mask(64)
    assert m.shape == (64, 64) and m[32, 32] == 0 and m[0, 0] > 0.95 and m[0, 32] > 0.95
    assert torch.equal(m, m.T) and torch.equal(m, m.flip(0))


def test_shadow_guide_is_the_weighted_decoded_neighbours():
    torch.manual_seed(0)
    model = DeepFaceDrawing(lite_config()).eval()
    bank = {c: torch.randn(12, 256) for c in COMPONENTS}
    fb = FeatureBank({"female": bank})
    with torch.no_grad():
        z = model.encode(torch.rand(1, 1, 256, 256) * 2 - 1)
        proj = fb.project(z, "female", 4)
        comps = shadow_components(model, fb, "female", proj)
        for c in COMPONENTS:
            n = model.cfg.box(c)[2]
            assert comps[c].shape == (1, 1, n, n) and comps[c].min() >= 0 and comps[c].max() <= 1
        # reference for one component, neighbour by neighbour
        pr = proj["nose"]
        dark = torch.zeros(1, 1, 80, 80)
        for i, w in zip(pr.indices[0].tolist(), pr.weights[0].tolist()):
            if w > 0:
                dark += (1 - model.image_decoders["nose"](bank["nose"][i:i + 1])) / 2 * min(w, 0.5)
        assert torch.allclose(comps["nose"], (1 - dark).clamp(0, 1), atol=1e-5)
        guide = composite_shadow(model, comps)
    assert guide.shape == (1, 1, 256, 256) and guide.min() >= 0 and guide.max() <= 0.4 + 1e-6
    # a blank decoder output (all white) gives no guide at all
    white = {c: torch.ones_like(v) for c, v in comps.items()}
    assert composite_shadow(model, white).abs().max() == 0
    # a uniform veil (a decoder that leaves the paper gray) is removed by the haze floor, strokes stay
    veiled = {c: torch.full_like(v, 0.8) for c, v in comps.items()}
    veiled["remainder"][..., 10:12, :] = 0.0
    g = composite_shadow(model, veiled, haze_quantile=0.5)
    assert g[0, 0, 100, 5] < 1e-6 and g[0, 0, 10, 5] > 0.3
