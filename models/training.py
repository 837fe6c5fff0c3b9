"""What every training loop here shares (models/train.py: sketch, depth, pix2pix; models/train_face.py: face).

* `Checkpointer`: one state file, written atomically (tmp file + os.replace) and read with
  `torch.load(weights_only=True)`; `save_atomic` / `load_checkpoint` do the same for caches. What is saved is
  checked to hold only what `weights_only` loading accepts (tensors, dicts, lists, tuples, str, int, float,
  bool, None), so a run cannot write a checkpoint it could not resume from.
* `stop_on_signal()`: a context manager; inside it SIGTERM / Ctrl-C set `stop.now` (the loop ends its step,
  writes a checkpoint and stops); on exit the previous handlers are back.
* `Logger`: timestamped messages to stdout and `log.txt`; `Logger.scalars` averages the losses of the steps
  since the last call, prints them and appends a row to a TSV file with a header.
* `to_u8` / `save_grid`: sample grids (rows of tiles) as PNG.
* `Amp`: fp16 autocast with a gradient scaler on CUDA, plain fp32 on CPU; `Amp.step` is every optimiser step.
* `frozen(*modules)`: requires_grad off for a while (a discriminator during the generator's backward).
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
from PIL import Image


# ---------------------------------------------------------------------------------------------- checkpoints

_PLAIN = (str, bytes, int, float, bool, complex, type(None))


def check_weights_only(obj, where: str = "checkpoint") -> None:
    """Raise TypeError where `obj` holds something `torch.load(weights_only=True)` would refuse (a numpy
    scalar or array, an arbitrary object). Types are compared exactly: np.float64 is a float subclass."""
    if isinstance(obj, torch.Tensor):
        if type(obj) not in (torch.Tensor, nn.Parameter):
            raise TypeError(f"{where}: tensor subclass {type(obj).__name__}")
        return
    t = type(obj)
    if t in _PLAIN or t in (torch.dtype, torch.Size):
        return
    if t in (dict, OrderedDict):
        for k, v in obj.items():
            if type(k) not in _PLAIN:
                raise TypeError(f"{where}: key of type {type(k).__name__}")
            check_weights_only(v, f"{where}[{k!r}]")
        return
    if t in (list, tuple):
        for i, v in enumerate(obj):
            check_weights_only(v, f"{where}[{i}]")
        return
    raise TypeError(f"{where}: {t.__module__}.{t.__name__} does not load with weights_only=True")


def save_atomic(obj, path: str) -> None:
    """torch.save to `path` + '.tmp', then os.replace: a crash leaves the previous file whole."""
    check_weights_only(obj, os.path.basename(path))
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str, map_location="cpu"):
    """What save_atomic wrote (tensors and plain containers only)."""
    return torch.load(path, map_location=map_location, weights_only=True)


class Checkpointer:
    """One training state file (e.g. STATEDIR/last.pt). `due(step)` says when to write again: every
    `every_steps` steps and/or `every_s` seconds since the last write."""

    def __init__(self, path: str, every_steps: int | None = None, every_s: float | None = None):
        self.path, self.every_steps, self.every_s = path, every_steps, every_s
        self.last_save = time.monotonic()

    def exists(self) -> bool:
        return os.path.isfile(self.path)

    def load(self, map_location="cpu") -> dict | None:
        return load_checkpoint(self.path, map_location) if self.exists() else None

    def save(self, payload: dict) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        save_atomic(payload, self.path)
        self.last_save = time.monotonic()

    def due(self, step: int) -> bool:
        if self.every_steps and step % self.every_steps == 0:
            return True
        return bool(self.every_s is not None and time.monotonic() - self.last_save > self.every_s)


def state_digest(module: nn.Module) -> str:
    """A short hash of a module's weights: tells whether a cache made from them is still current."""
    import hashlib
    h = hashlib.sha1()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------- signals

class StopFlag:
    """`now` turns True when SIGTERM or SIGINT arrives inside stop_on_signal()."""

    def __init__(self):
        self.now = False
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.now


@contextlib.contextmanager
def stop_on_signal(signals=(signal.SIGTERM, signal.SIGINT)):
    """with stop_on_signal() as stop: while not stop.now: ... -- SIGTERM / Ctrl-C end the loop cleanly
    (write a checkpoint, then return) instead of killing it. The old handlers are restored on exit. Off the
    main thread (where Python cannot set handlers) the flag is only set by hand."""
    stop = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_signal(signum, frame):
        stop.now, stop.signum = True, signum
    old = {s: signal.getsignal(s) for s in signals}
    try:
        for s in signals:
            signal.signal(s, on_signal)
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


# ---------------------------------------------------------------------------------------------- logging

