import math

import numpy as np
import pytest
from PIL import Image

from facesketch.models.data import face_template as ft


def test_boxes_at_512_are_deepfacedrawing_boxes():
    assert ft.crop_boxes(512) == {"eye1": (108, 156, 128), "eye2": (255, 156, 128),
                                  "nose": (182, 232, 160), "mouth": (169, 301, 192)}
    assert ft.crop_boxes(512, include_remainder=True)[""] == (0, 0, 512)


def test_boxes_scale_with_canvas():
    b = ft.crop_boxes(256)
    assert b["eye1"] == (54, 78, 64)
    assert b["eye2"] == (128, 78, 64)  # 127.5 rounds half up
    assert b["nose"] == (91, 116, 80)
    assert b["mouth"] == (85, 151, 96)  # 84.5 -> 85, 150.5 -> 151
    assert ft.crop_boxes(1024)["mouth"] == (338, 602, 384)
    # every box stays inside the canvas
    for canvas in (128, 250, 256, 512, 1000):
        for x, y, s in ft.crop_boxes(canvas).values():
            assert 0 <= x and 0 <= y and x + s <= canvas and y + s <= canvas


def test_template_points_derive_from_boxes_and_scale():
    p = ft.template_points(512)
    np.testing.assert_allclose(p[0], (172, 220))        # eye1 box centre
    np.testing.assert_allclose(p[1], (319, 220))        # eye2 box centre
    np.testing.assert_allclose(p[2], (245.5, 312))      # eye midpoint, nose box centre height
    np.testing.assert_allclose(p[3], (245.5, 397))      # eye midpoint, mouth box centre height
    np.testing.assert_allclose(ft.template_points(256), p / 2)
    # each point lies inside its component's box
    for pt, key in zip(p, ft.COMPONENTS):
        x, y, s = ft.BOXES_512[key]
        assert x < pt[0] < x + s and y < pt[1] < y + s


def _similarity(angle_deg, scale, tx, ty):
    a = math.radians(angle_deg)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx],
                     [scale * math.sin(a), scale * math.cos(a), ty]])


def test_similarity_recovers_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 300, size=(6, 2))
    m_true = _similarity(17.0, 0.63, 40.0, -12.5)
    dst = ft.transform_points(src, m_true)
    m = ft.similarity_from_points(src, dst)
    np.testing.assert_allclose(m, m_true, atol=1e-9)
    assert ft.matrix_scale(m) == pytest.approx(0.63)


def test_similarity_is_least_squares_under_noise_and_never_reflects():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, size=(40, 2))
    m_true = _similarity(-30.0, 2.0, 5.0, 7.0)
    dst = ft.transform_points(src, m_true) + rng.normal(0, 0.5, size=src.shape)
    m = ft.similarity_from_points(src, dst)
    np.testing.assert_allclose(m[:, :2], m_true[:, :2], atol=0.01)
    np.testing.assert_allclose(m[:, 2], m_true[:, 2], atol=0.6)
    # a mirrored point set cannot be matched by a reflection: the determinant stays positive
    mirrored = src * np.array([-1.0, 1.0])
    assert np.linalg.det(ft.similarity_from_points(src, mirrored)[:, :2]) > 0


def test_similarity_rejects_degenerate_input():
    with pytest.raises(ValueError):
        ft.similarity_from_points([[1, 1], [1, 1]], [[0, 0], [2, 2]])
    with pytest.raises(ValueError):
        ft.similarity_from_points([[1, 1], [2, 2]], [[0, 0]])


def test_warp_moves_a_dot_where_the_matrix_says():
    img = np.zeros((64, 80), np.uint8)
    img[20:24, 30:34] = 255  # centre of the bright square: (32, 22) in continuous coordinates
    m = _similarity(90.0, 1.5, 60.0, 5.0)
    out = ft.warp(img, m, (100, 90))
    assert out.shape == (90, 100) and out.dtype == np.uint8
    ys, xs = np.nonzero(out > 128)
    centre = np.array([xs.mean() + 0.5, ys.mean() + 0.5])
    np.testing.assert_allclose(centre, ft.transform_points([32.0, 22.0], m), atol=0.75)


def test_align_face_puts_key_points_on_template():
    pts = np.array([[100.0, 120.0], [160.0, 110.0], [133.0, 150.0], [137.0, 185.0]])
    img = Image.new("RGB", (300, 300), (90, 90, 90))
    out, m = ft.align_face(img, pts, canvas=256)
    assert out.size == (256, 256)
    err = np.linalg.norm(ft.transform_points(pts, m) - ft.template_points(256), axis=1)
    assert err.max() < 6.0
