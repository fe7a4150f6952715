"""`python -m promptworth.cli`: the same entry point as the `promptworth` command."""

import sys

from promptworth.cli import main

sys.exit(main())
