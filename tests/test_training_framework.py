"""models/training.py (checkpoints, signals, log, grids, AMP) and one training step of every model on tiny
synthetic data: the loss is finite, the weights move, the checkpoint loads with weights_only=True and resumes."""
import argparse
import os
import signal

import numpy as np
import pytest
import torch

from test_training import _Pack  # the synthetic pack Batches reads

from facesketch.models import train, train_face
from facesketch.models.data.pack import save_item_images, write_index
from facesketch.models.deepfacedrawing import COMPONENTS, DeepFaceDrawing, get_config
from facesketch.models.discriminators import MultiscaleDiscriminator
from facesketch.models.training import (Amp, Checkpointer, Logger, check_weights_only, frozen, load_checkpoint,
                                        save_atomic, save_grid, stop_on_signal, to_u8)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------------------------------------- the module

def test_checkpoint_is_atomic_and_loads_weights_only(tmp_path, monkeypatch):
    path = str(tmp_path / "last.pt")
    ck = Checkpointer(path, every_steps=5)
    opt = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters())
    payload = {"kind": "x", "config": {"down": (1, 2), "name": "lite"}, "step": 3, "opt": opt.state_dict(),
               "w": torch.arange(4.0), "none": None}
    ck.save(payload)
    got = torch.load(path, weights_only=True)
    assert got["config"] == payload["config"] and torch.equal(got["w"], payload["w"]) and ck.load()["step"] == 3
    assert not os.path.exists(path + ".tmp")
    assert ck.due(10) and not ck.due(11)
    # what torch.load(weights_only=True) would refuse is refused before anything is written
    for bad in (np.float64(1.0), np.zeros(2), argparse.Namespace()):
        with pytest.raises(TypeError):
            check_weights_only({"a": [bad]})
        with pytest.raises(TypeError):
            ck.save({"step": 4, "bad": bad})
    assert ck.load()["step"] == 3

    def crash(obj, f, *a, **k):  # dies half-way through writing
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise KeyboardInterrupt
    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"step": 5}, path)
    assert load_checkpoint(path)["step"] == 3  # the previous checkpoint is whole


def test_stop_on_signal_sets_the_flag_and_restores_the_handlers():
    calls = []

    def mine(signum, frame):
        calls.append(signum)
    old = signal.signal(signal.SIGTERM, mine), signal.signal(signal.SIGINT, mine)
    try:
        with stop_on_signal() as stop:
            assert signal.getsignal(signal.SIGTERM) is not mine and not stop.now
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.now and stop.signum == signal.SIGTERM and not calls
        assert signal.getsignal(signal.SIGTERM) is mine and signal.getsignal(signal.SIGINT) is mine
        with pytest.raises(RuntimeError):  # restored when the loop fails too
            with stop_on_signal():
                raise RuntimeError
        assert signal.getsignal(signal.SIGTERM) is mine and signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGTERM, old[0])
        signal.signal(signal.SIGINT, old[1])


def test_logger_averages_and_writes_one_header(tmp_path, capsys):
    log = Logger(str(tmp_path))
    log.add({"a": 1.0, "b": 2.0})
    log.add({"a": 3.0, "b": 4.0})
    assert log.scalars(2, "stage 1 ") == {"a": 2.0, "b": 3.0}
    assert log.scalars(3) == {}  # nothing since the last line
    log2 = Logger(str(tmp_path))   # a resumed run: same columns, no new header
    log2.add({"a": 5.0, "b": 6.0})
    log2.scalars(3)
    log2.add({"a": 1.0})           # another set of columns: a new header
    log2.scalars(4)
    rows = (tmp_path / "log.tsv").read_text().splitlines()
    assert [r.split("\t")[0] for r in rows] == ["step", "2", "3", "step", "4"]
    assert rows[0] == "step\ttime\ta\tb" and rows[1].split("\t")[2:] == ["2.00000", "3.00000"]
    assert "stage 1 step 2 a=2.0000 b=3.0000" in capsys.readouterr().out
    assert "stage 1 step 2 a=2.0000" in (tmp_path / "log.txt").read_text()


def test_to_u8_and_save_grid(tmp_path):
    assert to_u8(torch.tensor([[-1.0, 1.0]])).tolist() == [[0, 255]]
    assert to_u8(torch.zeros(2, 1, 4, 5)).shape == (2, 4, 5)
    assert to_u8(torch.ones(3, 4, 5), lo=0).shape == (4, 5, 3) and to_u8(torch.ones(3, 4, 5), lo=0).min() == 255
    photo = np.full((4, 5, 3), 7, np.uint8)
    path = save_grid([[photo, torch.zeros(1, 4, 5)], [torch.zeros(4, 5), torch.zeros(3, 4, 5)]],
                     str(tmp_path / "s" / "g.png"))
    from PIL import Image
    with Image.open(path) as im:
        assert im.size == (10, 8) and im.getpixel((0, 0)) == (7, 7, 7)


