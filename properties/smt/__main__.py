"""`python -m properties.smt`: run the Z3 checks at full size and print a table."""

import sys

from properties.smt._runner import main

sys.exit(main(sys.argv[1:]))
