"""The one-shot GPU run (models/gpu_oneshot.py) on a tiny face pack, on the CPU: prepare within a budget, train both
stages from scratch, export, latency; then the state it sends back, carried again, resumes stage 2 until the timer
stops it; and a state whose export travels in the tree is carried as no weights at all."""
import json
import os
import subprocess
import sys

import pytest
import torch
from test_train_face import make_pack

from facesketch.models import gpu_oneshot
from facesketch.models.deepfacedrawing import load_safetensors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_train(oneshot, out, work, *extra):
    cmd = [sys.executable, "-m", "models.gpu_oneshot", "train", "--oneshot", oneshot, "--out", out, "--work", work,
           "--device", "cpu", "--batch", "1", "--log-every", "1", "--latency-configs", "lite2", "--latency-reps", "1",
           "--latency-warmup", "0", *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = os.listdir(out)
    assert len(files) <= 8 and all(os.path.getsize(os.path.join(out, f)) <= 16 << 20 for f in files)
    return proc.stdout, json.load(open(os.path.join(out, "summary.json")))


def test_prepare_train_and_carry_the_state_back(tmp_path, monkeypatch):
    make_pack(str(tmp_path))
    pack = str(tmp_path / "pack")
    none = str(tmp_path / "no-vgg.safetensors")
    common = ["prepare", "--data", pack, "--no-wheel", "--vgg", none]

    # a budget for about half of the 4 photos: an evenly spread part of them, within the budget
    big = str(tmp_path / "big")
    assert gpu_oneshot.main(common + ["--out", big, "--budget-mb", "50"]) == 0
    assert len(json.load(open(os.path.join(big, "index.json")))["items"]) == 4
    budget = os.path.getsize(os.path.join(big, "data.npz")) * 0.6 / (1 << 20)
    small = str(tmp_path / "small")
    assert gpu_oneshot.main(common + ["--out", small, "--budget-mb", f"{budget:.4f}"]) == 0
    index = json.load(open(os.path.join(small, "index.json")))
    assert 1 <= len(index["items"]) < 4 and index["source_rows"][0] == 0
    assert sum(os.path.getsize(os.path.join(small, f)) for f in os.listdir(small)) <= budget * (1 << 20)
    assert index["state"] is None and index["vgg_convs"] is None

    # no state: stage 1, then stage 2, a step each; export and latency come back
    out1 = str(tmp_path / "out1")
    _, summary = run_train(small, out1, str(tmp_path / "work1"), "--steps", "1")
    assert summary["steps"] == {"stage1": 1, "stage2": 1}
    assert {"latency.json", "face_lite.safetensors", "stage1.pt", "stage2.pt", "summary.json"} <= set(summary["files"])
    model, bank, gender, meta = load_safetensors(os.path.join(out1, "face_lite.safetensors"))
    assert model.cfg.name == "lite2" and json.loads(meta["trained_steps"]) == {"stage1": 1, "stage2": 1}
    assert json.load(open(os.path.join(out1, "latency.json")))["lite2"]["fp32"]["median_ms"] > 0
    s2 = torch.load(os.path.join(out1, "stage2.pt"), weights_only=True)
    assert {v.dtype for v in s2["generator"].values()} == {torch.float16} and s2["opt_g"]["state"] == {}

    # what came back is a state to carry again: fp16 weights, no optimizer states; stage 2 resumes at step 1 and
    # runs until the timer's SIGTERM stops it
    again = str(tmp_path / "again")
    with pytest.raises(SystemExit, match="the state alone needs 13"):     # lite2 in fp16: 13 MiB
        gpu_oneshot.main(common + ["--out", again, "--budget-mb", "5", "--state", out1])
    assert gpu_oneshot.main(common + ["--out", again, "--budget-mb", "30", "--state", out1]) == 0
    index = json.load(open(os.path.join(again, "index.json")))
    assert index["state"]["stage1_step"] == 1 and index["state"]["stage2_step"] == 1
    assert index["state"]["from_export"] is None and not index["state"]["disc"]   # --gan-weight 0: never trained
    out2 = str(tmp_path / "out2")
    stdout, summary = run_train(again, out2, str(tmp_path / "work2"), "--minutes", "0.1")
    assert "stage 2 stopped at step" in stdout and summary["steps"]["stage1"] == 1 and summary["steps"]["stage2"] > 1
    assert "stage1.pt" not in summary["files"]
    load_safetensors(os.path.join(out2, "face_lite.safetensors"))

    # the state whose export travels in the tree: no weights carried, rebuilt from the export there
    monkeypatch.setattr(gpu_oneshot, "travels", lambda path: True)
    ex = str(tmp_path / "ex")
    assert gpu_oneshot.main(common + ["--out", ex, "--budget-mb", "30", "--state", out1, "--export-file",
                                      os.path.join(out1, "face_lite.safetensors")]) == 0
    index = json.load(open(os.path.join(ex, "index.json")))
    assert index["state"]["from_export"] and not os.path.exists(os.path.join(ex, "state.safetensors"))
    gpu_oneshot.restore_state(ex, index["state"], str(tmp_path / "state3"))
    got = torch.load(str(tmp_path / "state3" / "stage2.pt"), weights_only=True)["generator"]
    assert all(torch.allclose(got[k], v.float(), atol=1e-3) for k, v in s2["generator"].items())
