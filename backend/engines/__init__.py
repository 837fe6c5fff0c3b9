"""Engines: one module per user-visible function.

Every module in this package that defines `ENGINE` (an `Engine` subclass) is offered by the
service, so a new engine is one new file here and nothing else.
"""
from __future__ import annotations

import importlib
import logging
import pkgutil

from .base import Engine

log = logging.getLogger(__name__)


def discover() -> dict[str, Engine]:
    """Instantiate every engine in this package, keyed by name, sorted by name."""
    engines: dict[str, Engine] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        engine_class = getattr(module, "ENGINE", None)
        if engine_class is None:
            continue
        engine = engine_class()
        engines[engine.name] = engine
    return dict(sorted(engines.items()))
