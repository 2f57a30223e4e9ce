"""`python -m qbproxy.sandbox`: run the fake Intuit."""

import sys

from qbproxy.sandbox.cli import main

sys.exit(main())
