"""Face Sketch for Krita 5: a docker that turns sketches into faces (live, with a shadow guide) and
photos into pencil sketches, through the facesketch backend.

Krita imports this package at startup (pykrita/facesketch.desktop: X-KDE-Library=facesketch). If an
import fails, Krita greys the plug-in out and shows the exception text as its tooltip, so failures
here are ImportErrors with a sentence a user can act on.

install.py copies the shared client into this package (pykrita/facesketch/facesketch_client/) and the
pyzmq/msgpack wheels for Krita's Python into pykrita/facesketch/_vendor/<tag>/. The plug-in imports the
client as a subpackage (`from .facesketch_client import ...`), so nothing of it becomes importable by a
bare name; the one sys.path change is the vendored-wheel loader call below.
"""
import os

try:
    from .facesketch_client import vendored
except ImportError as exc:
    raise ImportError(f"Face Sketch cannot find its client package ({exc}). Reinstall with "
                      "`python3 install.py --hosts krita` from the facesketch folder.") from exc

vendored.load(os.path.dirname(os.path.abspath(__file__)))  # raises ImportError with a sentence when pyzmq is missing

from krita import Krita, DockWidgetFactory, DockWidgetFactoryBase  # noqa: E402

if not Krita.instance().version().startswith("5"):
    raise ImportError(f"Face Sketch supports Krita 5 (this is Krita {Krita.instance().version()}).")

from .docker import DOCKER_ID, FaceSketchDocker  # noqa: E402
from .extension import FaceSketchExtension  # noqa: E402

Krita.instance().addExtension(FaceSketchExtension(Krita.instance()))
Krita.instance().addDockWidgetFactory(
    DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, FaceSketchDocker))
