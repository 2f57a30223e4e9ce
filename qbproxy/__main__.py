"""`python -m qbproxy` is the `qbproxy` command."""

import sys

from qbproxy.cli import main

sys.exit(main())
