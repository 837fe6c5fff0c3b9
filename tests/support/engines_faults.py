"""Test engines that run out of memory (simulated), loaded through FACESKETCH_EXTRA_ENGINES by tests/test_load.py."""
from facesketch.backend.engines.base import Engine, ImageInput


class _OutOfMemory(Engine):
    inputs = (ImageInput("image", "any"),)
    outputs = ("image",)
    default_outputs = ("image",)


class HostOutOfMemory(_OutOfMemory):
    name = "oom_host"
    summary = "raises MemoryError, as a host allocation that fails does"

    def run(self, images, params, outputs, job):
        raise MemoryError()


class DeviceOutOfMemory(_OutOfMemory):
    name = "oom_device"
    summary = "raises torch.OutOfMemoryError, as a CUDA allocation that fails does"

    def run(self, images, params, outputs, job):
        import torch

        raise torch.OutOfMemoryError("simulated: tried to allocate 20.00 GiB")  # no 'out of memory' in the text


ENGINE = HostOutOfMemory
