"""Where things are: the one definition of the weights folder, the results folder and the local cache."""
from __future__ import annotations

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
RESULTS_DIR = os.path.join(REPO, "docs", "results")


def weights_dir() -> str:
    """The folder the engines load from: FACESKETCH_WEIGHTS_DIR if set (tests, custom models), else the shipped one."""
    return os.environ.get("FACESKETCH_WEIGHTS_DIR") or SHIPPED_WEIGHTS_DIR


def weights_path(filename: str) -> str:
    return os.path.join(weights_dir(), filename)


def cache_dir(*parts: str) -> str:
    """Training state, data packs and converted networks: FACESKETCH_CACHE or ~/.cache/facesketch."""
    root = os.environ.get("FACESKETCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "facesketch")
    return os.path.join(root, *parts)


def shown(path: str) -> str:
    """A path as docs and logs show it: relative inside the repository, as given outside it."""
    full = os.path.abspath(path)
    return os.path.relpath(full, REPO) if full.startswith(REPO + os.sep) else path
