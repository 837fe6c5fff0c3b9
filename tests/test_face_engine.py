"""The `face` engine: readiness, input handling, determinism, size round trip, per-component blends.

With the shipped weights (models/weights/face_lite.safetensors) the tests run on them. Without them, the
mechanics are checked on a fixture file built here from an untrained model (never served: the engine
refuses to run without the shipped file, which the first test checks).
"""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from facesketch.backend.engines.base import EngineError, JobContext, weights_path
from facesketch.backend.engines.face import ENGINE, fit_to_canvas, sketch_gray
from facesketch.models.deepfacedrawing import COMPONENTS, DeepFaceDrawing, lite_config, save_safetensors

torch.set_num_threads(1)
SHIPPED = weights_path("face_lite.safetensors")  # honours FACESKETCH_WEIGHTS_DIR
DATA = os.path.join(os.path.dirname(__file__), "data")


def test_not_ready_without_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESKETCH_WEIGHTS_DIR", str(tmp_path))
    engine = ENGINE()
    ready, reason = engine.readiness()
    assert not ready and "face_lite.safetensors" in reason and "train" in reason
    with pytest.raises(EngineError) as e:
        engine.run({"image": np.full((8, 8, 4), 255, np.uint8)}, engine.validate_params({}), ["face"], JobContext())
    assert e.value.code == "not_ready"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    if os.path.isfile(SHIPPED):
        yield ENGINE()
        return
    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    model = DeepFaceDrawing(lite_config())
    g = torch.Generator().manual_seed(1)
    bank = {c: torch.randn(24, 256, generator=g).numpy() for c in COMPONENTS}
    save_safetensors(model, str(d / "face_lite.safetensors"), bank, np.array([0, 1] * 12, np.uint8))
    old = os.environ.get("FACESKETCH_WEIGHTS_DIR")
    os.environ["FACESKETCH_WEIGHTS_DIR"] = str(d)
    yield ENGINE()
    if old is None:
        del os.environ["FACESKETCH_WEIGHTS_DIR"]
    else:
        os.environ["FACESKETCH_WEIGHTS_DIR"] = old


def rough_sketch_layer(size=(256, 256)):
    path = os.path.join(DATA, "rough_sketch.png")
    if os.path.isfile(path):
        img = Image.open(path).convert("RGBA").resize(size)
    else:
        from PIL import ImageDraw
        img = Image.new("RGBA", size, (255, 255, 255, 255))
        d = ImageDraw.Draw(img)
        w, h = size
        d.ellipse([0.22 * w, 0.15 * h, 0.78 * w, 0.95 * h], outline=(0, 0, 0, 255), width=2)
        d.ellipse([0.28 * w, 0.36 * h, 0.42 * w, 0.42 * h], outline=(0, 0, 0, 255), width=2)
        d.ellipse([0.56 * w, 0.36 * h, 0.70 * w, 0.42 * h], outline=(0, 0, 0, 255), width=2)
        d.line([(0.49 * w, 0.45 * h), (0.47 * w, 0.6 * h), (0.52 * w, 0.6 * h)], fill=(0, 0, 0, 255), width=2)
        d.arc([0.38 * w, 0.66 * h, 0.62 * w, 0.76 * h], 0, 180, fill=(0, 0, 0, 255), width=2)
    return np.asarray(img).copy()


def run(engine, layer, outputs=("face",), **params):
    params.setdefault("align", "template")  # these tests are about the template canvas (test_face_align.py: auto)
    return engine.run({"image": layer}, engine.validate_params(params), list(outputs), JobContext())


def test_transparent_layer_equals_the_same_strokes_on_white():
    white = rough_sketch_layer()
    transparent = white.copy()
    transparent[..., 3] = 255 - white[..., :3].min(-1)   # strokes opaque, paper transparent
    transparent[..., :3] = 0
    a, b = sketch_gray(white), sketch_gray(transparent)
    assert np.abs(a - b).max() < 2 / 255


def test_fit_to_canvas_keeps_aspect_with_white_padding():
    gray = np.zeros((100, 200), np.float32)
    out, box = fit_to_canvas(gray, 256)
    assert box == (0, 64, 256, 128)
    assert (out[:64] == 1).all() and (out[192:] == 1).all() and out[64:192].max() < 1e-6


def test_deterministic_and_size_round_trip(engine):
    layer = rough_sketch_layer((300, 420))            # any size, not square
    out1 = run(engine, layer, ("face", "shadow"))
    out2 = run(engine, layer, ("face", "shadow"))
    for name in ("face", "shadow"):
        assert out1[name].shape == (420, 300, 4)
        np.testing.assert_array_equal(out1[name], out2[name])
    face = out1["face"]
    assert face.dtype == np.float32 and face.min() >= 0 and face.max() <= 1 and (face[..., 3] == 1).all()
    shadow = out1["shadow"]
    assert (shadow[..., :3] == 0).all() and shadow[..., 3].max() <= 0.4 + 1e-3 and shadow[..., 3].max() > 0


def test_empty_layer_is_a_clear_error(engine):
    with pytest.raises(EngineError) as e:
        run(engine, np.zeros((0, 10, 4), np.uint8))
    assert e.value.code == "empty_image"


def test_one_blend_weight_changes_mostly_its_own_region(engine):
    layer = rough_sketch_layer()
    base = run(engine, layer, blend_mouth=1.0)["face"][..., :3]
    moved = run(engine, layer, blend_mouth=0.0)["face"][..., :3]
    diff = np.abs(base - moved).sum(-1)
    assert diff.sum() > 0
    x, y, n = lite_config().box("mouth")
    m = 16  # the generator spreads a change a little beyond the box
    inside = diff[max(0, y - m):y + n + m, max(0, x - m):x + n + m].sum()
    assert inside / diff.sum() > 0.6
    # the master weight scales every part: master 0 equals all five blends at 0
    zero = {name: 0.0 for name in ("blend_left_eye", "blend_right_eye", "blend_nose", "blend_mouth", "blend_remainder")}
    np.testing.assert_array_equal(run(engine, layer, master=0.0)["face"], run(engine, layer, **zero)["face"])
