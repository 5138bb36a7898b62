"""Entry point of ``python -m properties.chaos``."""

import sys

from properties.chaos._cli import main

sys.exit(main())
