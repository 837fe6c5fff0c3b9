"""Stand-ins for the face and sketch engines that return their input, for the Krita host test.

Registered through FACESKETCH_EXTRA_ENGINES (after the built-in engines, so they take the names "face" and
"sketch"), they take the real engines' parameters and advertise the real face engine's hello details, so the
plug-in cannot tell them apart; the test's checks can then be byte-exact. Both append one JSON line per
event to the file named by FACESKETCH_TEST_JOURNAL (what the engine received and how the job ended), and
hold each job for the seconds written in the file named by FACESKETCH_TEST_DELAY (0 when it is missing),
reporting progress and honouring cancel meanwhile.

With align "auto" the face stand-in plays the real engine's search for the face: a layer without ink (only
white or transparent pixels) gets the real engine's `no_face` error, any other layer a note saying where the
face was drawn (the whole layer), as the real engine's notes do.
"""
from __future__ import annotations

import itertools
import json
import os
import threading
import time
import zlib

import numpy as np

from facesketch.backend.engines.base import Cancelled, EngineError
from facesketch.backend.engines.face import FaceEngine
from facesketch.backend.engines.face_placement import NO_FACE_MESSAGE
from facesketch.backend.engines.sketch import SketchEngine

_counter = itertools.count(1)
_lock = threading.Lock()


def _journal(entry: dict) -> None:
    path = os.environ.get("FACESKETCH_TEST_JOURNAL")
    if path:
        with _lock, open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")


def _delay() -> float:
    try:
        with open(os.environ.get("FACESKETCH_TEST_DELAY", ""), encoding="utf-8") as fh:
            return float(fh.read().strip() or 0)
    except (OSError, ValueError):
        return 0.0


def _echo(engine: str, images, params, outputs, job, results) -> dict:
    image = images["image"]
    n = next(_counter)
    entry = {"n": n, "engine": engine, "params": dict(params), "outputs": list(outputs),
             "shape": list(image.shape), "dtype": str(image.dtype), "crc32": zlib.crc32(image.tobytes()),
             "t": time.time()}
    _journal(dict(entry, event="start"))
    delay = _delay()
    try:
        steps = max(1, int(delay / 0.02))
        for i in range(steps if delay > 0 else 0):
            job.check()
            job.progress(i / steps, "waiting")
            time.sleep(delay / steps)
        job.check()
    except Cancelled:
        _journal({"n": n, "engine": engine, "event": "cancelled", "t": time.time()})
        raise
    _journal({"n": n, "engine": engine, "event": "done", "t": time.time()})
    return {name: image for name in results}


def _has_ink(image) -> bool:
    """Whether any pixel is neither transparent nor white (what a drawn line is)."""
    paper = np.iinfo(image.dtype).max
    return bool(((image[..., 3] > 0) & (image[..., :3].min(axis=-1) < paper)).any())


def _find_face(engine: str, image, params, job) -> None:
    """align auto: no ink -> the real engine's no_face error (journaled); else a note as the real engine's."""
    h, w = image.shape[:2]
    if not _has_ink(image):
        _journal({"n": next(_counter), "engine": engine, "event": "no_face", "params": dict(params),
                  "shape": list(image.shape), "t": time.time()})
        raise EngineError("no_face", NO_FACE_MESSAGE)
    job.note(f"drew the face at x 0, y 0, {w} x {h} pixels")


class EchoFaceEngine(FaceEngine):
    summary = "test stand-in: returns the sketch as the face and as the shadow"

    def readiness(self):
        return True, ""

    def load(self, device):
        pass

    def run(self, images, params, outputs, job):
        if params.get("align") == "auto":
            _find_face(self.name, images["image"], params, job)
        return _echo(self.name, images, params, outputs, job, outputs)


class EchoSketchEngine(SketchEngine):
    summary = "test stand-in: returns the photo as the sketch"

    def readiness(self):
        return True, ""

    def load(self, device):
        pass

    def run(self, images, params, outputs, job):
        return _echo("sketch", images, params, outputs, job, outputs)


ENGINE = EchoFaceEngine
