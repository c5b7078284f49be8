"""`python -m mpcnode.worker SPEC.json`: one party of one MPC job (see run.py).

`python -m mpcnode.worker --ready`: the same, started ahead of its job (see ready.py).
"""

import sys

from mpcnode.worker.run import main

sys.exit(main())
