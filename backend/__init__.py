"""facesketch backend: the service, the engines and the command line."""
import os
import sys

__version__ = "0.1.0"

# The wire protocol lives in the host-side package (plugin/facesketch_client) so that the
# plug-ins and the service import the very same definition; make it importable from a checkout.
_plugin_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "plugin")
if _plugin_dir not in sys.path:
    sys.path.insert(0, _plugin_dir)