def test_amp_is_plain_fp32_on_cpu_and_frozen_restores():
    amp = Amp("cpu")
    assert not amp.enabled and not amp.scaler.is_enabled() and amp.state_dict() == {}
    lin = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    with amp.autocast():
        y = lin(torch.ones(1, 3))
    assert y.dtype == torch.float32
    w = lin.weight.detach().clone()
    amp.step(opt, y.sum())
    amp.update()
    assert not torch.equal(w, lin.weight)
    lin.bias.requires_grad_(False)
    with frozen(lin):
        assert not any(p.requires_grad for p in lin.parameters())
    assert lin.weight.requires_grad and not lin.bias.requires_grad


# ---------------------------------------------------------------------------------------------- one step of each model

def _counting(amp):
    """Record the optimiser of every amp.step."""
    steps = []
    inner = amp.step

    def step(opt, loss):
        steps.append(opt)
        inner(opt, loss)
    amp.step = step
    return steps


def _grad_counter(module):
    """How many times a gradient was computed for the module's parameters."""
    n = [0]
    for p in module.parameters():
        p.register_hook(lambda g: n.__setitem__(0, n[0] + 1))
    return n


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before, module):
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items() if v.is_floating_point())


@pytest.mark.parametrize("kind,size", [("sketch", 256), ("depth", 64), ("pix2pix", 256)])
def test_one_step_saves_and_resumes(tmp_path, kind, size):
    flags = [kind, "--data", "unused", "--out", str(tmp_path), "--device", "cpu", "--lr", "1e-3"]
    trainer = train.Trainer(kind, train.build_parser().parse_args(flags))
    g0 = _snapshot(trainer.G)
    d0 = _snapshot(trainer.D) if trainer.D is not None else None
    d_grads = _grad_counter(trainer.D) if trainer.D is not None else None
    steps = _counting(trainer.amp)
    logs = trainer.train_step(*train.Batches(_Pack(1, size), 1, "cpu").sample())
    assert logs and all(np.isfinite(v) for v in logs.values())
    assert _changed(g0, trainer.G)
    if kind == "depth":
        assert steps == [trainer.opt_g]
    else:
        assert steps == [trainer.opt_d, trainer.opt_g] and _changed(d0, trainer.D)
        assert d_grads[0] == len(list(trainer.D.parameters()))  # from D's own loss only, none from G's
    trainer.step += 1
    path = trainer.save()
    ck = torch.load(path, weights_only=True)
    assert {"kind", "config", "step", "G", "opt_g", "D", "opt_d"} <= set(ck) and ck["step"] == 1

    resumed = train.Trainer(kind, train.build_parser().parse_args(flags + ["--resume"]))
    assert resumed.step == 1
    assert all(torch.equal(v, resumed.G.state_dict()[k]) for k, v in trainer.G.state_dict().items())
    if trainer.D is not None:
        assert all(torch.equal(v, resumed.D.state_dict()[k]) for k, v in trainer.D.state_dict().items())
    with pytest.raises(SystemExit, match="--resume"):  # a state dir is never overwritten by a fresh run
        train.Trainer(kind, train.build_parser().parse_args(flags))


def _disk_pack(root, n_train=2, n_test=1, size=64):
    rng = np.random.default_rng(1)
    items = []
    for i in range(n_train + n_test):
        save_item_images(root, f"p{i}", rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
                         rng.integers(0, 256, (size, size), dtype=np.uint8), np.full((size, size), 128, np.uint8))
        items.append({"id": f"p{i}", "split": "train" if i < n_train else "test", "style": i % 3, "gender": i % 2,
                      "image_name": f"x/{i}", "points": [[0, 0]] * 4, "face_found": True, "mesh_row": -1,
                      "source": "synthetic test"})
    write_index(root, size, items, {}, ("a", "b", "c", "d"))


def test_cli_run_checkpoints_resumes_stops_and_restores_handlers(tmp_path, monkeypatch):
    """The loop of models/train.py (depth, the cheapest): last.pt, log.tsv, samples, --resume, SIGTERM."""
    pack, out = str(tmp_path / "pack"), str(tmp_path / "state")
    _disk_pack(pack)
    flags = ["depth", "--data", pack, "--out", out, "--batch", "1", "--log-every", "1", "--sample-every", "1000"]
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    assert train.main(flags + ["--steps", "1"]) == 0
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    assert load_checkpoint(os.path.join(out, "last.pt"))["step"] == 1
    assert os.path.isfile(os.path.join(out, "samples", "step_000001.png"))

    real_step = train.Trainer.train_step

    def step_then_sigterm(self, *batch):  # a SIGTERM arrives during the 2nd step of a long run
        logs = real_step(self, *batch)
        os.kill(os.getpid(), signal.SIGTERM)
        return logs
    monkeypatch.setattr(train.Trainer, "train_step", step_then_sigterm)
    assert train.main(flags + ["--steps", "1000", "--resume"]) == 0
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    assert load_checkpoint(os.path.join(out, "last.pt"))["step"] == 2
    text = open(os.path.join(out, "log.txt")).read()
    assert "resumed depth at step 1" in text and "stopped at step 2" in text
    rows = open(os.path.join(out, "log.tsv")).read().splitlines()
    assert rows[0] == "step\ttime\tl1+grad" and [r.split("\t")[0] for r in rows[1:]] == ["1", "2"]


