"""`python -m fake_intuit`: run the fake Intuit."""

import sys

from fake_intuit.cli import main

sys.exit(main())
