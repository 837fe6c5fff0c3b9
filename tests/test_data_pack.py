import json
import os

import numpy as np
import pytest

from facesketch.models.data import pack as fspack
from facesketch.models.data.depth_render import depth_to_uint8, rasterise_depth


def test_rasterise_depth_covers_triangles_and_puts_near_bright():
    # a square made of two triangles, left edge near (z=0), right edge far (z=10)
    verts = np.array([[8, 8, 0], [24, 8, 10], [24, 24, 10], [8, 24, 0]], float)
    tris = np.array([[0, 1, 2], [0, 2, 3]])
    d = rasterise_depth(verts, tris, 32)
    assert d.shape == (32, 32) and d.dtype == np.float32
    inside = d[8:24, 8:24]
    assert (d[:8] == 0).all() and (d[:, 24:] == 0).all()  # background stays black
    assert (inside > 0).sum() >= 15 * 16                  # no holes along the shared diagonal
    row = inside[8]
    assert np.all(np.diff(row[row > 0]) < 0)              # brightness falls as z grows
    assert d.max() <= 1.0 and inside[:, 0].min() > 0.9


def test_rasterise_depth_keeps_the_nearest_surface():
    front = [[4, 4, 0], [28, 4, 0], [16, 28, 0]]
    back = [[4, 4, 5], [28, 4, 5], [16, 28, 5]]
    d = rasterise_depth(np.array(front + back, float), np.array([[3, 4, 5], [0, 1, 2]]), 32)
    assert d[10, 16] == pytest.approx(1.0)


def _write_tiny_pack(tmp_path, size=16):
    rng = np.random.default_rng(0)
    items = []
    for k, split in enumerate(["train", "train", "test"]):
        item_id = f"photo1_image{k:04d}"
        photo = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        sketch = np.full((size, size), 255, np.uint8)
        sketch[4:6] = 0
        depth = depth_to_uint8(np.linspace(0, 1, size * size).reshape(size, size))
        fspack.save_item_images(str(tmp_path), item_id, photo, sketch, depth)
        items.append({"id": item_id, "split": split, "style": k % 3, "gender": k % 2,
                      "source": f"photo1/image{k:04d}", "points": [[1, 2], [3, 4], [5, 6], [7, 8]],
                      "face_found": k != 1, "mesh_row": -1, "sketch_offset": [2.5, None, 14.0][k]})
    fspack.write_index(str(tmp_path), size, items, {}, ["a", "b", "c", "d"])
    return items


def test_pack_round_trip(tmp_path):
    _write_tiny_pack(tmp_path)
    train = fspack.load_pack(str(tmp_path), "train")
    assert len(train) == 2 and train.ids == ["photo1_image0000", "photo1_image0001"]
    assert train.photos.shape == (2, 16, 16, 3) and train.photos.dtype == np.uint8
    assert train.sketches.shape == (2, 16, 16) and train.depths.shape == (2, 16, 16)
    assert train.sketches[0, 4:6].max() < 60 and train.sketches[0, 8:].min() > 200
    assert list(train.styles) == [0, 1] and list(train.genders) == [0, 1]
    assert list(train.face_found) == [True, False]
    assert train.sketch_offsets[0] == 2.5 and np.isnan(train.sketch_offsets[1])
    assert train.landmarks.shape == (2, 4, 2) and train.landmarks[0, 3, 1] == 8
    test = fspack.load_pack(str(tmp_path), "test")
    assert len(test) == 1 and test.styles[0] == 2
    assert len(fspack.load_pack(str(tmp_path), "all")) == 3


def test_pack_errors_are_plain(tmp_path):
    with pytest.raises(FileNotFoundError, match="models.data.fs2k"):
        fspack.load_pack(str(tmp_path / "nowhere"), "train")
    _write_tiny_pack(tmp_path)
    with pytest.raises(ValueError, match="split"):
        fspack.load_pack(str(tmp_path), "val")
    idx = json.load(open(os.path.join(tmp_path, "index.json")))
    idx["version"] = 99
    json.dump(idx, open(os.path.join(tmp_path, "index.json"), "w"))
    with pytest.raises(ValueError, match="version"):
        fspack.load_pack(str(tmp_path), "train")


def test_fs2k_naming_and_mesh_helpers():
    from facesketch.models.data import fs2k
    assert fs2k.sketch_path_for("/r", "photo1/image0110") == "/r/sketch/sketch1/sketch0110.jpg"
    assert fs2k.sketch_path_for("/r", "photo3/image0007") == "/r/sketch/sketch3/sketch0007.jpg"
    tris = fs2k.closing_triangles()
    assert tris.shape[1] == 3 and tris.min() >= 0 and tris.max() < 468
    assert all(len(set(t)) == 3 for t in tris.tolist())
    # key points: eye contours' means, nose tip, mouth
    mesh = np.zeros((468, 2))
    mesh[fs2k.RIGHT_EYE_CONTOUR] = (10, 20)
    mesh[fs2k.LEFT_EYE_CONTOUR] = (30, 20)
    mesh[fs2k.NOSE_TIP] = (20, 30)
    mesh[fs2k.MOUTH_OUTER] = (20, 40)
    np.testing.assert_allclose(fs2k.key_points_from_mesh(mesh), [[10, 20], [30, 20], [20, 30], [20, 40]])


def test_fs2k_without_mediapipe_names_the_environment(capsys):
    try:
        import mediapipe  # noqa: F401
        pytest.skip("mediapipe is installed in this environment")
    except ImportError:
        pass
    from facesketch.models.data import fs2k
    assert fs2k.main(["--root", "/nonexistent", "--out", "/nonexistent-out"]) == 2
    err = capsys.readouterr().err
    assert "data-preparation environment" in err and "install.py --prep" in err


def _naive_depth(verts, tris, size):
    """Per-pixel reference: for every pixel centre, the nearest covering triangle."""
    z = verts[:, 2]
    near = (z.max() - z) / (z.max() - z.min())
    out = np.zeros((size, size))
    for yy in range(size):
        for xx in range(size):
            px, py = xx + 0.5, yy + 0.5
            for a, b, c in tris:
                (ax, ay), (bx, by), (cx, cy) = verts[a, :2], verts[b, :2], verts[c, :2]
                det = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
                if abs(det) < 1e-12:
                    continue
                l0 = ((by - cy) * (px - cx) + (cx - bx) * (py - cy)) / det
                l1 = ((cy - ay) * (px - cx) + (ax - cx) * (py - cy)) / det
                l2 = 1 - l0 - l1
                if min(l0, l1, l2) >= -1e-9:
                    out[yy, xx] = max(out[yy, xx], l0 * near[a] + l1 * near[b] + l2 * near[c])
    return out


def test_rasterise_depth_matches_naive_reference_on_random_mesh():
    rng = np.random.default_rng(3)
    verts = np.concatenate([rng.uniform(-4, 28, (12, 2)), rng.uniform(0, 9, (12, 1))], 1)
    tris = rng.integers(0, 12, (10, 3))
    np.testing.assert_allclose(rasterise_depth(verts, tris, 24), _naive_depth(verts, tris, 24), atol=1e-6)
