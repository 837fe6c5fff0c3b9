"""Registering a sketch onto a reference drawing of the same face (models.data.sketch_register), and the
locator's training samples taking the registered landmarks (models.data.locator_samples)."""
import json

import numpy as np
from PIL import Image, ImageDraw

from facesketch.models.data import locator_samples as S
from facesketch.models.data import sketch_register as R
from facesketch.models.data.face_template import template_points

SIDE = 256


def face_drawing(move=np.eye(3), width=2) -> np.ndarray:
    """A line drawing of a face on the 256 template (head oval, eyes, brows, nose, mouth), moved by `move`."""
    p = template_points(SIDE)
    iod = p[1, 0] - p[0, 0]
    shapes = [("ellipse", p[0], 0.28 * iod, 0.12 * iod), ("ellipse", p[1], 0.28 * iod, 0.12 * iod),
              ("ellipse", (p[0] + p[1]) / 2 + [0, 0.35 * iod], 1.3 * iod, 1.75 * iod),
              ("line", [p[0] + [-0.3 * iod, -0.3 * iod], p[0] + [0.3 * iod, -0.35 * iod]]),
              ("line", [p[1] + [-0.3 * iod, -0.35 * iod], p[1] + [0.3 * iod, -0.3 * iod]]),
              ("line", [p[2] + [-0.05 * iod, -0.6 * iod], p[2], p[2] + [-0.2 * iod, 0.05 * iod]]),
              ("line", [p[3] + [-0.4 * iod, 0], p[3] + [0, 0.06 * iod], p[3] + [0.4 * iod, 0]])]
    img = Image.new("L", (SIDE, SIDE), 255)
    d = ImageDraw.Draw(img)

    def mv(q):
        q = np.asarray(q, float)
        return tuple(move[:2, :2] @ q + move[:2, 2])
    for s in shapes:
        if s[0] == "ellipse":
            c, rx, ry = s[1], s[2], s[3]
            t = np.linspace(0, 2 * np.pi, 48)
            d.line([mv(c + [rx * np.cos(a), ry * np.sin(a)]) for a in t], fill=0, width=width)
        else:
            d.line([mv(q) for q in s[1]], fill=0, width=width)
    return np.asarray(img)


def five_points() -> np.ndarray:
    p = template_points(SIDE)
    iod = p[1, 0] - p[0, 0]
    return np.stack([p[0], p[1], p[2], p[3] - [0.4 * iod, 0], p[3] + [0.4 * iod, 0]])


def test_a_sketch_drawn_off_its_reference_gets_its_own_landmarks():
    move = R._similarity(1.04, 3.0, (128, 140))
    move[:2, 2] += (7.0, -5.0)                       # drawn 7 px right, 5 up, a little bigger and tilted
    pts = five_points()
    moved = pts @ move[:2, :2].T + move[:2, 2]
    own, fit = R.register_item(R.Registration(), face_drawing(move, width=3), face_drawing(), pts)
    iod = pts[1, 0] - pts[0, 0]
    assert own is not None and fit["ncc"] > 0.5
    assert np.linalg.norm(own - moved, axis=1).mean() < 0.03 * iod          # 1.5 px here
    assert np.linalg.norm(pts - moved, axis=1).mean() > 0.1 * iod           # the photo's points were far off


def test_a_sketch_of_something_else_is_not_registered():
    rng = np.random.default_rng(3)
    img = Image.new("L", (SIDE, SIDE), 255)
    d = ImageDraw.Draw(img)
    for _ in range(40):
        d.line([tuple(rng.uniform(0, SIDE, 2)) for _ in range(2)], fill=0, width=2)
    own, fit = R.register_item(R.Registration(), np.asarray(img), face_drawing(), five_points())
    assert own is None and fit["ncc"] < R.MIN_NCC


def test_training_samples_take_the_sketch_s_own_landmarks_where_registered(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    Image.fromarray(face_drawing()).save(root / "a.png")
    photo_pts, own_pts = five_points(), five_points() + [4.0, -2.0]
    items = [{"id": "fs2k_a", "dataset": "fs2k", "split": "train", "photo": "a.png", "sketch": "a.png",
              "style": 1, "gender": 0, "size": [SIDE, SIDE], "points": photo_pts.tolist(),
              "sketch_points": own_pts.tolist()}]
    (tmp_path / "index.json").write_text(json.dumps({"version": 1, "point_names": [], "roots": {"fs2k": str(root)},
                                                     "items": items}))
    own = S.Sources(str(tmp_path), None, "train")
    photo = S.Sources(str(tmp_path), None, "train", artist_points="photo")
    np.testing.assert_allclose(own.entries[0][1], own_pts)
    np.testing.assert_allclose(photo.entries[0][1], photo_pts)
