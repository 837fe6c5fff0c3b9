"""The installer behind install.py. Standard library only: it runs under a bare python3, before any
virtual environment exists (install.py imports it straight from the checkout).

    ops           every change goes through Ops, so that --dry-run prints it instead; atomic writes
    requirements  requirement files, and which of their requirements an environment lacks
    venv          a virtual environment: torch build, `pip install -r`, the editable install of the repo
    hosts         where GIMP 3 and Krita 5 keep user plug-ins (Linux, macOS, Windows) and which Python they run
    wheels        pyzmq and msgpack wheels for each host's own Python, unpacked into `<plug-in>/_vendor/<tag>/`
    plugins       install, uninstall and check the GIMP and Krita plug-ins
    settings      the settings file the plug-ins and the CLI share (its backend_command)
    testing       what `install.py --test` adds after setup: Debian packages for the host tests, pytest
"""
from __future__ import annotations

import importlib.util
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGIN_SRC = os.path.join(REPO, "plugin")
CLIENT_SRC = os.path.join(PLUGIN_SRC, "facesketch_client")
NAME = "facesketch"


class InstallError(Exception):
    """A problem the user can act on; install.py prints it without a traceback."""


def client_module(name: str):
    """facesketch_client's standard-library module `name` ("settings", "vendored"), loaded from the
    checkout's file: the installer shares their rules with the plug-ins, but under a bare python3 the
    package facesketch_client is not importable (it is installed into the venvs and the plug-ins only)."""
    key = "_facesketch_installer_" + name
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, os.path.join(CLIENT_SRC, name + ".py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module  # dataclasses look the module up while building a class
        spec.loader.exec_module(module)
    return sys.modules[key]
