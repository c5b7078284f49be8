"""`python -m mpcnode.worker SPEC.json`: one party of one MPC job (see run.py)."""

import sys

from mpcnode.worker.run import main

sys.exit(main())
