"""Keep a job process from outliving its purpose (Linux; elsewhere a no-op).

The node's job runner (and the dealer) kill a job's process group at the deadline. If the
node process itself dies (SIGKILL, OOM), nobody would: so the job process asks the
kernel to kill it when its parent dies, and arms an alarm at the job's deadline.
"""

from __future__ import annotations

import ctypes
import math
import os
import signal
import sys

PARENT_ENV = "MUTUALMIND_PARENT_PID"
DEADLINE_ENV = "MUTUALMIND_DEADLINE_S"
_PR_SET_PDEATHSIG = 1


def bind_to_parent_and_deadline() -> None:
    """Die with the parent named in the environment, and at the deadline in it."""
    deadline = os.environ.get(DEADLINE_ENV, "")
    if deadline:
        try:
            seconds = math.ceil(float(deadline)) + 1
        except ValueError:
            seconds = 0
        if seconds > 0:
            signal.alarm(seconds)  # default action of SIGALRM ends the process
    parent = os.environ.get(PARENT_ENV, "")
    if not parent or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != parent:  # the parent died before prctl took effect
        os._exit(1)
