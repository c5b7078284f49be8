"""Keep a job process from outliving its purpose (Linux; elsewhere a no-op).

The node's job runner (and the dealer) kill a job's process group at the deadline. If the
node process itself dies (SIGKILL, OOM), nobody would: so the job process asks the
kernel to kill it when its parent dies, and arms an alarm at the job's deadline.

It also hands the deadline to the data plane (`Deadline`): a party never waits on a peer
past the job's own deadline, and gives up a little before it, so that it fails on its
own, saying whom it waited for, rather than being killed without a reason.
"""

from __future__ import annotations

import ctypes
import math
import os
import signal
import sys
import time
from dataclasses import dataclass

PARENT_ENV = "MUTUALMIND_PARENT_PID"
DEADLINE_ENV = "MUTUALMIND_DEADLINE_S"
_PR_SET_PDEATHSIG = 1
# a party stops waiting a tenth of its deadline early, within these bounds (and never
# more than half of it): its clock started a moment after the runner's (which kills it
# at the deadline), and the early stop leaves it the time to write why it failed
MARGIN_MIN_S = 1.0
MARGIN_MAX_S = 30.0


@dataclass(frozen=True)
class Deadline:
    """A job's deadline as one of its processes sees it: `seconds` as the job was given
    them (for messages) and `give_up_at`, the time.monotonic() instant after which the
    process waits on no peer."""

    seconds: float
    give_up_at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """The deadline `seconds` from now."""
        margin = min(MARGIN_MAX_S, max(MARGIN_MIN_S, seconds / 10), seconds / 2)
        return cls(seconds, time.monotonic() + seconds - margin)

    def left_s(self) -> float:
        """Seconds a wait may still take (0 once the deadline is near)."""
        return max(0.0, self.give_up_at - time.monotonic())


def bind_to_parent_and_deadline() -> Deadline | None:
    """Die with the parent named in the environment, and at the deadline in it; return
    that deadline (None when the environment names none: benchmarks, tests)."""
    deadline = _deadline_from_env()
    if deadline is not None:
        arm_deadline(deadline)
    bind_to_parent()
    return deadline


def arm_deadline(deadline: Deadline) -> None:
    """End this process (SIGALRM) a second after `deadline`; a ready worker arms it when
    it is handed its job, not when it was started."""
    signal.alarm(math.ceil(deadline.seconds) + 1)  # default action of SIGALRM ends the process


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


def _deadline_from_env() -> Deadline | None:
    try:
        seconds = float(os.environ.get(DEADLINE_ENV, "") or 0)
    except ValueError:
        return None
    return Deadline.after(seconds) if 0 < seconds < math.inf else None
