"""A child process with a deadline, killable as a whole process group.

Both the node's MPC workers and the dealer's per-job TTP processes run this way: each
in its own session (so a kill reaches any grandchild too), with its output in a log
file, watched by one thread that kills the group when the deadline passes. The state
is read without blocking by the job runner and the dealer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

RUNNING = "running"
EXITED = "exited"
KILLED_DEADLINE = "deadline"
KILLED_CANCEL = "cancelled"


class SupervisedProcess:
    """Start `argv` now; kill its process group at `deadline_s` or on `cancel()`.

    `on_end(self)` is called once from the watcher thread when the process has ended,
    whatever the reason; `outcome` then says why (exited / deadline / cancelled).
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        deadline_s: float,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        on_end: Callable[[SupervisedProcess], None] | None = None,
    ) -> None:
        self.started = time.monotonic()
        self.deadline_s = deadline_s
        self._lock = threading.Lock()
        self._outcome = RUNNING
        self._on_end = on_end
        self._ended = threading.Event()
        with open(log_path, "ab") as log:
            self._popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        self._watcher = threading.Thread(target=self._watch, name=f"watch-{self._popen.pid}", daemon=True)
        self._watcher.start()

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def outcome(self) -> str:
        with self._lock:
            return self._outcome

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    def cancel(self) -> None:
        """Kill the process group now (no-op if it already ended)."""
        self._kill(KILLED_CANCEL)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the process ended and `on_end` ran; True if it did in time."""
        return self._ended.wait(timeout)

    def _kill(self, reason: str) -> None:
        with self._lock:
            if self._outcome != RUNNING:
                return
            self._outcome = reason
        try:
            os.killpg(self._popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _watch(self) -> None:
        remaining = self.deadline_s - (time.monotonic() - self.started)
        try:
            self._popen.wait(timeout=max(remaining, 0.0))
        except subprocess.TimeoutExpired:
            self._kill(KILLED_DEADLINE)
            self._popen.wait()
        with self._lock:
            if self._outcome == RUNNING:
                self._outcome = EXITED
        # reap anything left in the group (a grandchild that outlived its parent)
        try:
            os.killpg(self._popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            if self._on_end is not None:
                self._on_end(self)
        finally:
            self._ended.set()
