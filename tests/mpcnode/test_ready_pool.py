"""The ready pool's own rules with real (light) processes: bounded (idle spares plus taken
ones still running), refilled once a taken one ended,
an idle spare that dies is replaced, `close()` leaves no process, size 0 spawns nothing;
spares run at low priority, refills wait their pause and any cold job, and no spare
starts without enough available memory.

The spares here are `python -c` processes that wait on stdin like a ready worker does,
so these tests take a second, not a torch import; the real workers are exercised in
test_ready_workers.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mpcnode.ready_workers import ReadyPool, hand_over

WAITER = [sys.executable, "-c", "import sys; line = sys.stdin.readline(); print('got', line.strip(), flush=True)"]


def _until(check: Callable[[], bool], timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while not check() and time.monotonic() < end:
        time.sleep(0.05)
    return check()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_pool_refills_after_a_take_and_replaces_a_dead_spare(tmp_path: Path) -> None:
    pool = ReadyPool(WAITER, size=2, log_dir=tmp_path / "ready", refill_delay_s=0.1, jitter_s=0.1)
    try:
        assert _until(lambda: pool.stats().idle == 2)
        first = pool.take()
        assert first is not None and first.pid not in pool.pids()
        time.sleep(1.2)  # while the taken process runs, it counts against the bound
        assert pool.stats().idle == 1 and pool.stats().spawned == 2
        assert hand_over(first, b"job-1\n")
        first.process.wait(10)
        assert "got job-1" in first.log_path.read_text()  # the spare's own log
        assert _until(lambda: pool.stats().idle == 2)
        assert pool.stats().spawned == 3 and pool.stats().taken == 1  # never more than size idle
        victim = pool.pids()[0]
        os.killpg(victim, signal.SIGKILL)
        assert _until(lambda: pool.stats().died_idle == 1 and pool.stats().idle == 2)
        assert victim not in pool.pids() and pool.stats().spawned == 4
    finally:
        pids = pool.pids()
        pool.close()
    assert pids and not any(_alive(pid) for pid in pids)
    # the idle spares' logs went too; a taken spare's log is its taker's (a job moves it)
    assert list((tmp_path / "ready").glob("spare-*.log")) == [first.log_path]
    assert pool.take() is None  # closed: nothing is handed out or spawned any more


def test_size_zero_spawns_nothing(tmp_path: Path) -> None:
    pool = ReadyPool(WAITER, size=0, log_dir=tmp_path / "ready")
    time.sleep(0.3)
    assert pool.take() is None and pool.stats().spawned == 0
    assert not (tmp_path / "ready").exists()
    pool.close()


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_spares_run_niced_and_a_refill_waits_its_pause_and_any_cold_job(tmp_path: Path) -> None:
    pool = ReadyPool(WAITER, size=1, log_dir=tmp_path / "ready", refill_delay_s=1.0, jitter_s=0.0)
    cold = None
    try:
        assert _until(lambda: pool.stats().idle == 1)
        spare = pool.take()
        assert spare is not None
        assert _nice(spare.pid) == os.nice(0) + pool.nice        # low priority from its start
        # a job started cold (no spare) counts as busy too: nothing refills while it runs
        cold = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        pool.track(cold)
        assert hand_over(spare, b"job\n") and spare.process.wait(10) == 0
        time.sleep(1.6)                                          # past the pause
        assert pool.stats().idle == 0 and pool.stats().spawned == 1
        cold.kill()
        cold.wait()
        ended = time.monotonic()
        assert _until(lambda: pool.stats().idle == 1)
        assert time.monotonic() - ended >= 0.9                   # the pause after the cold job
    finally:
        if cold is not None and cold.poll() is None:
            cold.kill()
        pool.close()


def test_no_spare_starts_without_enough_available_memory(tmp_path: Path) -> None:
    pool = ReadyPool(WAITER, size=1, log_dir=tmp_path / "ready", min_available_bytes=1 << 62)
    try:
        assert _until(lambda: pool.stats().deferred >= 1, timeout=5)
        assert pool.stats().spawned == 0 and pool.take() is None
    finally:
        pool.close()
