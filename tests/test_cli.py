"""The command line as a user runs it: `facesketch ping / face / sketchify`, in-process and against a
real backend, with the shipped weights."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, free_port

from facesketch.models.paths import weights_path

ROUGH = os.path.join(ROOT, "tests", "data", "rough_sketch.png")
FACE_WEIGHTS = weights_path("face_lite.safetensors")
# The console script that `pip install -e .` put next to this Python: the command users type.
FACESKETCH = os.path.join(os.path.dirname(sys.executable), "facesketch")


def cli(*args, env=None, timeout=600):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([FACESKETCH, *args], cwd=ROOT, env=e, capture_output=True,
                          text=True, timeout=timeout)


def test_ping_lists_the_face_engine_ready(backend):
    r = cli("ping", "--server", backend.address, "--json")
    assert r.returncode == 0, r.stderr
    engines = {e["name"]: e for e in json.loads(r.stdout)["engines"]}
    assert engines["face"]["ready"] is True, engines["face"]
    assert {p["name"] for p in engines["face"]["params"]} >= {"blend_mouth", "master", "gender", "k"}


def test_ping_with_no_backend_says_so():
    r = cli("ping", "--server", f"tcp://127.0.0.1:{free_port()}", "--timeout", "3")
    assert r.returncode == 1
    assert "error:" in r.stderr and "backend" in r.stderr.lower()


@pytest.mark.skipif(not os.path.isfile(FACE_WEIGHTS), reason="no shipped face weights")
def test_face_in_process_and_through_the_server_agree(backend, tmp_path):
    local, remote = tmp_path / "local.png", tmp_path / "remote.png"
    r = cli("face", ROUGH, str(local), "--device", "cpu", "--outside", "paper")
    assert r.returncode == 0, r.stderr
    r = cli("face", ROUGH, str(remote), "--server", backend.address, "--outside", "paper")
    assert r.returncode == 0, r.stderr
    a = np.asarray(Image.open(local).convert("RGBA")).astype(int)
    b = np.asarray(Image.open(remote).convert("RGBA")).astype(int)
    assert a.shape == b.shape == np.asarray(Image.open(ROUGH)).shape[:2] + (4,)
    assert (a[..., 3] == 255).all()
    assert np.abs(a - b).max() <= 2  # the same model; thread counts may differ between the processes
    # a face, not the sketch or paper: skin in the middle is warm (red over blue) and not white
    h, w = a.shape[:2]
    centre = a[h // 3:2 * h // 3, w // 3:2 * w // 3, :3].reshape(-1, 3).mean(0)
    assert centre.max() < 235 and centre[0] > centre[2] + 10, centre


@pytest.mark.skipif(not os.path.isfile(FACE_WEIGHTS), reason="no shipped face weights")
def test_face_blend_options_change_the_face_and_bad_values_are_refused(tmp_path):
    follow, plausible = tmp_path / "follow.png", tmp_path / "plausible.png"
    assert cli("face", ROUGH, str(follow), "--device", "cpu", "--blend", "0").returncode == 0
    assert cli("face", ROUGH, str(plausible), "--device", "cpu", "--blend", "1").returncode == 0
    a = np.asarray(Image.open(follow)).astype(int)
    b = np.asarray(Image.open(plausible)).astype(int)
    assert np.abs(a - b).mean() > 1.0
    r = cli("face", ROUGH, str(tmp_path / "bad.png"), "--device", "cpu", "--blend-mouth", "2")
    assert r.returncode == 1 and "blend_mouth" in r.stderr
    assert not (tmp_path / "bad.png").exists()


def test_folder_in_folder_out_and_missing_input(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name, colour in (("a.png", (255, 255, 255, 255)), ("b.png", (0, 0, 0, 0))):
        Image.new("RGBA", (40, 30), colour).save(src / name)
    r = cli("face", str(src), str(tmp_path / "out"), "--device", "cpu", "--align", "template")
    if os.path.isfile(FACE_WEIGHTS):
        assert r.returncode == 0, r.stderr
        assert sorted(os.listdir(tmp_path / "out")) == ["a.png", "b.png"]
        assert Image.open(tmp_path / "out" / "a.png").size == (40, 30)
        # found automatically (the default), blank pages have no face: each file says so, none is written
        r = cli("face", str(src), str(tmp_path / "auto"), "--device", "cpu")
        assert r.returncode == 1 and r.stderr.count("no face was found") == 2, r.stderr
        assert not os.listdir(tmp_path / "auto") if os.path.isdir(tmp_path / "auto") else True
    else:
        assert r.returncode == 1 and "no trained weights" in r.stderr
    r = cli("face", str(tmp_path / "missing.png"), str(tmp_path / "x.png"), "--device", "cpu")
    assert r.returncode != 0 and "no such file or folder" in r.stderr
