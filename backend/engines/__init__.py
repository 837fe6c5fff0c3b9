"""Engines: one module per user-visible function.

Every module in this package that defines `ENGINE` (an `Engine` subclass) is offered by the
service, so a new engine is one new file here and nothing else. Engines kept elsewhere (a
third-party model, or the tests' deliberately failing engines) are named as importable modules in
FACESKETCH_EXTRA_ENGINES, comma-separated.
"""
from __future__ import annotations

import importlib
import logging
import os
import pkgutil

from .base import Engine

log = logging.getLogger(__name__)


def discover() -> dict[str, Engine]:
    """Instantiate every engine in this package, keyed by name, sorted by name."""
    engines: dict[str, Engine] = {}
    names = [f"{__name__}.{info.name}" for info in pkgutil.iter_modules(__path__)
             if info.name != "base" and not info.name.startswith("_")]
    names += [n.strip() for n in os.environ.get("FACESKETCH_EXTRA_ENGINES", "").split(",") if n.strip()]
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception:  # one broken engine must not take the others down with it
            log.exception("cannot load engine module %s; skipping it", name)
            continue
        engine_class = getattr(module, "ENGINE", None)
        if engine_class is None:
            continue
        engine = engine_class()
        engines[engine.name] = engine
    return dict(sorted(engines.items()))
