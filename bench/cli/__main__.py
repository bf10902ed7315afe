"""`python -m bench.cli`: the same as the `genbench` command."""

import sys

from . import main

sys.exit(main())
