import math

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from facesketch.models import metrics


def _sketch_like(size=128, seed=0):
    """White paper with dark strokes and some grey shading."""
    rng = np.random.default_rng(seed)
    im = Image.new("L", (size, size), 255)
    d = ImageDraw.Draw(im)
    for _ in range(25):
        x0, y0, x1, y1 = rng.integers(0, size, 4).tolist()
        d.line([x0, y0, x1, y1], fill=int(rng.integers(0, 120)), width=int(rng.integers(1, 4)))
    d.ellipse([30, 30, 90, 100], outline=40, width=2)
    d.rectangle([70, 70, 110, 90], fill=170)
    return np.asarray(im)


def test_scoot_of_an_image_with_itself_is_one():
    img = _sketch_like()
    assert metrics.scoot(img, img) == 1.0
    rgb = np.repeat(img[..., None], 3, axis=2)
    assert metrics.scoot(img, rgb) == 1.0  # colour input goes through rgb2gray


def test_scoot_decreases_with_degradation():
    gt = _sketch_like()
    rng = np.random.default_rng(1)
    scores = []
    for sigma in (8, 30, 80):
        noisy = np.clip(gt + rng.normal(0, sigma, gt.shape), 0, 255).astype(np.uint8)
        scores.append(metrics.scoot(gt, noisy))
    assert 1.0 > scores[0] > scores[1] > scores[2] > 0.0
    blurred = np.asarray(Image.fromarray(gt).filter(ImageFilter.GaussianBlur(3)))
    assert metrics.scoot(gt, blurred) < 1.0


def test_scoot_known_small_case_by_hand():
    # Ground truth all black: every 2x2 block has only level-1 pairs -> contrast 0, energy 1.
    gt = np.zeros((8, 8), np.uint8)
    # Checkerboard 0/255: in each 2x2 block the four offsets give the pair counts
    # (1,6): 1+0+1+0, (6,1): 1+0+1+0, (6,6): 0+1+0+0, (1,1): 0+0+0+1, so the mean matrix has
    # 0.5, 0.5, 0.25, 0.25, which MATLAB rounds (half away from zero) to 1, 1, 0, 0:
    # p(1,6) = p(6,1) = 0.5 -> contrast (6-1)^2 = 25, energy 0.5.
    checker = (np.indices((8, 8)).sum(0) % 2 * 255).astype(np.uint8)
    feats = metrics.scoot_features(checker)
    np.testing.assert_allclose(feats.reshape(16, 2), [[25.0, 0.5]] * 16)
    np.testing.assert_allclose(metrics.scoot_features(gt).reshape(16, 2), [[0.0, 1.0]] * 16)
    expected = 1.0 / (1.0 + math.sqrt(16 * (25.0 ** 2 + 0.5 ** 2)))
    assert metrics.scoot(gt, checker) == pytest.approx(expected, rel=1e-12)
    # vertical stripes: counts (1,6): 2+1+0+0 -> mean 0.75 -> 1; (1,1), (6,6), (6,1): 0.25 -> 0
    stripes = np.tile(np.array([[0, 255]], np.uint8), (8, 4))
    np.testing.assert_allclose(metrics.scoot_features(stripes).reshape(16, 2), [[25.0, 1.0]] * 16)
    assert metrics.scoot(gt, stripes) == pytest.approx(1.0 / (1.0 + math.sqrt(16 * 625.0)))


def test_scoot_quantisation_and_glcm_match_matlab_conventions():
    # graycomatrix with NumLevels 6 over [0 255]: level = round(v * 5/255) + 1
    v = np.array([[0, 25, 26, 127, 128, 229, 230, 255]], np.uint8)
    assert metrics.quantise_levels(v).tolist() == [[1, 1, 2, 3, 4, 5, 6, 6]]
    lv = np.array([[1, 2], [3, 4]])
    g = metrics.glcm(lv, (-1, 1))  # 45 degrees: pixel (1,0)=3 with its neighbour (0,1)=2
    assert g.sum() == 1 and g[2, 1] == 1


def test_scoot_resizes_synthesis_to_ground_truth():
    gt = _sketch_like(128)
    small = np.asarray(Image.fromarray(gt).resize((64, 64), Image.BICUBIC))
    s = metrics.scoot(gt, small)
    assert 0.0 < s <= 1.0
    with pytest.raises(ValueError):
        metrics.scoot(np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8))


def test_ssim_identity_and_degradation():
    gt = _sketch_like()
    assert metrics.ssim(gt, gt) == pytest.approx(1.0, abs=1e-6)
    blur1 = np.asarray(Image.fromarray(gt).filter(ImageFilter.GaussianBlur(1)))
    blur4 = np.asarray(Image.fromarray(gt).filter(ImageFilter.GaussianBlur(4)))
    s1, s4 = metrics.ssim(gt, blur1), metrics.ssim(gt, blur4)
    assert 1.0 > s1 > s4


def test_gray_conversion_matches_matlab_rgb2gray():
    px = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 200, 30]]], np.uint8)
    # round(0.298936*R + 0.587043*G + 0.114021*B)
    assert metrics.to_gray_uint8(px).tolist() == [[76, 150, 29, 124]]
    assert metrics.to_gray_uint8(np.array([[0.0, 0.5, 1.0]])).tolist() == [[0, 128, 255]]
