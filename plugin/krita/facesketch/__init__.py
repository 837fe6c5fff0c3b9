"""Face Sketch for Krita 5: a docker that turns sketches into faces (live, with a shadow guide) and
photos into pencil sketches, through the facesketch backend.

Krita imports this package at startup (pykrita/facesketch.desktop: X-KDE-Library=facesketch). If an
import fails, Krita greys the plug-in out and shows the exception text as its tooltip, so failures
here are ImportErrors with a sentence a user can act on.
"""
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
try:
    import facesketch_client  # noqa: F401  (also puts the vendored pyzmq/msgpack on sys.path)
except ImportError as exc:
    if getattr(exc, "name", None) == "facesketch_client":
        # installed as pykrita/facesketch/facesketch_client, or run from a source checkout (plugin/)
        for candidate in (_here, os.path.dirname(os.path.dirname(_here))):
            if os.path.isdir(os.path.join(candidate, "facesketch_client")) and candidate not in sys.path:
                sys.path.append(candidate)  # appended: our module names must not shadow other plug-ins'
                break
        try:
            import facesketch_client  # noqa: F401,F811
        except ImportError as exc2:
            raise ImportError(f"Face Sketch cannot find its client package ({exc2}). Reinstall with "
                              "`python3 install.py --hosts krita` from the facesketch folder.") from exc2
    else:
        raise  # facesketch_client's own sentence about missing pyzmq/msgpack

from krita import Krita, DockWidgetFactory, DockWidgetFactoryBase  # noqa: E402

if not Krita.instance().version().startswith("5"):
    raise ImportError(f"Face Sketch supports Krita 5 (this is Krita {Krita.instance().version()}).")

from .docker import DOCKER_ID, FaceSketchDocker  # noqa: E402
from .extension import FaceSketchExtension  # noqa: E402

Krita.instance().addExtension(FaceSketchExtension(Krita.instance()))
Krita.instance().addDockWidgetFactory(
    DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, FaceSketchDocker))
