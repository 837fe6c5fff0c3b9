"""`python -m facesketch ...` is the `facesketch` command."""
import sys

from facesketch.backend.cli import main

sys.exit(main())
