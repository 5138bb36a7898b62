"""python -m properties.conformance TRACE_FILE_OR_DIR..."""

import sys

from properties.conformance._cli import main

sys.exit(main(sys.argv[1:]))
