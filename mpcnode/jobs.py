"""The node's MPC job runner: one worker process per job, a deadline, a signed result.

The coordinator asks every node to start the same job (each with its own rank). This
module validates the request, writes the worker's spec into `<data_dir>/jobs/<job_id>/`,
starts `python -m mpcnode.worker` there in its own process group, and watches it: past
the deadline or on cancel the whole group is killed; when the worker finishes, the
node signs an attestation over (round id, job digest, revealed metrics in integer
millionths) with its Ed25519 key - the bytes of `mutualmind.vocabulary.attestation.attestation_message`.
The coordinator accepts a result only when every node signed identical values.

With `ready_workers` > 0 the runner keeps that many workers started ahead of their jobs
(`mpcnode.ready_workers`): a job takes one if there is one (its spec's path goes to the
worker's stdin, its deadline counts from then) and starts a worker cold otherwise.

No gRPC here: `mpcnode.servicer` maps requests and replies. A job is never started
twice under one id, and a refused request leaves no directory behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mpcnode.ready_workers import PoolStats, ReadyPool, hand_over
from mpcnode.supervised_process import (
    KILLED_CANCEL,
    KILLED_DEADLINE,
    SupervisedProcess,
    kill_group,
)
from mpcnode.worker.heap import HUGE_PAGES_ENV
from mpcnode.worker.inference import PREDICTIONS_FILE
from mpcnode.worker.job_spec import (
    DEFAULT_BUDGET_BYTES,
    check_party,
    check_port,
    parse_worker_spec,
    validate_job_id,
)
from mpcnode.worker.lifetime import DEADLINE_ENV, PARENT_ENV
from mpcnode.worker.run import ERROR_FILE, PROGRESS_FILE, RESULT_FILE, WEIGHTS_FILE, write_atomic
from mutualmind.errors import AlreadyExists, InvalidInput, NotFound, Unavailable
from mutualmind.vocabulary.attestation import attestation_message
from mutualmind.vocabulary.beacon import check_beacon
from mutualmind.vocabulary.copy_rule import check_copies
from mutualmind.vocabulary.data_plane import DEFAULT_PLANE, check_plane
from mutualmind.vocabulary.deadlines import MAX_JOB_S
from mutualmind.vocabulary.inference import INFERENCE_JOB, PREDICTIONS, TRAINING_JOB
from mutualmind.vocabulary.model_spec import to_micro
from mutualmind.vocabulary.signing_keys import sign
from mutualmind.vocabulary.states import JobState
from mutualmind.vocabulary.tournament import freeze_attestation_message, result_attestation_message
from mutualmind.vocabulary.tournament_job import (
    READS_FROZEN,
    RESOLVE,
    parse_tournament_order,
    worker_tournament,
)

SPEC_FILE = "spec.json"
REQUEST_FILE = "request.json"
LOG_FILE = "worker.log"
DELIVERY_FILE = "delivery.json"
READY_DIR = "ready-workers"  # the spares' logs until a job takes one
MAX_READY_WORKERS = 16  # each holds torch and CrypTen in memory (docs/operations.md)
_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobRequest:
    """What the coordinator asks of this node for one job (mirrors node.proto JobSpec)."""

    job_id: str
    round_id: str
    world_size: int
    rank: int
    master_addr: str
    master_port: int
    dataset_ids: tuple[str, ...]
    validation_dataset_id: str
    model_spec_json: str
    job_digest: bytes
    deadline_s: float
    dealer_addr: str = ""
    gloo_interface: str = ""
    plane: str = DEFAULT_PLANE              # nothing else runs here: see mutualmind.vocabulary.data_plane
    plane_addresses: tuple[str, ...] = ()
    plane_members: tuple[str, ...] = ()
    # a tournament's job (issue 15): `tournament_job.TournamentOrder` JSON ("" = a round's)
    tournament_json: str = ""
    kind: str = TRAINING_JOB                # or "inference" (issue 16): see mpcnode.inference_jobs
    model_dir: str = ""                     # inference: the trained job's folder on this node
    beacon: bytes = b""  # the coordinator's random seed of a round's job (vocabulary.beacon), signed


@dataclass(frozen=True)
class JobResult:
    """A finished job: the revealed values and this node's signature over them."""

    metrics: list[float]
    metrics_micro: list[int]
    metric: str
    accuracy_full: float | None
    attestation: bytes  # Ed25519 signature over attestation_payload
    attestation_payload: bytes  # canonical JSON: mutualmind.vocabulary.attestation.attestation_message
    comm: dict[str, float]
    wall_s: float
    weights_path: str
    weights_manifest: list[dict[str, object]]  # name, shape, offset of each tensor in the file
    copies: dict[str, list[int]] | None = None  # copy detection's counts and samples (signed too)


