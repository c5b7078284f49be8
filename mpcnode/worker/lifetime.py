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
            arm_deadline(float(deadline))
        except ValueError:
            pass
    bind_to_parent()


def arm_deadline(deadline_s: float) -> None:
    """End this process (SIGALRM) a second after `deadline_s` from now; a ready worker
    arms it when it is handed its job, not when it was started."""
    seconds = math.ceil(deadline_s) + 1 if math.isfinite(deadline_s) else 0
    if seconds > 0:
        signal.alarm(seconds)  # default action of SIGALRM ends the process


def bind_to_parent() -> None:
    """Ask the kernel to kill this process when the parent named in the environment dies."""
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
