"""Face training end to end on a tiny synthetic pack: stage 1, stage 2, resume, stale latents, export, load."""
import os
import signal

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from facesketch.models.data.pack import save_item_images, write_index
from facesketch.models.deepfacedrawing import COMPONENTS, load_safetensors
from facesketch.models.train_face import main


def make_pack(root, n=4, size=256):
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        sk = Image.new("L", (size, size), 255)
        d = ImageDraw.Draw(sk)
        d.ellipse([60 + i, 40, 196 - i, 230], outline=0, width=2)
        d.line([(90, 100), (120, 100)], fill=0, width=2)
        d.line([(140, 100), (170, 100)], fill=0, width=2)
        photo = (rng.random((size, size, 3)) * 60 + 100).astype(np.uint8)
        save_item_images(root, f"t{i}", photo, np.asarray(sk), np.zeros((size, size), np.uint8))
        items.append({"id": f"t{i}", "split": "train", "style": i % 3, "gender": i % 2, "image_name": f"x/{i}",
                      "points": [[0, 0]] * 4, "face_found": True, "mesh_row": -1, "source": "synthetic test"})
    write_index(root, size, items, {}, ("a", "b", "c", "d"))


def test_train_both_stages_resume_and_export(tmp_path):
    pack, state = str(tmp_path / "pack"), str(tmp_path / "state")
    make_pack(pack)
    common = ["--data", pack, "--out", state, "--log-every", "1", "--sample-every", "2", "--batch", "1"]
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    assert main(common + ["--stage", "1", "--steps", "1"]) == 0
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers
    assert main(common + ["--stage", "1", "--steps", "2", "--resume"]) == 0
    assert torch.load(os.path.join(state, "stage1.pt"), weights_only=True)["step"] == 2
    assert main(common + ["--stage", "2", "--steps", "1"]) == 0
    assert main(common + ["--stage", "2", "--steps", "2", "--resume"]) == 0
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers
    assert torch.load(os.path.join(state, "stage2.pt"), weights_only=True)["step"] == 2
    assert os.path.isfile(os.path.join(state, "samples", "s2_000002.png"))
    assert [r.split("\t")[0] for r in open(os.path.join(state, "log_stage2.tsv")).read().splitlines()] == ["step", "1", "2"]
    latents = torch.load(os.path.join(state, "latents.pt"), weights_only=True)
    assert latents["source"]["stage1_step"] == 2
    out = str(tmp_path / "face_lite.safetensors")
    assert main(["--out", state, "--export", out]) == 0
    model, bank, gender, meta = load_safetensors(out)
    n_variants = len(latents["eye1"]) // 4
    assert n_variants >= 1 and bank["nose"].shape == (4 * n_variants, 256)
    assert gender.tolist()[:4] == [1, 0, 1, 0]   # FS2K gender 1 = male -> bank label 0
    assert '"stage2": 2' in meta["trained_steps"]

    # stage 1 trained further (here: a step and other encoder weights written into its checkpoint): the latents
    # are stale; export refuses them, stage 2 re-encodes them when it starts
    s1_path = os.path.join(state, "stage1.pt")
    s1 = torch.load(s1_path, weights_only=True)
    s1["step"] = 3
    s1["model"] = {k: v + 0.01 if k.startswith("encoders.") and v.is_floating_point() else v
                   for k, v in s1["model"].items()}
    torch.save(s1, s1_path)
    with pytest.raises(SystemExit, match="run stage 2"):
        main(["--out", state, "--export", out])
    assert main(common + ["--stage", "2", "--steps", "2", "--resume"]) == 0   # no step to make: only re-encodes
    fresh = torch.load(os.path.join(state, "latents.pt"), weights_only=True)
    assert fresh["source"]["stage1_step"] == 3 and not torch.equal(fresh["eye1"], latents["eye1"])
    assert "re-encoding" in open(os.path.join(state, "log.txt")).read()
    assert main(["--out", state, "--export", out]) == 0


def test_sigterm_writes_a_checkpoint_and_stops(tmp_path):
    """Stopping a long run (SIGTERM, Ctrl-C) keeps its progress: a checkpoint at the step reached, then exit 0."""
    import signal
    import subprocess
    import sys
    import time
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    pack, state = str(tmp_path / "pack"), str(tmp_path / "state")
    make_pack(pack)
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
