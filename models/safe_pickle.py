"""Reading downloaded pickles without running them: the one place models/ unpickles a file it did not write.

A pickle is a program: a file's `__reduce__` entries may name any importable callable (os.system,
builtins.eval, ...) and the standard unpickler calls it. The released DeepFaceDrawing weights (Jittor .pkl
files: dicts of numpy arrays) and HIDA's Lightning checkpoint (read with torch.load(weights_only=True)) need
far less, so both loaders allow exactly that and refuse everything else, before anything runs:

- `load(path)`: a restricted unpickler for numpy arrays in dicts/lists/tuples and plain scalars: only numpy's
  array and scalar reconstruction and dtypes (no object arrays) may be named, nothing else.
- `torch_load_weights(path)`: torch.load(weights_only=True) with only the classes that PyTorch Lightning
  0.7.5 checkpoints pickle besides tensors allowed on top (argparse.Namespace and Lightning's AttributeDict
  for the hyper-parameters, numpy scalars for callback state). No fallback to an unrestricted load.

Both raise UnsafePickleError (a ValueError) naming the file and what it asked for.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import pickle
from typing import Any

import numpy as np


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """The file names something other than plain data; nothing it names was called."""


def _dtype(*args):
    dt = np.dtype(*args)
    if dt.hasobject:
        raise UnsafePickleError("object arrays are refused (their items could be any Python object)")
    return dt


def _latin1_encode(text, encoding="latin1"):
    """_codecs.encode as protocol-2 pickles use it for bytes (text.encode('latin1')), and nothing else."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode is only allowed for latin1 byte strings, not {encoding!r}")
    return text.encode("latin1")


def _numpy_core():
    try:
        from numpy._core import multiarray, numeric  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray, numeric
    return multiarray, numeric


_multiarray, _numeric = _numpy_core()
_ARRAY_GLOBALS = {
    "_reconstruct": _multiarray._reconstruct,
    "scalar": _multiarray.scalar,
}
ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _latin1_encode,
    ("collections", "OrderedDict"): dict,  # a dict is all a weight file needs
}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    for _name, _fn in _ARRAY_GLOBALS.items():
        ALLOWED[(_mod, _name)] = _fn
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):  # protocol 5: arrays as buffers
    ALLOWED[(_mod, "_frombuffer")] = _numeric._frombuffer


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, dtypes, dicts/lists/tuples and plain scalars; refuses any other global."""

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"refusing {module}.{name}: only numpy arrays, dicts, lists, tuples and "
                                    "plain numbers and strings are read from a weight file") from None

    def persistent_load(self, pid):
        raise UnsafePickleError("refusing a persistent id: a weight file holds plain data only")


def loads(data: bytes, what: str = "data") -> Any:
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{what}: {exc}") from None


def load(path: str | os.PathLike) -> Any:
    """The object a weight pickle holds, read with RestrictedUnpickler."""
    with open(path, "rb") as f:
        try:
            return RestrictedUnpickler(f).load()
        except UnsafePickleError as exc:
            raise UnsafePickleError(f"{os.fspath(path)}: {exc}") from None


# -- torch checkpoints --------------------------------------------------------------------------

def lightning_safe_globals() -> list:
    """What PyTorch Lightning (0.7.5 and the versions around it) pickles next to tensors and plain data."""
    numpy_scalar_types = [type(np.dtype(c)) for c in "?bBhHiIlLqQefdg"]
    return [
        argparse.Namespace,
        # Lightning's AttributeDict (a dict subclass) is read as a plain dict: torch's weights-only unpickler
        # fills only real dicts, and a dict is all the hyper-parameters need to be here
        (dict, "pytorch_lightning.utilities.parsing.AttributeDict"),
        np.dtype, *numpy_scalar_types,
        (_multiarray.scalar, "numpy.core.multiarray.scalar"),
        (_multiarray.scalar, "numpy._core.multiarray.scalar"),
    ]


def torch_load_weights(path: str | os.PathLike, map_location="cpu") -> Any:
    """torch.load(weights_only=True) with lightning_safe_globals() allowed for this call only."""
    import torch

    ctx = (torch.serialization.safe_globals(lightning_safe_globals())
           if hasattr(torch.serialization, "safe_globals") else contextlib.nullcontext())
    try:
        with ctx:
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message starts with advice to retry with weights_only=False; keep only what the file asked for
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        why = next((ln for ln in lines if "GLOBAL" in ln or "global" in ln.split(":")[0] or "Unsupported" in ln),
                   lines[-2] if len(lines) >= 2 else str(exc))
        raise UnsafePickleError(f"{os.fspath(path)}: refusing to load this checkpoint: it holds more than weights "
                                f"and plain data ({why}); nothing in it was run") from None
