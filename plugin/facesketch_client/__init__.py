"""facesketch host-side client: protocol, clients, settings, the local-backend launcher and the job helpers
both plug-ins share (jobs).

Pure Python + pyzmq + msgpack, so it runs inside GIMP's and Krita's own Python. install.py puts wheels of
pyzmq/msgpack built for the host's Python next to this package (`<plugin>/_vendor/<tag>/`). Importing this
package does nothing: a plug-in first calls `vendored.load(plugin_dir)` (the one sys.path change, see
vendored.py), then imports the client. The client classes are imported on first use, so `vendored` and
`jobs` work without pyzmq.

The modules import each other relatively: the package works as top-level `facesketch_client` (backend, CLI,
GIMP) and as a subpackage (Krita's plug-in carries it as `facesketch.facesketch_client`).
"""

_CLIENT_NAMES = ("AsyncClient", "BackendError", "BackendTimeout", "BackendUnreachable", "Client", "Image")

__all__ = list(_CLIENT_NAMES) + ["jobs", "protocol", "settings", "vendored"]


def __getattr__(name):
    if name in _CLIENT_NAMES:
        from . import client
        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