@dataclass
class JobStatus:
    job_id: str
    state: JobState
    message: str = ""
    progress: float = 0.0
    result: JobResult | None = None
    error_code: str = ""


@dataclass
class _Job:
    request: JobRequest
    directory: Path
    status: JobStatus
    process: SupervisedProcess | None = None
    done: threading.Event = field(default_factory=threading.Event)
    launch: str = "cold"  # or "ready": the worker was a spare of the ready pool


class JobRunner:
    """Runs this node's MPC jobs; thread-safe (the gRPC servicer calls it from many threads)."""

    def __init__(
        self,
        data_dir: Path | str,
        signing_key: Ed25519PrivateKey,
        *,
        python: str = sys.executable,
        worker_threads: int = 1,
        worker_memory_bytes: int = DEFAULT_BUDGET_BYTES,
        certs_dir: Path | str | None = None,
        ready_workers: int = 0,
    ) -> None:
        if not (isinstance(ready_workers, int) and 0 <= ready_workers <= MAX_READY_WORKERS):
            raise InvalidInput(f"ready workers {ready_workers!r} must be 0 to {MAX_READY_WORKERS}")
        self.data_dir = Path(data_dir)
        self.jobs_dir = self.data_dir / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self._key = signing_key
        self._python = python
        self._threads = worker_threads
        self._memory = worker_memory_bytes
        # the node's cluster folder: its certificate for the gRPC data plane
        self._certs_dir = str(certs_dir) if certs_dir is not None else ""
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._pool = ReadyPool([python, "-m", "mpcnode.worker", "--ready"], size=ready_workers,
                               log_dir=self.data_dir / READY_DIR, env=self._worker_env(None),
                               name="worker")

    @property
    def ready_pool(self) -> ReadyPool:
        """The pool of workers started ahead of their jobs (size 0: jobs start cold)."""
        return self._pool

    def ready_stats(self) -> PoolStats:
        return self._pool.stats()

    def _plane_fields(self, request: JobRequest) -> dict[str, object]:
        """The worker spec's data-plane fields (checked by the worker spec's parser). A node
        runs no job on gloo: it never starts its workers in bench mode."""
        plane = check_plane(request.plane or DEFAULT_PLANE)
        if not self._certs_dir:
            raise Unavailable("this node was started without its cluster folder, so it cannot "
                              "join a job on the gRPC data plane; restart it with --certs")
        return {"plane": plane, "plane_addresses": list(request.plane_addresses),
                "plane_members": list(request.plane_members), "certs_dir": self._certs_dir}

    def _tournament_fields(self, request: JobRequest) -> dict[str, object]:
        """The worker spec's tournament fields: the models, stakes and cap the order's
        signed records name (checked by `mpcnode.tournament_check` before this), and for a
        resolve this node's own freeze job directory."""
        if not request.tournament_json:
            return {}
        order = parse_tournament_order(request.tournament_json)
        freeze_dir = ""
        if order.phase in READS_FROZEN:
            freeze = self.status(validate_job_id(order.freeze_job_id))
            if freeze.state != JobState.DONE:
                raise NotFound(f"this node's freeze job {order.freeze_job_id!r} is {freeze.state}; "
                               "the tournament's models are not frozen here")
            freeze_dir = str(self.jobs_dir / order.freeze_job_id)
        worker = worker_tournament(order, freeze_dir)
        return {"tournament": worker.to_json(), "model": worker.models[0].spec.to_json()}

    def start(self, request: JobRequest) -> str:
        """Validate and start a job; returns its id. Refusals leave nothing on disk."""
        job_id = validate_job_id(request.job_id)
        check_party(request.rank, request.world_size)
        check_port(request.master_port)
        if not (isinstance(request.deadline_s, (int, float)) and 0 < request.deadline_s <= MAX_JOB_S):
            raise InvalidInput(f"deadline {request.deadline_s!r} s must be in (0, {MAX_JOB_S:.0f}]")
        if len(request.job_digest) != 32:
            raise InvalidInput(f"job digest must be a 32-byte SHA-256, got {len(request.job_digest)} bytes")
        # a round's training job draws its copy sample and coalitions from the beacon:
        # required there; tournament and inference jobs draw nothing at random
        round_job = request.kind in ("", TRAINING_JOB) and not request.tournament_json
        beacon = check_beacon(request.beacon.hex()) if round_job or request.beacon else ""
        directory = self.jobs_dir / job_id
        tournament = self._tournament_fields(request)
        spec_text = json.dumps(
            {
                "job_id": job_id,
                "round_id": request.round_id,
                "rank": request.rank,
                "world_size": request.world_size,
                "master_addr": request.master_addr,
                "master_port": request.master_port,
                "data_dir": str(self.data_dir),
                "dataset_ids": list(request.dataset_ids),
                "validation_dataset_id": request.validation_dataset_id,
                "model": tournament.pop("model", request.model_spec_json),
                "output_dir": str(directory),
                "gloo_interface": request.gloo_interface,
                "memory_budget_bytes": self._memory,
                "kind": request.kind,
                "model_dir": request.model_dir,
                "beacon": beacon,
                **self._plane_fields(request),
                **tournament,
            },
            indent=2,
        )
        spec = parse_worker_spec(spec_text)  # every field checked before anything is written
        spec_text = spec.to_json()
        with self._lock:
            if job_id in self._jobs or directory.exists():
                raise AlreadyExists(f"job {job_id!r} was already started on this node; use a new job id")
            directory.mkdir(mode=0o700)
            job = _Job(request, directory, JobStatus(job_id, JobState.QUEUED))
            self._jobs[job_id] = job
        try:
            (directory / SPEC_FILE).write_text(spec_text, encoding="utf-8")
            (directory / REQUEST_FILE).write_text(_request_json(request), encoding="utf-8")
            job.process = self._launch(job)
        except OSError as err:
            with self._lock:
                self._jobs.pop(job_id, None)
            shutil.rmtree(directory, ignore_errors=True)
            _LOG.error("job %s: could not start its worker in %s: %s", job_id, directory, err)
            raise InvalidInput(f"could not start the worker for job {job_id!r} "
                               f"({err.strerror or type(err).__name__}); the node's log names the cause") from err
        with self._lock:
            if job.status.state == JobState.QUEUED:
                job.status.state = JobState.RUNNING
        return job_id

    def _launch(self, job: _Job) -> SupervisedProcess:
        """The job's worker: a ready spare if the pool has one, else a cold start."""
        deadline_s = float(job.request.deadline_s)
        spec_path, log_path = job.directory / SPEC_FILE, job.directory / LOG_FILE

        def on_end(process: SupervisedProcess) -> None:
            self._finish(job, process)

        spare = self._pool.take()
        if spare is not None:
            message = json.dumps({"spec": str(spec_path), "deadline_s": deadline_s}).encode() + b"\n"
            try:
                os.replace(spare.log_path, log_path)  # the job's log holds the spare's start too
                handed = hand_over(spare, message)
            except OSError as err:
                _LOG.warning("job %s: could not move the ready worker's log: %s", job.status.job_id, err)
                handed = False
            if handed:
                job.launch = "ready"
                return SupervisedProcess.adopt(spare.process, deadline_s=deadline_s, on_end=on_end)
            _LOG.warning("job %s: ready worker %d was gone; starting one cold", job.status.job_id, spare.pid)
            kill_group(spare.pid)
            spare.process.wait()
        cold = SupervisedProcess(
            [self._python, "-m", "mpcnode.worker", str(spec_path)],
            log_path=log_path,
            deadline_s=deadline_s,
            env=self._worker_env(deadline_s),
            on_end=on_end,
        )
        self._pool.track(cold.popen)   # no spare is started while this job runs
        return cold

    def launch_mode(self, job_id: str) -> str:
        """How this node started the job's worker: "ready" (a spare) or "cold"."""
        return self._get(job_id).launch

    def status(self, job_id: str) -> JobStatus:
        """The job's state now (progress read from the worker's progress file)."""
        job = self._get(job_id)
        with self._lock:
            status = JobStatus(**vars(job.status))
        if status.state == JobState.RUNNING and job.request.kind == INFERENCE_JOB:
            return self._early_result(job, status)
        if status.state == JobState.RUNNING:
            status.progress = _read_progress(job.directory)
        return status

    def _early_result(self, job: _Job, status: JobStatus) -> JobStatus:
        """An inference job is done once its worker wrote result.json (atomically, after
        predictions.bin): its predictions are complete while the worker still closes its
        data-plane streams and exits (seconds, measured: ~4 s of a one-row job)."""
        if not (job.directory / RESULT_FILE).exists():
            status.progress = _read_progress(job.directory)
            return status
        try:
            result = self._sign(job)
        except (OSError, ValueError, KeyError, TypeError, InvalidInput):
            return status   # the process's end decides (_finish)
        with self._lock:
            if job.status.state == JobState.RUNNING:
                job.status = JobStatus(job.status.job_id, JobState.DONE, progress=1.0, result=result)
            return JobStatus(**vars(job.status))

    def cancel(self, job_id: str) -> JobStatus:
        """Kill the job's worker (no-op when it already ended) and return its state."""
        job = self._get(job_id)
        if job.process is not None:
            job.process.cancel()
            job.process.wait(10.0)
        return self.status(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> JobStatus:
        """Block until the job ended (or `timeout`); for the CLI, the dealer and tests."""
        job = self._get(job_id)
        job.done.wait(timeout)
        return self.status(job_id)

    def weights_path(self, job_id: str) -> Path:
        """This node's shares of the job's trained full model (raw LE int64)."""
        status = self.status(job_id)
        if status.state != JobState.DONE or status.result is None:
            raise NotFound(f"job {job_id!r} has no trained model on this node (state {status.state})")
        return Path(status.result.weights_path)

    def frozen_commitments(self, job_id: str) -> list[str]:
        """The weight-share commitments this node's finished freeze job computed."""
        return [str(c) for c in self.freeze_result(job_id)[0]["commitments"]]

    def freeze_result(self, job_id: str) -> tuple[dict[str, Any], Path]:
        """A finished tournament job's result document (as its worker wrote it) and its
        directory (where the frozen share files are)."""
        status = self.status(validate_job_id(job_id))
        job = self._get(job_id)
        if status.state != JobState.DONE or not job.request.tournament_json:
            raise NotFound(f"this node holds no finished tournament freeze job {job_id!r}")
        return json.loads((job.directory / RESULT_FILE).read_text(encoding="utf-8")), job.directory

    def request_of(self, job_id: str) -> JobRequest:
        """What the coordinator asked for job `job_id` (as this node checked and ran it)."""
        return self._get(job_id).request

    def model_share(self, job_id: str) -> tuple[bytes, list[dict[str, object]]]:
        """This node's share of the trained model and its manifest (name, shape, offset).

        For `provider collect-model`: the caller must have checked that the requester
        is the round's sponsor; with every node's share, `mutualmind.vocabulary.model_file`
        reconstructs the model.
        """
        path = self.weights_path(job_id)
        result = self.status(job_id).result
        assert result is not None  # weights_path checked it
        return path.read_bytes(), list(result.weights_manifest)

    def close(self) -> None:
        """Cancel every running job and kill the idle ready workers (server shutdown)."""
        self._pool.close()
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            if job.process is not None:
                job.process.cancel()

    def _get(self, job_id: str) -> _Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            job = self._load_from_disk(job_id)
        if job is None:
            raise NotFound(f"this node knows no job {job_id!r}; start it first")
        return job

    def _load_from_disk(self, job_id: str) -> _Job | None:
        """A job of an earlier run of this node: done if its worker wrote a result (its
        model shares stay collectable after a restart), else failed."""
        validate_job_id(job_id)
        directory = self.jobs_dir / job_id
        try:
            raw = json.loads((directory / REQUEST_FILE).read_text(encoding="utf-8"))
            raw["dataset_ids"] = tuple(raw["dataset_ids"])
            raw["job_digest"] = bytes.fromhex(raw["job_digest"])
            raw["beacon"] = bytes.fromhex(raw.get("beacon", ""))  # a job of before the beacon: none
            request = JobRequest(**raw)
        except (OSError, ValueError, TypeError, KeyError):
            return None
        job = _Job(request, directory, JobStatus(job_id, JobState.FAILED))
        if (directory / RESULT_FILE).exists():
            try:
                job.status = JobStatus(job_id, JobState.DONE, progress=1.0, result=self._sign(job))
            except (OSError, ValueError, KeyError, TypeError, InvalidInput) as err:
                job.status.error_code, job.status.message = "internal", f"stored result is unreadable: {err}"
        else:
            job.status.error_code = "aborted"
            job.status.message = "the node restarted while this job ran; re-run the round"
        job.done.set()
        with self._lock:
            return self._jobs.setdefault(job_id, job)

    def _worker_env(self, deadline_s: float | None) -> dict[str, str]:
        """A worker's environment; a ready worker's has no deadline (its job brings one)."""
        env = dict(os.environ)
        env[PARENT_ENV] = str(os.getpid())  # the worker dies with this node process
        env.pop(DEADLINE_ENV, None)
        if deadline_s is not None:
            env[DEADLINE_ENV] = repr(float(deadline_s))
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        # several parties share few cores: one thread each avoids oversubscription
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(self._threads)
        env.update(HUGE_PAGES_ENV)
        return env

    def _finish(self, job: _Job, process: SupervisedProcess) -> None:
        """Called once by the watcher thread when the worker process has ended."""
        request = job.request
        with self._lock:
            early = job.status.state == JobState.DONE   # an inference job's result came first
        if early:
            job.done.set()
            return
        status = JobStatus(job.status.job_id, JobState.FAILED)
        if process.outcome == KILLED_DEADLINE:
            status.error_code = "deadline"
            status.message = (
                f"job ran past its deadline of {request.deadline_s:g} s and was stopped; "
                "a peer may be down - check the nodes and the dealer, then re-run the round"
            )
        elif process.outcome == KILLED_CANCEL:
            status.state = JobState.CANCELLED
            status.error_code = "aborted"
            status.message = "job was cancelled"
        elif process.returncode == 0:
            try:
                status = JobStatus(job.status.job_id, JobState.DONE, progress=1.0, result=self._sign(job))
            except (OSError, ValueError, KeyError, TypeError, InvalidInput) as err:
                _LOG.error("job %s: worker result in %s is unreadable: %s", job.status.job_id,
                           job.directory, err)
                status.error_code = "internal"
                status.message = (f"job {job.status.job_id}: the worker finished but its result "
                                  "is unreadable (the node's log names the cause); re-run the round")
        else:
            status.error_code, status.message = _read_error(job.directory, process.returncode)
            if status.error_code == "internal":
                _LOG.error("job %s: worker exited with status %s; its log is %s",
                           job.status.job_id, process.returncode, job.directory / LOG_FILE)
                status.message = (f"job {job.status.job_id}: {status.message}")
        with self._lock:
            job.status = status
        job.done.set()

    def record_delivery(self, job_id: str, message: bytes) -> bytes:
        """Sign `message` (the order's `delivery_message`) once this node has handed the
        job's prediction shares to their user; the signature becomes the job's attestation,
        which the coordinator collects to settle the fee. Kept on disk across restarts."""
        job = self._get(job_id)
        signature = sign(self._key, message)
        write_atomic(job.directory / DELIVERY_FILE, json.dumps(
            {"message": message.decode("utf-8"), "signature": signature.hex()}).encode())
        with self._lock:
            if job.status.result is not None:
                job.status.result = replace(job.status.result, attestation=signature,
                                            attestation_payload=message)
        return signature

    def _sign(self, job: _Job) -> JobResult:
        document = json.loads((job.directory / RESULT_FILE).read_text(encoding="utf-8"))
        if job.request.kind == INFERENCE_JOB:   # a round's model or a tournament's metamodel
            return _inference_result(job.directory, document)
        if job.request.tournament_json:
            return self._sign_tournament(job, document)
        metrics = [float(v) for v in document["metrics"]]
        micro = [to_micro(v) for v in metrics]
        # what copy detection revealed (absent from a worker of before issue 13)
        copies = document.get("copies")
        if copies is not None:
            copies = check_copies(copies, len(job.request.dataset_ids))
        payload = attestation_message(job.request.round_id, job.request.job_digest.hex(), micro, copies,
                                      job.request.beacon.hex() or None)
        accuracy = document.get("accuracy_full")
        return JobResult(
            metrics=metrics,
            metrics_micro=micro,
            metric=str(document["metric"]),
            accuracy_full=None if accuracy is None else float(accuracy),
            attestation=sign(self._key, payload),
            attestation_payload=payload,
            comm={k: float(v) for k, v in document["comm"].items()},
            wall_s=float(document["wall_s"]),
            weights_path=str(job.directory / WEIGHTS_FILE),
            weights_manifest=list(document["weights"]["tensors"]),
            copies=copies,
        )


    def _sign_tournament(self, job: _Job, document: dict[str, object]) -> JobResult:
        """The freeze's commitments or the resolution's numbers, signed as the ledger's
        `models_frozen` / `tournament_result` attestations expect."""
        order = parse_tournament_order(job.request.tournament_json)
        digest = job.request.job_digest.hex()
        if order.phase == RESOLVE:
            payload = result_attestation_message(
                order.tournament_id, digest, int(document["metamodel_metric_micro"]),  # type: ignore[call-overload]
                [int(c) for c in document["contributions_micro"]],  # type: ignore[attr-defined]
                [[int(c) for c in row] for row in document["dataset_contributions_micro"]])  # type: ignore[attr-defined]
        else:
            payload = freeze_attestation_message(order.tournament_id, digest,
                                                 [str(c) for c in document["commitments"]])  # type: ignore[attr-defined]
        return JobResult(metrics=[], metrics_micro=[], metric=order.phase, accuracy_full=None,
                         attestation=sign(self._key, payload), attestation_payload=payload,
                         comm={k: float(v) for k, v in document["comm"].items()},  # type: ignore[attr-defined]
                         wall_s=float(document["wall_s"]),  # type: ignore[arg-type]
                         weights_path="", weights_manifest=[])


def _inference_result(directory: Path, document: dict[str, object]) -> JobResult:
    """A finished inference job: nothing revealed, nothing signed until the user fetched its
    prediction shares (then `record_delivery`'s signature is the attestation)."""
    attestation, payload = b"", b""
    try:
        delivered = json.loads((directory / DELIVERY_FILE).read_text(encoding="utf-8"))
        attestation, payload = bytes.fromhex(delivered["signature"]), delivered["message"].encode()
    except FileNotFoundError:
        pass
    predictions = document["predictions"]
    assert isinstance(predictions, dict) and isinstance(document["comm"], dict)
    return JobResult(metrics=[], metrics_micro=[], metric="", accuracy_full=None,
                     attestation=attestation, attestation_payload=payload,
                     comm={k: float(v) for k, v in document["comm"].items()},
                     wall_s=float(document["wall_s"]),  # type: ignore[arg-type]
                     weights_path=str(directory / PREDICTIONS_FILE),
                     weights_manifest=[{"name": PREDICTIONS, "shape": list(predictions["shape"]), "offset": 0}])


def _request_json(request: JobRequest) -> str:
    raw = dict(vars(request))
    raw["dataset_ids"] = list(request.dataset_ids)
    raw["plane_addresses"] = list(request.plane_addresses)
    raw["plane_members"] = list(request.plane_members)
    raw["job_digest"] = request.job_digest.hex()
    raw["beacon"] = request.beacon.hex()
    return json.dumps(raw, indent=2, sort_keys=True)


def result_stats(result: JobResult) -> dict[str, object]:
    """What a node reports about a finished job besides the signed values (JobResult.stats_json)."""
    return {
        "metric": result.metric,
        "metrics_micro": result.metrics_micro,
        "accuracy_full": result.accuracy_full,
        "wall_s": result.wall_s,
        **result.comm,
    }


def _read_progress(directory: Path) -> float:
    try:
        raw = json.loads((directory / PROGRESS_FILE).read_text(encoding="utf-8"))
        return max(0.0, min(1.0, float(raw["done"]) / float(raw["total"])))
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return 0.0


def _read_error(directory: Path, returncode: int | None) -> tuple[str, str]:
    try:
        raw = json.loads((directory / ERROR_FILE).read_text(encoding="utf-8"))
        return str(raw["code"]), str(raw["message"])
    except (OSError, ValueError, KeyError, TypeError):
        # the log's path stays in the node's own log: job statuses reach the public API
        return "internal", (
            f"worker exited with status {returncode} (a peer may have failed); the node "
            "operator finds its log under the job id; re-run the round once every node is up"
        )
