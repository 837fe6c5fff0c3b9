"""facesketch: AI portrait tools for GIMP 3 and Krita 5.

One installable project (pyproject.toml) whose top-level folders are imported under this name:
`facesketch.backend` (backend/: the service, engines, command line), `facesketch.models` (models/:
networks, data preparation, training, evaluation), `facesketch.bench` (bench/) and
`facesketch.installer` (facesketch/installer/: what install.py runs, standard library only).
The host side is the separate top-level package `facesketch_client` (plugin/facesketch_client/),
because the GIMP and Krita plug-ins carry a copy of it without the rest.

Importing this package imports nothing else: install.py uses it under a bare python3.
"""
__version__ = "0.1.0"
