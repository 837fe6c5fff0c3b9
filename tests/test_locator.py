"""The sketch face locator's geometry, targets, samples and training step (models.locator,
models.data.locator_samples, models.train_locator), on a small synthetic landmarks index."""
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from facesketch.models import locator as L
from facesketch.models.data import locator_samples as S

torch.set_num_threads(1)
COLOURS = [40, 80, 120, 160, 200]  # one grey per landmark, so a dot can be told from the others


@pytest.fixture
def index_dir(tmp_path):
    """Three 'sketches' of 200x240 with a dot of its own grey at each of the five landmarks."""
    root = tmp_path / "data"
    (root / "sk").mkdir(parents=True)
    items = []
    for k in range(3):
        pts = np.array([[70, 100], [130, 98], [101, 135], [78, 165], [124, 166]], float) + k * 4
        img = Image.new("L", (200, 240), 255)
        d = ImageDraw.Draw(img)
        for p, c in zip(pts, COLOURS):
            d.ellipse([p[0] - 4, p[1] - 4, p[0] + 4, p[1] + 4], fill=c)
        d.rectangle([0, 236, 199, 239], fill=0)  # full black ink: ink_from_gray's stretch of faint drawings stays off
        img.save(root / "sk" / f"s{k}.png")
        items.append({"id": f"fs2k_s{k}", "dataset": "fs2k", "split": "train", "photo": f"sk/s{k}.png",
                      "sketch": f"sk/s{k}.png", "style": 0, "gender": 0, "size": [200, 240],
                      "points": pts.tolist()})
    out = tmp_path / "landmarks"
    out.mkdir()
    (out / "index.json").write_text(json.dumps({"version": 1, "point_names": [], "roots": {"fs2k": str(root)},
                                                "items": items}))
    return str(out)


def test_crop_matrix_puts_the_eyes_level_at_the_crop_position():
    pts = np.array([[100, 200], [160, 260], [120, 260], [100, 300], [140, 320]], float)
    m = L.crop_matrix(pts)
    le, re_ = L.apply(m, pts[:2])
    assert np.allclose((le + re_) / 2, [L.INPUT / 2, L.CROP_EYES_Y])
    assert abs(le[1] - re_[1]) < 1e-9 and math.isclose(re_[0] - le[0], L.CROP_IOD)


def test_targets_decode_back_to_the_points():
    pts = np.array([[40.3, 50.7], [81.2, 49.9], [60.6, 72.1], [47.5, 90.2], [75.8, 91.3]])
    tg = S.targets([[pts]])
    out = torch.full((L.N_OUT, L.GRID, L.GRID), -20.0)
    heat = tg["heat"][0]
    out[L.CH_HEAT] = torch.logit(heat[1:].clamp(1e-6, 1 - 1e-6))
    for (b, ch, y, x), v in zip(tg["reg_idx"].tolist(), tg["reg_val"].tolist()):
        out[ch, y, x] = v
    got, scores = L.decode_points(out)
    assert np.abs(got - pts).max() < 1e-4 and (scores > 0.99).all()


def test_samples_keep_landmarks_on_the_drawn_dots(index_dir):
    src = S.Sources(index_dir, None, "train")
    sampler = S.Sampler(src, seed=5, negatives=0.0, second_face=0.0, extra=0.0, erase=0.0)
    checked = 0
    for _ in range(30):
        # the sample without line-weight changes or paper, to read the dots' positions back
        face_ink, pts = sampler._place("find" if checked % 2 else "refine")
        iod = np.hypot(*(pts[1] - pts[0]))
        if iod < 30 or not ((pts > 6) & (pts < L.INPUT - 6)).all():
            continue
        # a dot is under every landmark: the dot drawn for that landmark, or, in a mirrored sample, the dot of
        # its mirror landmark (the subject's other eye is now on the image's left); left stays image-left
        values = np.array([face_ink[int(p[1]), int(p[0])] for p in pts])
        straight = np.array([1 - c / 255 for c in COLOURS])
        mirrored = straight[S.FLIP_ORDER]
        assert np.abs(values - straight).max() < 0.08 or np.abs(values - mirrored).max() < 0.08, values
        assert pts[0, 0] < pts[1, 0] and pts[3, 0] < pts[4, 0]
        checked += 1
    assert checked >= 10


