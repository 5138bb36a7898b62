"""Entry point for `python -m properties.explore`."""

import sys

from properties.explore._cli import main

sys.exit(main())
