"""Engines that only the tests load (through FACESKETCH_EXTRA_ENGINES): they fail on purpose."""
from facesketch.backend.engines.base import Engine, ImageInput


class FailingEngine(Engine):
    name = "failing"
    summary = "raises an unexpected exception (tests the 'internal' error path)"
    inputs = (ImageInput("image", "any"),)
    outputs = ("image",)
    default_outputs = ("image",)

    def run(self, images, params, outputs, job):
        raise RuntimeError("deliberate failure for the tests")


class NotReadyEngine(Engine):
    name = "notready"
    summary = "never ready (tests the 'not_ready' error path)"
    inputs = (ImageInput("image", "any"),)
    outputs = ("image",)
    default_outputs = ("image",)

    def readiness(self):
        return False, "it has no trained weights (test engine)"

    def run(self, images, params, outputs, job):
        raise AssertionError("a not-ready engine must never run")


ENGINE = FailingEngine
