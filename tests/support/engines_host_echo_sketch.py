"""The sketch stand-in of engines_host_echo (one ENGINE per module, as FACESKETCH_EXTRA_ENGINES loads them)."""
from engines_host_echo import EchoSketchEngine

ENGINE = EchoSketchEngine
