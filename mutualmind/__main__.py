"""`python -m mutualmind` is the `mutualmind` command."""

import sys

from mutualmind.cli import main

sys.exit(main())
