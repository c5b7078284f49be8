"""A child process with a deadline, killable as a whole process group.

Both the node's MPC workers and the dealer's per-job TTP processes run this way: each
in its own session (so a kill reaches any grandchild too), with its output in a log
file, watched by one thread that kills the group when the deadline passes. The state
is read without blocking by the job runner and the dealer.

A process may also be started ahead of its job (`mpcnode.ready_workers`: a ready worker
waits on its stdin) and adopted here when the job comes: its deadline counts from then.
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


def spawn_in_group(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: int = subprocess.DEVNULL,
    nice: int = 0,
) -> subprocess.Popen[bytes]:
    """Start `argv` in a new session (its own process group), output appended to `log_path`.

    `nice` > 0 lowers the process's CPU priority by that much below this parent's (a
    node started under `nice 5` gets spares at 15, not 10: for good, as an unprivileged
    process can lower a priority, never raise it back; capped at 19), set by this parent
    right after the start (no preexec_fn, which is unsafe in a threaded server)."""
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            list(argv),
            stdin=stdin,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    if nice > 0:
        try:
            os.setpriority(os.PRIO_PROCESS, popen.pid, min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice))
        except OSError:
            pass   # gone already: its owner notices when it hands it a job
    return popen


def kill_group(pid: int) -> None:
    """SIGKILL process group `pid` (no-op when it is gone)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


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
        popen = spawn_in_group(argv, log_path=log_path, env=env, cwd=cwd, stdin=subprocess.DEVNULL)
        self._begin(popen, deadline_s, on_end)

    @classmethod
    def adopt(
        cls,
        popen: subprocess.Popen[bytes],
        *,
        deadline_s: float,
        on_end: Callable[[SupervisedProcess], None] | None = None,
    ) -> SupervisedProcess:
        """Supervise a process started earlier by `spawn_in_group` (a ready worker that was
        just handed its job): same deadline, kill and `on_end` rules, counted from now."""
        self = cls.__new__(cls)
        self._begin(popen, deadline_s, on_end)
        return self

    def _begin(self, popen: subprocess.Popen[bytes], deadline_s: float,
               on_end: Callable[[SupervisedProcess], None] | None) -> None:
        self.started = time.monotonic()
        self.deadline_s = deadline_s
        self._lock = threading.Lock()
        self._outcome = RUNNING
        self._on_end = on_end
        self._ended = threading.Event()
        self._popen = popen
        self._watcher = threading.Thread(target=self._watch, name=f"watch-{self._popen.pid}", daemon=True)
        self._watcher.start()

    @property
    def popen(self) -> subprocess.Popen[bytes]:
        """The supervised process (for `ReadyPool.track`: read its state, never wait on it)."""
        return self._popen

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
