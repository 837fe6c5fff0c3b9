"""HIDA generator: official checkpoint layout, forward shapes, lite size.

The expected official key list below is written from the layer tables of HIDA's released checkpoint
(module names and shapes), not dumped from our own model.
"""
import io

import pytest
import torch

from facesketch.models.hida import (HIDAConfig, HIDAGenerator, count_params, load_official_hida, style_vector,
                         style_vector_from_labels)


def _meta_acon(prefix, width):
    hidden = max(16, width // 16)
    keys = {f"{prefix}.fc1.weight": (hidden, width, 1, 1), f"{prefix}.fc1.bias": (hidden,),
            f"{prefix}.fc2.weight": (width, hidden, 1, 1), f"{prefix}.fc2.bias": (width,),
            f"{prefix}.p1": (1, width, 1, 1), f"{prefix}.p2": (1, width, 1, 1)}
    for bn, n in (("bn1", hidden), ("bn2", width)):  # defined, never called, but saved
        keys.update({f"{prefix}.{bn}.weight": (n,), f"{prefix}.{bn}.bias": (n,),
                     f"{prefix}.{bn}.running_mean": (n,), f"{prefix}.{bn}.running_var": (n,),
                     f"{prefix}.{bn}.num_batches_tracked": ()})
    return keys


def _conv(prefix, cin, cout, k):
    return {f"{prefix}.weight": (cout, cin, k, k), f"{prefix}.bias": (cout,)}


def _convT(prefix, cin, cout, k):
    return {f"{prefix}.weight": (cin, cout, k, k), f"{prefix}.bias": (cout,)}


def official_generator_shapes():
    """Key -> shape for SPADEUNet_YPar, from the notes' tables."""
    s = {}
    s.update(_conv("down_rgb", 3, 64, 4))
    s.update(_conv("down_par", 1, 64, 4))
    downs = [("down2", 128, 128), ("down3", 128, 256), ("down4", 256, 512), ("down5", 512, 512),
             ("down6", 512, 512), ("down7", 512, 512), ("down8", 512, 512)]
    for name, cin, cout in downs:
        s.update(_meta_acon(f"{name}.model.0", cin))
        s.update(_conv(f"{name}.model.1", cin, cout, 4))
    ups = [("up0", 512, 512), ("up1", 1024, 512), ("up2", 1024, 512), ("up3", 1024, 512),
           ("up4", 1024, 256), ("up5", 512, 128), ("up6", 256, 64)]
    for i, (name, cin, cout) in enumerate(ups):
        s.update(_convT(f"{name}.layers", cin, cout, 4))          # used in up2..up6, saved in up0/up1
        s.update({f"{name}.dcn.weight": (cout, cin, 3, 3), f"{name}.dcn.bias": (cout,)})
        s.update(_conv(f"{name}.dcn.conv_offset_mask", cin, 54, 3))
        s.update(_convT(f"{name}.en_conv", cin // 2, 1, 4))
        s.update(_meta_acon(f"{name}.metaAcon_en", 1))
        s.update(_conv(f"{name}.fc1", 5, cout, 3))
        s.update(_conv(f"{name}.fc2", 4, cout, 3))
        s.update(_conv(f"{name}.fc3", cout, cout, 3))
        s.update(_meta_acon(f"{name}.metaAcon", cout))
        s.update({f"{name}.p1": (1, cout, 1, 1), f"{name}.p2": (1, cout, 1, 1)})
        label_nc = 1 if i == 0 else 2
        s.update(_conv(f"{name}.norm.mlp_shared.0", label_nc, 128, 3))
        s.update(_meta_acon(f"{name}.norm.mlp_shared.1", 128))
        s.update(_meta_acon(f"{name}.norm.metaAcon", cin))
        s.update(_conv(f"{name}.norm.mlp_gamma", cout, cout, 3))
        s.update(_conv(f"{name}.norm.mlp_beta", cout, cout, 3))
    for head in ("final_rgb", "final_par"):
        s.update(_meta_acon(f"{head}.0", 128))
        s.update(_convT(f"{head}.1", 128, 1, 4))
    return s


def test_notes_examples_are_in_the_expected_list():
    s = official_generator_shapes()
    assert s["up1.dcn.conv_offset_mask.weight"] == (54, 1024, 3, 3)
    assert s["up1.dcn.weight"] == (512, 1024, 3, 3)
    assert s["up1.fc1.weight"] == (512, 5, 3, 3)
    assert s["up1.norm.metaAcon.fc1.weight"] == (64, 1024, 1, 1)
    assert s["up1.en_conv.weight"] == (512, 1, 4, 4)
    assert s["up0.en_conv.weight"] == (256, 1, 4, 4)
    assert s["final_rgb.1.weight"] == (128, 1, 4, 4)


@pytest.fixture(scope="module")
def official_model():
    torch.manual_seed(0)
    return HIDAGenerator(HIDAConfig.official())


def test_official_state_dict_matches_the_notes(official_model):
    want = official_generator_shapes()
    got = {k: tuple(v.shape) for k, v in official_model.state_dict().items()}
    assert sorted(set(want) - set(got)) == []
    assert sorted(set(got) - set(want)) == []
    assert {k: got[k] for k in want if got[k] != want[k]} == {}


def test_load_synthetic_lightning_checkpoint(tmp_path, official_model):
    g = torch.Generator().manual_seed(1)
    state = {}
    for key, shape in official_generator_shapes().items():
        if key.endswith("num_batches_tracked"):
            state["Generator." + key] = torch.tensor(0)
        else:
            state["Generator." + key] = torch.randn(shape, generator=g) * 0.02
    state["Discrimanator.model0.0.weight"] = torch.randn(64, 2, 4, 4)  # the discriminator is skipped
    path = tmp_path / "_ckpt_epoch_749.ckpt"
    torch.save({"state_dict": state, "epoch": 749, "global_step": 1}, path)
    model = load_official_hida(str(path))
    loaded = model.state_dict()
    assert torch.equal(loaded["up1.dcn.weight"], state["Generator.up1.dcn.weight"])
    assert torch.equal(loaded["final_par.1.bias"], state["Generator.final_par.1.bias"])
    assert not model.training


def test_load_rejects_a_missing_key(tmp_path):
    state = {"Generator." + k: torch.zeros(s) for k, s in official_generator_shapes().items()}
    del state["Generator.up3.fc3.weight"]
    path = tmp_path / "bad.ckpt"
    torch.save({"state_dict": state}, path)
    with pytest.raises(RuntimeError, match="up3.fc3.weight"):
        load_official_hida(str(path))


def test_official_forward_shapes(official_model):
    with torch.no_grad():
        sketch, depth = official_model.eval()(torch.randn(1, 3, 256, 256), torch.rand(1, 1, 256, 256),
                                              style_vector(1))
    assert sketch.shape == depth.shape == (1, 1, 256, 256)
    assert sketch.abs().max() <= 1


def test_lite_size_and_forward():
    model = HIDAGenerator(HIDAConfig.lite()).eval()
    n = count_params(model)
    assert n <= 8_000_000
    assert 2 * n < 16_000_000  # fp16 bytes
    with torch.no_grad():
        sketch, depth = model(torch.randn(2, 3, 256, 256), torch.rand(2, 1, 256, 256), style_vector(2, batch=2))
    assert sketch.shape == depth.shape == (2, 1, 256, 256)


def test_style_changes_lite_output():
    torch.manual_seed(2)
    model = HIDAGenerator(HIDAConfig.lite()).eval()
    x, d = torch.randn(1, 3, 256, 256), torch.rand(1, 1, 256, 256)
    with torch.no_grad():
        a, _ = model(x, d, style_vector(1))
        b, _ = model(x, d, style_vector(3))
    assert (a - b).abs().max() > 1e-4


def test_style_channel_mapping():
    # FS2K Style 1 -> channel 2, Style 2 -> channel 0, Style 3 -> channel 1 (HIDA's released code)
    assert style_vector(1).tolist() == [[0.0, 0.0, 1.0]]
    assert style_vector(2).tolist() == [[1.0, 0.0, 0.0]]
    assert style_vector(3).tolist() == [[0.0, 1.0, 0.0]]
    assert torch.allclose(style_vector([2.0, 1.0, 1.0]), torch.tensor([[0.25, 0.25, 0.5]]))
    assert style_vector_from_labels(torch.tensor([0, 1, 2])).tolist() == [[0, 0, 1], [1, 0, 0], [0, 1, 0]]
    with pytest.raises(ValueError):
        style_vector(4)
    with pytest.raises(ValueError):
        style_vector([0, 0, 0])
