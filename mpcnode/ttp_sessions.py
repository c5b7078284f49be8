"""The dealer's per-job TTP processes (logic; `mpcnode.dealer` puts gRPC in front).

For each job the coordinator asks the dealer to join the job's rendezvous: the dealer
starts `python -m mpcnode.worker.ttp` as rank world_size in its own process group,
kills it at the job's deadline or on cancel, and reports how it ended. CrypTen's TTP
keeps no state beyond one job, so neither does this: a session lives as long as its
process, and its log sits in `<work_dir>/<job_id>.log`.

With `ready_workers` > 0 the dealer keeps that many TTP processes started ahead of
their jobs (`mpcnode.ready_workers`, CrypTen already imported): a session takes one
when there is one (its arguments go to the process's stdin, its deadline counts from
then) and starts one cold otherwise.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from mpcnode.ready_workers import PoolStats, ReadyPool, hand_over
from mpcnode.supervised_process import (
    EXITED,
    KILLED_CANCEL,
    KILLED_DEADLINE,
    SupervisedProcess,
    kill_group,
)
from mpcnode.worker.heap import HUGE_PAGES_ENV
from mpcnode.worker.job_spec import (
    MEMBER_PATTERN,
    check_party,
    check_port,
    validate_host,
    validate_job_id,
    validate_plane_address,
)
from mpcnode.worker.lifetime import DEADLINE_ENV, PARENT_ENV
from mutualmind.errors import AlreadyExists, InvalidInput, NotFound, Unavailable
from mutualmind.vocabulary.data_plane import DEFAULT_PLANE, check_plane
from mutualmind.vocabulary.deadlines import MAX_JOB_S

MAX_SESSIONS = 64
MAX_READY = 16  # each holds torch and CrypTen in memory (docs/operations.md)


@dataclass(frozen=True)
class SessionStatus:
    job_id: str
    state: str  # running | done | failed | cancelled
    message: str = ""


# how a TTP process states the typed error it ended with (`mpcnode.worker.ttp.main`)
TTP_PREFIX = "ttp: "
MAX_REASON_CHARS = 500


class TtpSessions:
    """Starts, watches and stops one TTP process per job; thread-safe."""

    def __init__(self, work_dir: Path | str, *, python: str = sys.executable,
                 certs_dir: Path | None = None, ready_workers: int = 0) -> None:
        if not (isinstance(ready_workers, int) and 0 <= ready_workers <= MAX_READY):
            raise InvalidInput(f"ready workers {ready_workers!r} must be 0 to {MAX_READY}")
        # absolute: both reach TTP processes, which a ready pool starts ahead of any job
        # (`dealer serve --work-dir dealer-work --certs mm-certs` as docs/operations.md says)
        self.work_dir = Path(work_dir).absolute()
        # the dealer's cluster folder, for the gRPC data plane
        self._certs_dir = Path(certs_dir).absolute() if certs_dir is not None else None
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._python = python
        self._lock = threading.Lock()
        self._sessions: dict[str, SupervisedProcess] = {}
        self._pool = ReadyPool([python, "-m", "mpcnode.worker.ttp", "--ready"], size=ready_workers,
                               log_dir=self.work_dir / "ready", env=self._env(None), name="ttp")

    @property
    def ready_pool(self) -> ReadyPool:
        """TTP processes started ahead of their jobs (size 0: every session starts cold)."""
        return self._pool

    def ready_stats(self) -> PoolStats:
        return self._pool.stats()

    def _env(self, deadline_s: float | None) -> dict[str, str]:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        env["OMP_NUM_THREADS"] = "1"
        env.update(HUGE_PAGES_ENV)
        env[PARENT_ENV] = str(os.getpid())  # the TTP dies with the dealer
        env.pop(DEADLINE_ENV, None)
        if deadline_s is not None:
            env[DEADLINE_ENV] = repr(float(deadline_s))
        return env

    def _launch(self, job_id: str, args: list[str], deadline_s: float) -> SupervisedProcess:
        """The session's TTP process: a ready one if the pool has one, else a cold start."""
        log_path = self.work_dir / f"{job_id}.log"
        spare = self._pool.take()
        if spare is not None:
            message = json.dumps({"args": args, "deadline_s": deadline_s}).encode() + b"\n"
            try:
                os.replace(spare.log_path, log_path)
                handed = hand_over(spare, message)
            except OSError:
                handed = False
            if handed:
                return SupervisedProcess.adopt(spare.process, deadline_s=deadline_s)
            kill_group(spare.pid)
            spare.process.wait()
        cold = SupervisedProcess([self._python, "-m", "mpcnode.worker.ttp", *args], log_path=log_path,
                                 deadline_s=deadline_s, env=self._env(deadline_s))
        self._pool.track(cold.popen)   # no spare is started while this session runs
        return cold

    def start(
        self,
        job_id: str,
        world_size: int,
        master_addr: str,
        master_port: int,
        deadline_s: float,
        gloo_interface: str = "",
        *,
        plane: str = DEFAULT_PLANE,
        plane_addresses: tuple[str, ...] = (),
        plane_members: tuple[str, ...] = (),
    ) -> SessionStatus:
        """Join job `job_id`'s rendezvous as its TTP; refuse bad input before spawning."""
        validate_job_id(job_id)
        check_party(0, world_size)
        validate_host(master_addr)
        check_port(master_port)
        if not (isinstance(deadline_s, (int, float)) and 0 < deadline_s <= MAX_JOB_S):
            raise InvalidInput(f"deadline {deadline_s!r} s must be in (0, {MAX_JOB_S:.0f}]")
        args = ["--world-size", str(world_size), "--master-addr", master_addr, "--master-port", str(master_port)]
        if gloo_interface:
            args += ["--gloo-interface", gloo_interface]
        args += self._plane_args(job_id, world_size, plane, plane_addresses, plane_members)
        with self._lock:
            if job_id in self._sessions:
                raise AlreadyExists(f"the dealer already serves job {job_id!r}; use a new job id")
            running = sum(1 for p in self._sessions.values() if p.returncode is None)
            if running >= MAX_SESSIONS:
                raise InvalidInput(f"the dealer already serves {running} jobs; wait for one to end")
            self._sessions[job_id] = self._launch(job_id, args, float(deadline_s))
        return self.status(job_id)

    def _plane_args(self, job_id: str, world_size: int, plane: str, addresses: tuple[str, ...],
                    members: tuple[str, ...]) -> list[str]:
        """The TTP's gRPC-plane arguments, checked before anything is spawned. The dealer
        serves no job on gloo: it never starts its TTP in bench mode."""
        check_plane(plane)
        if self._certs_dir is None:
            raise Unavailable("this dealer was started without its cluster folder; it cannot "
                              "serve a job on the gRPC data plane")
        if len(addresses) != world_size or (members and len(members) != world_size):
            raise InvalidInput(f"a gRPC-plane job of {world_size} nodes needs {world_size} node "
                               "addresses (and member names), in rank order")
        for address in addresses:
            validate_plane_address(address)
        for member in members:
            if not MEMBER_PATTERN.fullmatch(member):
                raise InvalidInput(f"member name {member!r} is not a certificate name")
        args = ["--plane", "grpc", "--job-id", job_id, "--addresses", ",".join(addresses),
                "--certs-dir", str(self._certs_dir)]
        return args + (["--members", ",".join(members)] if members else [])

    def status(self, job_id: str) -> SessionStatus:
        process = self._get(job_id)
        outcome = process.outcome
        if outcome == KILLED_DEADLINE:
            return SessionStatus(job_id, "failed", "stopped at the job's deadline")
        if outcome == KILLED_CANCEL:
            return SessionStatus(job_id, "cancelled", "cancelled")
        if outcome == EXITED and process.wait(0):
            if process.returncode == 0:
                return SessionStatus(job_id, "done")
            return SessionStatus(job_id, "failed", self._failure(job_id, process.returncode))
        return SessionStatus(job_id, "running")

    def _failure(self, job_id: str, returncode: int | None) -> str:
        """Why the TTP failed: its own typed reason (the log's last `ttp: ` line, which
        names members and addresses only, never a path), else its exit status."""
        message = f"TTP process exited with status {returncode}"
        try:
            lines = (self.work_dir / f"{job_id}.log").read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return message
        reasons = [line.removeprefix(TTP_PREFIX) for line in lines if line.startswith(TTP_PREFIX)]
        return f"{message}: {reasons[-1][:MAX_REASON_CHARS]}" if reasons else message

    def cancel(self, job_id: str) -> SessionStatus:
        process = self._get(job_id)
        process.cancel()
        process.wait(10.0)
        return self.status(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> SessionStatus:
        self._get(job_id).wait(timeout)
        return self.status(job_id)

    def close(self) -> None:
        """Kill every session's process and every idle ready one (dealer shutdown)."""
        self._pool.close()
        with self._lock:
            processes = list(self._sessions.values())
        for process in processes:
            process.cancel()

    def _get(self, job_id: str) -> SupervisedProcess:
        with self._lock:
            process = self._sessions.get(job_id)
        if process is None:
            raise NotFound(f"the dealer serves no job {job_id!r}")
        return process
