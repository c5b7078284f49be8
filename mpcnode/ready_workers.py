"""A bounded pool of ready worker processes, started ahead of the jobs that take them.

Every MPC job (and every dealer TTP session) is a fresh process, and most of its start
is importing torch and CrypTen: seconds of CPU before the first step. The pool keeps at
most `size` processes that have done only that (`python -m mpcnode.worker --ready` or
`... ttp --ready`) and wait on stdin. `take()` hands one out (the caller writes the job
to its stdin and supervises it with `SupervisedProcess.adopt`); a background thread
refills the pool once the taken process has ended, and replaces a spare that died while
idle (with a growing pause when spares keep dying, so a broken interpreter does not
spin). Idle spares plus taken (or `track`ed cold) processes still running never exceed `size`: a refill
started while the job runs would import torch on the cores the job computes on (on 2
cores it made the job that took the spare ~2x slower); more concurrent jobs than
`size` start cold. A spare holds no job data
and serves one job only. `close()` kills every spare's process group: none outlives
the node. Each spare's output goes to `<log_dir>/spare-<pool pid>-<n>.log`; the taker renames that
file into its job's folder, so the job's log holds the whole process's output.

Refills must never starve a job (a compose run saw spares refilling on every node at
once, after a failed job, starve a restarted node's StartJob). So a spare
  * runs at low priority: `nice` (default READY_NICE = 10) from its start, so a job or
    a node's server at normal priority gets ~9 of every 10 contended CPU slices (the
    job that later takes the spare keeps that priority: an unprivileged process cannot
    raise it back; every warm job of a cluster runs at the same level);
  * is started only `refill_delay_s` plus a random `jitter_s` after the last taken
    process ended (or the last spare started), so the nodes of a cluster, whose jobs end
    together, refill at different moments and not during the next job's start;
  * is started only while the machine has `min_available_bytes` of memory available
    (MemAvailable; a spare holds ~340 MB, docs/operations.md); otherwise the pool waits.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mpcnode.supervised_process import kill_group, spawn_in_group

_LOG = logging.getLogger(__name__)
POLL_S = 0.5  # how soon a spare that died while idle is noticed and replaced
MAX_PAUSE_S = 60.0
READY_NICE = 10             # a spare's CPU priority below normal (nice value)
REFILL_DELAY_S = 2.0        # after a taken process ended, before its replacement starts
REFILL_JITTER_S = 3.0       # plus up to this much, drawn per refill (nodes refill apart)
MIN_AVAILABLE_BYTES = 1 << 30   # no spare is started below this much available memory


@dataclass(frozen=True)
class Spare:
    """A started ready worker: its process (stdin is a pipe) and its log so far."""

    process: subprocess.Popen[bytes]
    log_path: Path
    started: float  # time.monotonic() at spawn

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass(frozen=True)
class PoolStats:
    """Counters since the pool started (for tests, logs and the benchmark)."""

    size: int
    idle: int
    spawned: int
    taken: int
    died_idle: int
    deferred: int = 0   # refills put off for lack of available memory


class ReadyPool:
    """At most `size` ready processes of `argv`; thread-safe. size 0: never spawns."""

    def __init__(self, argv: Sequence[str], *, size: int, log_dir: Path,
                 env: dict[str, str] | None = None, name: str = "ready", nice: int = READY_NICE,
                 refill_delay_s: float = REFILL_DELAY_S, jitter_s: float = REFILL_JITTER_S,
                 min_available_bytes: int = MIN_AVAILABLE_BYTES) -> None:
        if size < 0:
            raise ValueError(f"ready pool size must be 0 or more, got {size}")
        self.size = size
        self.nice = nice
        self.refill_delay_s = refill_delay_s
        self.jitter_s = jitter_s
        self.min_available_bytes = min_available_bytes
        self._not_before = 0.0   # time.monotonic() before which no spare is started
        self._deferred = 0
        self._argv = list(argv)
        self._env = env
        self._log_dir = Path(log_dir)
        self._name = name
        self._lock = threading.Lock()
        self._spares: list[Spare] = []
        self._busy: list[subprocess.Popen[bytes]] = []  # taken, still running
        self._closed = False
        self._wake = threading.Event()
        self._counter = itertools.count()
        self._spawned = self._taken = self._died = 0
        self._thread: threading.Thread | None = None
        if size > 0:
            self._log_dir.mkdir(parents=True, exist_ok=True)
            _remove_stale_logs(self._log_dir)
            self._thread = threading.Thread(target=self._refill, name=f"{name}-pool", daemon=True)
            self._thread.start()

    def take(self) -> Spare | None:
        """A live spare, now the caller's (who must hand it its job or kill it); None if
        there is none. The pool refills in the background when the spare's process ends."""
        with self._lock:
            while self._spares:
                spare = self._spares.pop(0)
                if spare.process.poll() is None:
                    self._taken += 1
                    self._busy.append(spare.process)
                    self._wake.set()
                    return spare
                self._discard(spare)
        return None

    def track(self, process: subprocess.Popen[bytes]) -> None:
        """Count a job process started cold as busy: the pool starts no spare while it runs
        (and then waits the refill delay, as after a taken spare)."""
        if self.size > 0:
            with self._lock:
                self._busy.append(process)

    def stats(self) -> PoolStats:
        with self._lock:
            return PoolStats(self.size, len(self._spares), self._spawned, self._taken, self._died,
                             self._deferred)

    def pids(self) -> list[int]:
        """The idle spares' process ids."""
        with self._lock:
            return [s.pid for s in self._spares]

    def close(self) -> None:
        """Stop refilling and kill every idle spare (and reap it)."""
        with self._lock:
            self._closed = True
            spares, self._spares = self._spares, []
        self._wake.set()
        for spare in spares:
            kill_group(spare.pid)
        for spare in spares:
            try:
                spare.process.wait(10.0)
            except subprocess.TimeoutExpired:
                _LOG.error("%s pool: spare %d did not die", self._name, spare.pid)
            _close_stdin(spare.process)
            spare.log_path.unlink(missing_ok=True)
        if self._thread is not None:
            self._thread.join(10.0)

    def _discard(self, spare: Spare) -> None:
        """A spare that died while idle (lock held)."""
        self._died += 1
        _LOG.warning("%s pool: spare %d died while idle (status %s); replacing it",
                     self._name, spare.pid, spare.process.returncode)
        _close_stdin(spare.process)
        spare.log_path.unlink(missing_ok=True)

    def _refill(self) -> None:
        failures = 0  # spares that died soon after their start since one was last taken
        taken = 0
        while True:
            with self._lock:
                if self._closed:
                    return
                died_young = self._reap_dead()
                # poll() never blocks: with the watcher inside wait() it answers None
                running = [p for p in self._busy if p.poll() is None]
                if len(running) < len(self._busy):
                    self._not_before = time.monotonic() + self._pause()   # a taken process ended
                self._busy = running
                missing = self.size - len(self._spares) - len(self._busy)
                wait_s = self._not_before - time.monotonic()
                if self._taken != taken:
                    failures, taken = 0, self._taken
            if died_young:  # something is wrong with the spares: back off before the next
                failures += 1
                self._sleep(min(MAX_PAUSE_S, 0.5 * 2 ** failures))
            elif missing > 0 and wait_s > 0:
                self._sleep(min(wait_s, POLL_S))   # staggered: not yet
            elif missing > 0 and _available_bytes() < self.min_available_bytes:
                with self._lock:
                    self._deferred += 1
                _LOG.warning("%s pool: %d MB of memory available, below %d MB: no spare started",
                             self._name, _available_bytes() >> 20, self.min_available_bytes >> 20)
                self._sleep(MAX_PAUSE_S / 6)
            elif missing > 0:
                self._spawn_one()
                with self._lock:   # the next spare (size > 1) starts a pause later
                    self._not_before = time.monotonic() + self._pause()
            else:
                self._sleep(POLL_S)

    def _pause(self) -> float:
        """The refill delay plus a fresh random part of the jitter."""
        return self.refill_delay_s + self.jitter_s * secrets.randbelow(1001) / 1000

    def _reap_dead(self) -> bool:
        """Drop idle spares that died (lock held); True if one died within 30 s of its start."""
        young = False
        for spare in [s for s in self._spares if s.process.poll() is not None]:
            self._spares.remove(spare)
            self._discard(spare)
            young = young or time.monotonic() - spare.started < 30.0
        return young

    def _sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _spawn_one(self) -> None:
        # named by the pool's process: two pools on one folder (a test's second runner) never clash
        log_path = self._log_dir / f"spare-{os.getpid()}-{next(self._counter)}.log"
        try:
            process = spawn_in_group(self._argv, log_path=log_path, env=self._env, stdin=subprocess.PIPE,
                                     nice=self.nice)
        except OSError as err:
            _LOG.error("%s pool: could not start a spare: %s", self._name, err)
            log_path.unlink(missing_ok=True)
            self._wake.wait(MAX_PAUSE_S)
            return
        spare = Spare(process, log_path, time.monotonic())
        with self._lock:
            if not self._closed:
                self._spares.append(spare)
                self._spawned += 1
                return
        kill_group(spare.pid)
        spare.process.wait()
        _close_stdin(spare.process)
        log_path.unlink(missing_ok=True)


def hand_over(spare: Spare, message: bytes) -> bool:
    """Write the job's one-line message to the spare's stdin and close it; False when
    the spare died before reading it (the caller then kills it and cold-starts)."""
    stdin = spare.process.stdin
    if stdin is None:
        return False
    try:
        stdin.write(message)
        stdin.close()
    except OSError:
        return False
    return True


def _available_bytes() -> int:
    """MemAvailable from /proc/meminfo (a very large number where there is none)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 1 << 62


def _remove_stale_logs(log_dir: Path) -> None:
    """Spare logs of a pool whose process is gone (a node that was killed)."""
    for stale in log_dir.glob("spare-*-*.log"):
        owner = stale.name.split("-")[1]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            stale.unlink(missing_ok=True)


def _close_stdin(process: subprocess.Popen[bytes]) -> None:
    try:
        if process.stdin is not None:
            process.stdin.close()
    except OSError:
        pass
