"""The one small interface between the service and a model.

An engine turns input images plus parameters into named output images. It knows nothing about
sockets, queues or pixel formats on the wire: the service hands it RGBA arrays and encodes
whatever it returns.

Images are numpy arrays of shape (H, W, 4), RGBA, dtype uint8 (or uint16 when the client sent a
16-bit layer; `as_float` turns either into float32 in [0, 1]). Engines return uint8 or uint16
RGBA arrays, or float32 RGBA in [0, 1].
"""
from __future__ import annotations

import dataclasses
import math
import os
import reprlib
from typing import Any, Callable, Mapping, Sequence

import numpy as np


from facesketch.models.paths import weights_path  # noqa: F401  (engines find their weights through it)


_SHORT = reprlib.Repr()  # quoting a client's value in a message: bounded in length and depth
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict = 3, 60, 60, 4, 4


def _finite(number) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


class EngineError(Exception):
    """A failure the user can act on; `code` is one of facesketch_client.protocol.ErrorCode."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class Cancelled(Exception):
    """Raised inside `run` (by `JobContext.check`) when the job was cancelled or superseded."""


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter of an engine, described well enough for a host to build a widget from it.

    kind: "float" | "int" | "bool" | "choice" | "vector" (a list of `length` floats).
    """

    name: str
    kind: str
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    length: int = 0

    def describe(self) -> dict:
        d = {"name": self.name, "kind": self.kind, "default": self.default, "help": self.help}
        if self.min is not None:
            d["min"] = self.min
        if self.max is not None:
            d["max"] = self.max
        if self.choices:
            d["choices"] = list(self.choices)
        if self.length:
            d["length"] = self.length
        return d

    def validate(self, value: Any) -> Any:
        """Return the value in canonical type, or raise EngineError('bad_param')."""
        bad = lambda why: EngineError("bad_param", f"parameter '{self.name}': {why} (got {_SHORT.repr(value)})")
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise bad("expected true or false")
            return value
        if self.kind in ("float", "int"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad(f"expected a number")
            if not _finite(value):  # NaN, ±inf (int() of them raises), an int beyond any float
                raise bad("expected a finite number")
            if self.kind == "int" and int(value) != value:
                raise bad("expected a whole number")
            value = int(value) if self.kind == "int" else float(value)
            self._check_range(value, bad)
            return value
        if self.kind == "choice":
            value = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else value
            if value not in self.choices:
                raise bad(f"expected one of {', '.join(self.choices)}")
            return value
        if self.kind == "vector":
            if not isinstance(value, (list, tuple)) or len(value) != self.length:
                raise bad(f"expected a list of {self.length} numbers")
            out = []
            for v in value:
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise bad(f"expected a list of {self.length} numbers")
                if not _finite(v):
                    raise bad(f"expected a list of {self.length} finite numbers")
                self._check_range(float(v), bad)
                out.append(float(v))
            return out
        raise AssertionError(f"unknown parameter kind {self.kind}")

    def _check_range(self, value: float, bad: Callable[[str], EngineError]) -> None:
        if self.min is not None and value < self.min:
            raise bad(f"must be at least {self.min}")
        if self.max is not None and value > self.max:
            raise bad(f"must be at most {self.max}")


@dataclasses.dataclass(frozen=True)
class ImageInput:
    """A named input image. `required` inputs must be sent; optional ones (a depth layer) may be."""

    name: str
    help: str
    required: bool = True


class JobContext:
    """What a running engine may ask of the service: the device, progress, and cancellation."""

    def __init__(self, device: str = "cpu", progress: Callable[[float, str], None] | None = None,
                 cancelled: Callable[[], bool] | None = None):
        self.device = device
        self._progress = progress or (lambda fraction, message: None)
        self._cancelled = cancelled or (lambda: False)
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        """A plain-language remark that goes with the result (the result header's `notes`), e.g. that a
        picture held several faces and which one was drawn."""
        self.notes.append(str(message))

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress in [0, 1). The service sends 1.0 itself once the result is on its way."""
        self._progress(min(max(float(fraction), 0.0), 0.99), message)

    @property
    def cancelled(self) -> bool:
        return self._cancelled()

    def check(self) -> None:
        """Call between steps: raises Cancelled when the client no longer wants the result."""
        if self._cancelled():
            raise Cancelled()


class Engine:
    """Base class: subclasses set the class attributes and implement `readiness` and `run`."""

    name: str = ""
    summary: str = ""
    params: tuple[Param, ...] = ()
    inputs: tuple[ImageInput, ...] = (ImageInput("image", "the layer to process"),)
    outputs: tuple[str, ...] = ()          # names of the images `run` can return
    default_outputs: tuple[str, ...] = ()  # what a request gets when it names none
    details: dict = {}                     # extra facts for hosts, e.g. {"canvas": 256} (msgpack-able)

    def host_details(self) -> dict:
        """What hosts need to know beyond the parameter list, for the hello reply's `details`: always
        "defaults" (parameter name -> default); engines add their own facts (the face engine: its canvas
        and template boxes) by overriding this or setting `details`."""
        return {**dict(self.details), "defaults": {p.name: p.default for p in self.params}}

    def readiness(self) -> tuple[bool, str]:
        """(True, "") when the engine can run; else (False, a plain-language reason)."""
        return True, ""

    def load(self, device: str) -> None:
        """Load weights onto `device` ahead of the first job (optional; `run` must work without it)."""

    def run(self, images: Mapping[str, np.ndarray], params: Mapping[str, Any], outputs: Sequence[str],
            job: JobContext) -> dict[str, np.ndarray]:
        raise NotImplementedError

    # -- helpers the service uses -------------------------------------------------------------

    def describe(self) -> dict:
        ready, reason = self.readiness()
        return {
            "name": self.name,
            "summary": self.summary,
            "ready": ready,
            "reason": reason,
            "params": [p.describe() for p in self.params],
            "inputs": [{"name": i.name, "help": i.help, "required": i.required} for i in self.inputs],
            "outputs": list(self.outputs),
            "default_outputs": list(self.default_outputs),
            "details": self.host_details(),
        }

    def validate_params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Fill defaults and check every value; unknown names are an error, never ignored."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise EngineError("unknown_param",
                              f"engine '{self.name}' has no parameter {', '.join(map(repr, unknown))}; "
                              f"it takes {', '.join(known) or 'none'}")
        return {name: (p.validate(given[name]) if name in given else p.default) for name, p in known.items()}


def as_float(image: np.ndarray) -> np.ndarray:
    """RGBA uint8/uint16/float array -> float32 in [0, 1]."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) * (1.0 / 255.0)
    if image.dtype == np.uint16:
        return image.astype(np.float32) * (1.0 / 65535.0)
    return image.astype(np.float32, copy=False)


def to_rgba8(image: np.ndarray) -> np.ndarray:
    """float32 [0, 1] / uint16 / uint8 RGBA array -> uint8 RGBA."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