def _sketches(n, seed=0):
    rng = np.random.default_rng(seed)
    s = np.full((n, 256, 256), 255, np.uint8)
    for i in range(n):
        for _ in range(12):
            y, x = rng.integers(20, 230, 2)
            s[i, y:y + 3, x:x + 40] = 0
    return s


def test_face_stage1_step():
    model = DeepFaceDrawing(get_config("lite"))
    opt = torch.optim.Adam(list(model.encoders.parameters()) + list(model.image_decoders.parameters()), lr=1e-3)
    amp = Amp("cpu")
    steps = _counting(amp)
    before = _snapshot(model.encoders)
    x = train_face.sketch_batch(_sketches(1), [0], "cpu")
    losses = train_face.stage1_step(model, opt, amp, x)
    assert set(losses) == set(COMPONENTS) and all(np.isfinite(v) for v in losses.values())
    assert steps == [opt] and _changed(before, model.encoders)


def _stage2_parts():
    """A lite2 model with frozen encoders, its discriminator and optimisers, and one encoded sketch."""
    model = DeepFaceDrawing(get_config("lite2"))
    model.encoders.requires_grad_(False)
    disc = MultiscaleDiscriminator(4)
    opt_g = torch.optim.Adam(list(model.feature_decoders.parameters()) + list(model.generator.parameters()), lr=1e-3)
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-3)
    sk = train_face.sketch_batch(_sketches(1), [0], "cpu")
    with torch.no_grad():
        z = model.encode(sk)
    return model, disc, opt_g, opt_d, sk, z


def test_face_stage2_step_leaves_no_generator_gradient_in_the_discriminator():
    model, disc, opt_g, opt_d, sk, z = _stage2_parts()
    amp = Amp("cpu")
    steps = _counting(amp)
    d_grads = _grad_counter(disc)
    g0, d0 = _snapshot(model.generator), _snapshot(disc)
    weights = train_face.Stage2Loss(gan=1.0, ssim=1.0)
    logs = train_face.stage2_step(model, disc, opt_g, opt_d, amp, z, sk, torch.rand(1, 3, 256, 256) * 2 - 1, weights)
    assert set(logs) == {"d", "g_gan", "g_feat", "l1", "1-ssim"} and all(np.isfinite(v) for v in logs.values())
    assert steps == [opt_d, opt_g] and _changed(g0, model.generator) and _changed(d0, disc)
    assert d_grads[0] == len(list(disc.parameters()))  # the discriminator's own backward only
    assert all(p.requires_grad for p in disc.parameters())


def test_face_stage2_first_phase_needs_no_discriminator():
    model, disc, opt_g, opt_d, sk, z = _stage2_parts()
    amp = Amp("cpu")
    steps = _counting(amp)
    d0 = _snapshot(disc)
    logs = train_face.stage2_step(model, disc, opt_g, opt_d, amp, z, sk, torch.rand(1, 3, 256, 256) * 2 - 1,
                                  train_face.Stage2Loss(gan=0.0))
    assert set(logs) == {"l1"} and steps == [opt_g] and not _changed(d0, disc)


def test_face_flip_mirrors_about_the_face_axis():
    from facesketch.models.data.face_template import template_points
    x = torch.ones(1, 1, 256, 256)
    (lx, ly), (rx, ry) = template_points(256)[:2].astype(int)
    x[..., ly, lx] = -1                                      # a dot on the image-left eye
    flipped = train_face.flip_faces(x, 1.0)
    ys, xs = torch.nonzero(flipped[0, 0] < 0, as_tuple=True)
    assert ys.tolist() == [ly] and abs(xs.item() - rx) <= 1   # lands on the other eye




def test_face_drawn_small_softens_a_line_where_it_was():
    x = torch.ones(1, 1, 256, 256)
    x[..., 100:256, 127:129] = -1                            # a 2 px vertical stroke
    small = train_face.drawn_small(x, 3.0)
    assert small.shape == x.shape
    cols = (1 - small[0, 0, 120:240]).mean(0)                # ink per column
    assert abs(float((cols * torch.arange(256)).sum() / cols.sum()) - 127.5) < 0.6   # still where it was drawn
    assert (cols > 0.05).sum() >= 4 and float(small.min()) > -0.9                    # wider and fainter
    assert torch.allclose(train_face.drawn_small(x, 1.0), x)                         # factor 1: unchanged
    sk, photo = train_face.augment_pair(x.clone(), torch.zeros(1, 3, 256, 256), torch.Generator().manual_seed(0),
                                        small_p=1.0)
    assert float(sk.min()) > -0.95 and float(photo.abs().max()) == 0                  # the sketch only
