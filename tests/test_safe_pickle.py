"""The official loaders read downloaded pickles without running them (models/safe_pickle.py)."""
import argparse
import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch

from facesketch.models import safe_pickle
from facesketch.models.deepfacedrawing import load_official_deepfacedrawing
from facesketch.models.hida import HIDAConfig, HIDAGenerator, load_official_hida


class Payload:
    """What a hostile weight file holds: unpickling it calls os.system / builtins.open."""

    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


def payloads(marker):
    return [Payload(os.system, f"touch {marker}"), Payload(open, str(marker), "w"),
            Payload(eval, f"open({str(marker)!r}, 'w')")]


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_restricted_unpickler_reads_arrays_dicts_and_scalars(tmp_path, protocol):
    data = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.zeros(3, np.float64),
            "i": np.int64(7), "f": np.float32(0.5), "nested": [1, 2.5, "x", (None, True), {"k": b"raw"}]}
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(data, protocol))
    back = safe_pickle.load(path)
    assert back.keys() == data.keys()
    assert np.array_equal(back["w"], data["w"]) and back["w"].dtype == np.float32
    assert back["i"] == 7 and back["f"] == np.float32(0.5) and back["nested"] == data["nested"]


@pytest.mark.parametrize("which", range(3))
def test_crafted_pickle_is_refused_and_runs_nothing(tmp_path, which):
    marker = tmp_path / "pwned"
    path = tmp_path / "latest_net_G.pkl"
    path.write_bytes(pickle.dumps({"w": np.zeros(2, np.float32), "x": payloads(marker)[which]}, 2))
    with pytest.raises(safe_pickle.UnsafePickleError) as err:
        safe_pickle.load(path)
    assert str(path) in str(err.value) and "refusing" in str(err.value)
    assert not marker.exists()


def test_object_arrays_are_refused(tmp_path):
    path = tmp_path / "obj.pkl"
    path.write_bytes(pickle.dumps({"o": np.array([1, "a"], dtype=object)}))
    with pytest.raises(safe_pickle.UnsafePickleError):
        safe_pickle.load(path)


def test_deepfacedrawing_loader_refuses_a_payload_in_an_official_file(tmp_path):
    from test_deepfacedrawing import TINY, official_file_layout, tiny_official_config, write_official_files

    write_official_files(str(tmp_path), official_file_layout(**TINY))
    marker = tmp_path / "pwned"
    target = tmp_path / "Params" / "Combine" / "latest_net_G.pkl"
    if not target.exists():
        target = next(p for p in tmp_path.rglob("latest_net_G.pkl"))
    arrays = safe_pickle.load(target)
    arrays["evil"] = Payload(os.system, f"touch {marker}")
    target.write_bytes(pickle.dumps(arrays, pickle.HIGHEST_PROTOCOL))
    with pytest.raises(ValueError) as err:
        load_official_deepfacedrawing(str(tmp_path), tiny_official_config())
    assert "refusing posix.system" in str(err.value) or "refusing os.system" in str(err.value) \
        or "refusing nt.system" in str(err.value)
    assert not marker.exists()


def _lightning_module():
    """A stand-in for pytorch_lightning.utilities.parsing, so the test can pickle an AttributeDict as Lightning
    does (the class path is what the checkpoint records)."""
    names = ["pytorch_lightning", "pytorch_lightning.utilities", "pytorch_lightning.utilities.parsing"]
    mods = {n: sys.modules.get(n) or types.ModuleType(n) for n in names}

    class AttributeDict(dict):
        pass

    AttributeDict.__module__ = names[-1]
    AttributeDict.__qualname__ = "AttributeDict"
    mods[names[-1]].AttributeDict = AttributeDict
    return mods, AttributeDict


def _lightning_checkpoint(state, hparams):
    return {"epoch": 750, "global_step": 1, "checkpoint_callback_best": np.float64(0.25),
            "early_stop_callback_wait": 0, "early_stop_callback_patience": 3,
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 2e-4, "betas": (0.5, 0.999), "params": [0]}]}],
            "lr_schedulers": [{"last_epoch": 749, "base_lrs": [2e-4], "_step_count": 750}],
            "state_dict": state, "hparams": hparams, "hparams_type": "namespace"}


def test_hida_loader_reads_a_lightning_checkpoint_with_hparams_objects(tmp_path, monkeypatch):
    mods, AttributeDict = _lightning_module()
    for n, m in mods.items():
        monkeypatch.setitem(sys.modules, n, m)
    model = HIDAGenerator(HIDAConfig.official())
    state = {"Generator." + k: v for k, v in model.state_dict().items()}
    hparams = AttributeDict(lr=2e-4, batch_size=1, name="hida")
    for i, hp in enumerate([argparse.Namespace(lr=2e-4, batch_size=1, gpus="0"), hparams]):
        path = tmp_path / f"ckpt{i}.ckpt"
        torch.save(_lightning_checkpoint(state, hp), path)
        loaded = load_official_hida(str(path))
        assert torch.equal(loaded.state_dict()[next(iter(model.state_dict()))], next(iter(model.state_dict().values())))


def test_hida_loader_refuses_a_payload_and_does_not_fall_back(tmp_path):
    marker = tmp_path / "pwned"
    state = {"Generator." + k: v for k, v in HIDAGenerator(HIDAConfig.official()).state_dict().items()}
    for i, payload in enumerate(payloads(marker)):
        path = tmp_path / f"evil{i}.ckpt"
        torch.save(_lightning_checkpoint(state, {"lr": 1.0, "x": payload}), path)
        with pytest.raises(ValueError) as err:
            load_official_hida(str(path))
        assert str(path) in str(err.value) and "refusing" in str(err.value)
        assert not marker.exists()
