"""Sketch to face on any drawing (`align=auto`): through a real `facesketch serve` over ZeroMQ, with the shipped
face and locator weights. The sketches are FS2K test-split samples (tests/data/fs2k_samples), which neither
model was trained on."""
import os

import numpy as np
import pytest
import torch
from PIL import Image as PILImage, ImageDraw

from facesketch.models.paths import weights_path
from facesketch_client import BackendError, Client, Image
from facesketch_client.protocol import ErrorCode

from conftest import ROOT

torch.set_num_threads(1)
FACE_WEIGHTS, LOCATOR_WEIGHTS = weights_path("face_lite.safetensors"), weights_path("locator.safetensors")
pytestmark = pytest.mark.skipif(not (os.path.isfile(FACE_WEIGHTS) and os.path.isfile(LOCATOR_WEIGHTS)),
                                reason="no shipped face or locator weights")
SAMPLES = os.path.join(ROOT, "tests", "data", "fs2k_samples", "sketch")


def sample(name="sketch1/sketch1396.jpg") -> PILImage.Image:
    return PILImage.open(os.path.join(SAMPLES, name)).convert("L")


def rgba(img: PILImage.Image) -> Image:
    return Image(img.width, img.height, "RGBA8", img.convert("RGBA").tobytes())


def as_array(out: Image) -> np.ndarray:
    return np.frombuffer(out.tobytes(), np.uint8).reshape(out.height, out.width, 4)


@pytest.fixture
def client(backend):
    c = Client(backend.address, timeout_s=60)
    yield c
    c.close()


def paste(canvas_size, parts):
    """White canvas with each (sketch, scale, (x, y)) pasted in; returns the canvas and the pasted boxes."""
    canvas = PILImage.new("L", canvas_size, 255)
    boxes = []
    for sk, scale, (x, y) in parts:
        small = sk.resize((round(sk.width * scale), round(sk.height * scale)), PILImage.LANCZOS)
        canvas.paste(small, (x, y))
        boxes.append((x, y, small.width, small.height))
    return canvas, boxes


def test_a_small_sketch_in_a_big_white_canvas_gets_its_face_where_it_was_drawn(client):
    canvas, [(x, y, w, h)] = paste((1024, 768), [(sample(), 0.6, (620, 340))])
    result = client.run("face", {"image": rgba(canvas)}, {"gender": "male"})
    face = as_array(result["face"])
    assert face.shape == (768, 1024, 4)
    alpha = face[..., 3]
    ys, xs = np.nonzero(alpha > 128)
    # the face covers the pasted sketch's face and stays near it; the rest of the layer is transparent
    assert xs.min() >= x - 0.3 * w and xs.max() <= x + 1.3 * w, (xs.min(), xs.max(), x, w)
    assert ys.min() >= y - 0.3 * h and ys.max() <= y + 1.3 * h, (ys.min(), ys.max(), y, h)
    assert (alpha[:, : x - w // 2] == 0).all() and (alpha[: y - h // 2] == 0).all()
    inner = face[y + h // 3: y + 2 * h // 3, x + w // 3: x + 2 * w // 3]
    assert (inner[..., 3] == 255).all()
    skin = inner[..., :3].reshape(-1, 3).mean(0)
    assert skin.max() < 235 and skin[0] > skin[2] + 10, skin     # a face (warm skin), not paper or lines
    assert result.notes and "drew the face at" in result.notes[0], result.notes


def test_outside_paper_fills_the_layer_and_keeps_the_face(client):
    canvas, [(x, y, w, h)] = paste((600, 500), [(sample("sketch1/sketch0790.jpg"), 0.8, (60, 40))])
    transparent = as_array(client.run("face", {"image": rgba(canvas)}, {"gender": "female"})["face"])
    paper = as_array(client.run("face", {"image": rgba(canvas)}, {"gender": "female", "outside": "paper"})["face"])
    assert (paper[..., 3] == 255).all()
    assert (paper[450:, 500:, :3] > 240).all()                  # far from the face: paper
    inside = transparent[..., 3] == 255
    assert np.abs(paper[inside, :3].astype(int) - transparent[inside, :3]).max() <= 1


def test_random_strokes_are_no_face_with_a_sentence_that_says_what_to_draw(client):
    rng = np.random.default_rng(3)
    img = PILImage.new("L", (400, 300), 255)
    d = ImageDraw.Draw(img)
    for _ in range(25):
        pts = [tuple(p) for p in rng.uniform(0, [400, 300], (4, 2))]
        d.line(pts, fill=0, width=int(rng.integers(1, 4)))
    with pytest.raises(BackendError) as e:
        client.run("face", {"image": rgba(img)})
    assert e.value.code == ErrorCode.NO_FACE
    assert "eyes" in str(e.value) and "template" in str(e.value)
    # the service goes on: the next request works
    canvas, _ = paste((500, 500), [(sample(), 1.0, (120, 100))])
    assert "face" in client.run("face", {"image": rgba(canvas)})


def test_two_faces_draw_the_larger_and_say_so(client):
    # the smaller face is still over a tenth of the layer's width: the locator's smallest
    canvas, [small_box, big_box] = paste((800, 500), [(sample("sketch1/sketch1107.jpg"), 0.8, (30, 150)),
                                                     (sample(), 1.3, (420, 60))])
    result = client.run("face", {"image": rgba(canvas)})
    alpha = as_array(result["face"])[..., 3]
    ys, xs = np.nonzero(alpha > 128)
    assert xs.min() > 330, xs.min()                          # the big face, not the small one
    assert "2 faces" in result.notes[0] and "largest" in result.notes[0], result.notes


def test_align_template_gives_the_template_path_unchanged(client):
    """align=template is the face canvas's behaviour: the whole layer is the template, fitted and centred. The
    reference is computed here from the model's own parts, the way the engine did it before it could align."""
    from facesketch.backend.engines.face import fit_to_canvas, restore_size, sketch_gray
    from facesketch.models.deepfacedrawing import load_safetensors
    from facesketch.models.projection import FeatureBank, blend
    sk = sample().resize((300, 240))
    layer = np.asarray(sk.convert("RGBA"))
    got = as_array(client.run("face", {"image": rgba(sk)}, {"align": "template", "gender": "male"})["face"])
    model, bank_rows, gender_rows, _ = load_safetensors(FACE_WEIGHTS, "cpu")
    bank = FeatureBank.from_labels(bank_rows, gender_rows, "cpu")
    gray, box = fit_to_canvas(sketch_gray(layer), model.cfg.canvas)
    with torch.inference_mode():
        lat = model.encode(((torch.from_numpy(gray) - 0.5) * 2)[None, None])
        feats = blend(lat, bank.project(lat, "male", 10), {p: 1.0 for p in ("eye1", "eye2", "nose", "mouth",
                                                                            "remainder")})
        rgb = ((model.generate(feats)[0].float().clamp(-1, 1) + 1) * 0.5).permute(1, 2, 0).numpy()
    want = (restore_size(rgb, box, layer.shape[:2]) * 255 + 0.5).astype(np.uint8)
    assert (got[..., 3] == 255).all()
    assert np.abs(got[..., :3].astype(int) - want).max() <= 2    # thread counts may differ between processes
