"""facesketch host-side client: protocol, clients, settings and the local-backend launcher.

Pure Python + pyzmq + msgpack, so it runs inside GIMP's and Krita's own Python. install.py puts
wheels of pyzmq/msgpack built for the host's Python next to this package (`_vendor/<tag>/`);
they go on sys.path before anything imports zmq.
"""
import os as _os

from . import vendored

vendored.add_vendored_wheels(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))))

try:
    import msgpack as _msgpack  # noqa: F401
    import zmq as _zmq  # noqa: F401
except ImportError as _exc:  # the plug-ins show this sentence instead of a traceback
    raise ImportError(vendored.missing_dependency_message(
        _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))), _exc.name or "pyzmq")) from _exc

from . import protocol, settings  # noqa: E402
from .client import AsyncClient, BackendError, BackendTimeout, BackendUnreachable, Client, Image  # noqa: E402

__all__ = ["AsyncClient", "BackendError", "BackendTimeout", "BackendUnreachable", "Client", "Image",
           "protocol", "settings"]
