"""facesketch backend: the service, the engines and the command line (imported as facesketch.backend)."""
from facesketch import __version__  # noqa: F401  (the hello reply and `facesketch --version` report it)