class Logger:
    """Messages (`log(msg)`): timestamped, to stdout and STATEDIR/log.txt. Losses: `log.add(values)` after each
    step, `log.scalars(step, prefix)` every few steps: the means since the last call, printed as
    '<prefix>step N k=v ... (s/step)' and appended to STATEDIR/<tsv> under the header 'step time k ...'
    (a new header line when the columns change, e.g. a resumed run with another loss)."""

    def __init__(self, state_dir: str, tsv: str = "log.tsv", text: str = "log.txt"):
        os.makedirs(state_dir, exist_ok=True)
        self.text_path = os.path.join(state_dir, text) if text else None
        self.tsv_path = os.path.join(state_dir, tsv)
        self.start()

    def __call__(self, msg: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        print(line, flush=True)
        if self.text_path:
            with open(self.text_path, "a") as f:
                f.write(line + "\n")

    def start(self) -> None:
        """Forget the steps added so far and restart the s/step clock (call it just before the loop)."""
        self._sum, self._n, self._t0 = {}, 0, time.monotonic()

    def add(self, values: dict) -> None:
        for k, v in values.items():
            self._sum[k] = self._sum.get(k, 0.0) + float(v)
        self._n += 1

    def scalars(self, step: int, prefix: str = "") -> dict[str, float]:
        """Write the means since the last call (none if no step was added); returns them."""
        if not self._n:
            return {}
        avg = {k: v / self._n for k, v in self._sum.items()}
        rate = (time.monotonic() - self._t0) / self._n
        self(f"{prefix}step {step} " + " ".join(f"{k}={v:.4f}" for k, v in avg.items()) + f" ({rate:.2f} s/step)")
        header = "step\ttime\t" + "\t".join(avg)
        if self._tsv_header() != header:
            with open(self.tsv_path, "a") as f:
                f.write(header + "\n")
        with open(self.tsv_path, "a") as f:
            f.write(f"{step}\t{time.time():.0f}\t" + "\t".join(f"{v:.5f}" for v in avg.values()) + "\n")
        self.start()
        return avg

    def _tsv_header(self) -> str | None:
        """The last header line of the TSV file (None when there is no file)."""
        if not os.path.isfile(self.tsv_path):
            return None
        header = None
        with open(self.tsv_path) as f:
            for line in f:
                if line.startswith("step\t"):
                    header = line.rstrip("\n")
        return header


# ---------------------------------------------------------------------------------------------- sample grids

def to_u8(x, lo: float = -1.0) -> np.ndarray:
    """Images in [lo, 1] (lo = -1 or 0) -> uint8. A tensor (..., C, H, W) with C = 1 or 3 gives (..., H, W) or
    (..., H, W, 3); a 2-D tensor is one grey image; numpy uint8 passes through."""
    if isinstance(x, np.ndarray) and x.dtype == np.uint8:
        return x
    t = torch.as_tensor(x).detach().float().cpu()
    t = (t + 1) / 2 if lo < 0 else t
    a = (t.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    if a.ndim == 2:
        return a
    if a.shape[-3] == 1:
        return a[..., 0, :, :]
    return np.moveaxis(a, -3, -1)


def save_grid(rows, path: str) -> str:
    """Rows of tiles (uint8 HxW or HxWx3, or tensors for to_u8) -> one PNG at `path`; returns `path`."""
    tiles = [[to_u8(t) for t in row] for row in rows]
    tiles = [[t if t.ndim == 3 else np.repeat(t[..., None], 3, 2) for t in row] for row in tiles]
    img = np.concatenate([np.concatenate(r, 1) for r in tiles], 0)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(img).save(path)
    return path


# ---------------------------------------------------------------------------------------------- AMP

class Amp:
    """Mixed precision for one training loop: on CUDA fp16 autocast and one GradScaler shared by all its
    optimisers; elsewhere (or with enabled=False) plain fp32 and the same calls.

        with amp.autocast(): loss_d = ...
        amp.step(opt_d, loss_d)
        with frozen(D), amp.autocast(): loss_g = ...   # (and amp.step(opt_g, loss_g) inside the frozen block)
        amp.update()                                    # once per iteration, after the last step
    """

    def __init__(self, device, enabled: bool = True):
        self.device = torch.device(device)
        self.enabled = bool(enabled) and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.enabled)

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.float16, enabled=self.enabled)

    def step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """Zero the optimiser's gradients, backward the (scaled) loss, step (skipped on inf/nan gradients)."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)

    def update(self) -> None:
        self.scaler.update()

    def state_dict(self) -> dict:
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict | None) -> None:
        if self.enabled and state:
            self.scaler.load_state_dict(state)


@contextlib.contextmanager
def frozen(*modules: nn.Module):
    """requires_grad off for the modules' parameters inside the block (gradients still flow through them to
    their inputs), restored after."""
    params = [p for m in modules for p in m.parameters()]
    was = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, w in zip(params, was):
            p.requires_grad_(w)
