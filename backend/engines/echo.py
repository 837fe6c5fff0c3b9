"""A trivial engine for transport tests and benchmarks: returns the input image unchanged."""
from __future__ import annotations

from .base import Engine, ImageInput, Param


class EchoEngine(Engine):
    name = "echo"
    summary = "Returns the layer unchanged (for testing the connection and measuring transport)."
    params = (Param("delay", "float", 0.0, "seconds to hold the job, reporting progress (for tests)", min=0.0, max=60.0),)
    inputs = (ImageInput("image", "any layer"),)
    outputs = ("image",)
    default_outputs = ("image",)

    def run(self, images, params, outputs, job):
        delay = params["delay"]
        if delay > 0:
            import time

            steps = max(1, int(delay / 0.02))
            for i in range(steps):
                job.check()
                job.progress(i / steps, "waiting")
                time.sleep(delay / steps)
        job.check()
        return {"image": images["image"]}


ENGINE = EchoEngine
