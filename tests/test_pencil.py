import numpy as np
import pytest
from PIL import Image, ImageDraw

from facesketch.models.pencil import pencil_sketch, rough_sketch


def _face_like(size=128):
    im = Image.new("RGB", (size, size), (200, 190, 180))
    d = ImageDraw.Draw(im)
    d.ellipse([24, 16, 104, 116], fill=(225, 180, 150))     # face
    d.ellipse([44, 50, 58, 58], fill=(40, 30, 30))           # eyes
    d.ellipse([70, 50, 84, 58], fill=(40, 30, 30))
    d.line([64, 60, 60, 80], fill=(150, 100, 90), width=2)  # nose
    d.line([50, 92, 78, 92], fill=(120, 40, 40), width=4)   # mouth
    return np.asarray(im)


def test_pencil_sketch_is_white_paper_with_dark_lines_at_edges():
    img = _face_like()
    out = pencil_sketch(img)
    assert out.shape == img.shape[:2] and out.dtype == np.uint8
    # flat regions stay light, the eyes' outlines become dark lines
    assert np.median(out) > 180
    assert out[48:60, 42:60].min() < 100
    # a flat image gives blank paper, grayscale and RGBA inputs work
    flat = pencil_sketch(np.full((64, 64, 3), 255, np.uint8))
    assert flat.min() > 200
    assert pencil_sketch(img[..., 0]).shape == img.shape[:2]
    rgba = np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], 2)
    assert pencil_sketch(rgba).shape == img.shape[:2]


def test_pencil_is_deterministic_and_seeded():
    img = _face_like()
    assert np.array_equal(pencil_sketch(img, seed=1), pencil_sketch(img, seed=1))
    assert not np.array_equal(pencil_sketch(img, seed=1), pencil_sketch(img, seed=2))


def test_rough_sketch_is_sparse_thick_and_jittered():
    img = _face_like()
    out = rough_sketch(img)
    assert out.shape == img.shape[:2] and out.dtype == np.uint8
    ink = out < 128
    assert 0.005 < ink.mean() < 0.25          # sparse strokes, not shading
    assert np.percentile(out, 50) == 255       # mostly untouched paper
    # strokes are at least 2 px thick somewhere (a 2x2 all-ink square exists)
    sq = ink[:-1, :-1] & ink[1:, :-1] & ink[:-1, 1:] & ink[1:, 1:]
    assert sq.any()
    # the jitter depends on the seed
    assert not np.array_equal(rough_sketch(img, seed=0), rough_sketch(img, seed=5))
    assert np.array_equal(rough_sketch(img, seed=5), rough_sketch(img, seed=5))


def test_filters_reject_bad_input():
    with pytest.raises(ValueError):
        pencil_sketch(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError):
        rough_sketch(np.zeros((10, 10, 2), np.uint8))


def test_dodge_sketch_is_paper_on_flat_areas_and_dark_at_edges():
    from facesketch.models.pencil import dodge_sketch
    flat = np.full((100, 80, 3), 120, np.uint8)
    assert dodge_sketch(flat).min() >= 254          # grey / (1 - blur(1 - grey)) = 1 where nothing changes
    step = np.full((100, 80, 3), 230, np.uint8)
    step[:, 40:] = 40                                # a dark shape on light ground
    out = dodge_sketch(step)
    assert out.shape == (100, 80) and out.dtype == np.uint8
    assert out[:, 41].mean() < 120 and out[:, 5].mean() > 250 and out[:, 75].mean() > 200