def test_negative_samples_have_no_faces_and_positive_ones_have_one_or_two(index_dir):
    sampler = S.Sampler(S.Sources(index_dir, None, "train"), seed=1, negatives=0.5, second_face=0.5)
    counts = [len(sampler.sample()[1]) for _ in range(40)]
    assert set(counts) <= {0, 1, 2} and 0 in counts and 1 in counts


def test_one_training_step_lowers_the_loss_on_a_fixed_batch(index_dir):
    from facesketch.models.train_locator import losses
    sampler = S.Sampler(S.Sources(index_dir, None, "train"), seed=2)
    batch = [sampler.sample() for _ in range(4)]
    x = torch.from_numpy(np.stack([b[0] for b in batch])[:, None])
    tg = S.targets([b[1] for b in batch])
    torch.manual_seed(0)
    model = L.SketchFaceLocator()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    first = None
    for _ in range(5):
        ls = losses(model(x), tg)
        total = sum(ls.values())
        first = float(total.detach()) if first is None else first
        opt.zero_grad()
        total.backward()
        opt.step()
    assert float(sum(losses(model(x), tg).values()).detach()) < first


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = L.SketchFaceLocator().eval()
    path = str(tmp_path / "locator.safetensors")
    L.save(model, path, 0.42)
    loc = L.load(path)
    assert loc.threshold == pytest.approx(0.42)
    x = torch.rand(1, 1, L.INPUT, L.INPUT)
    with torch.no_grad():
        assert (loc.model(x) - model(x)).abs().max() < 0.05   # fp16 weights


def test_ink_from_gray_takes_out_the_paper_and_stretches_faint_lines_but_not_a_blank_page():
    g = np.full((100, 100), 0.8, np.float32)          # grey paper
    g[40:60, 10:90] = 0.6                              # a faint pencil band
    ink = L.ink_from_gray(g)
    assert ink[0, 0] == 0 and ink[50, 50] > 0.6        # paper -> no ink; the faint band near full ink
    noise = np.clip(1 - np.abs(np.random.default_rng(0).normal(0, 0.01, (100, 100))), 0, 1).astype(np.float32)
    assert L.ink_from_gray(noise).max() < 0.1          # a blank scan's grain is not blown up into strokes


def test_a_systematic_misalignment_removed_from_the_truth_leaves_only_the_random_error():
    """eval_locator's --systematic: predictions that are the truth moved by one similarity in the template frame
    have an error against the truth, and none against the truth moved by that map."""
    from facesketch.models.data.face_template import alignment_matrix
    from facesketch.models.data.landmarks import key_points
    from facesketch.models.eval_locator import error_against_moved_truth
    shift = np.array([[1.02, 0.0, 3.0], [0.0, 1.02, -1.0], [0, 0, 1]])    # in the 256 template
    rng = np.random.default_rng(0)
    cases = []
    for _ in range(5):
        truth = np.array([[100, 120], [160, 118], [131, 150], [110, 180], [152, 181]], float) + rng.normal(0, 3, (5, 2))
        mt = np.vstack([alignment_matrix(key_points(truth), 256), [0, 0, 1]])
        c = np.linalg.inv(mt) @ shift @ mt
        pred = truth @ c[:2, :2].T + c[:2, 2]
        cases.append((truth, pred, mt, float(np.hypot(*(truth[1] - truth[0])))))
    before, after = error_against_moved_truth(cases, shift)
    assert before > 0.03 and after < 1e-9
