"""One party of one MPC job, in its own process: `python -m mpcnode.worker SPEC.json`.

CrypTen keeps its communicator in module globals and can be initialised once per
process, so the node's job runner starts a fresh process per job. This process:
loads its shares (before any network traffic, so bad input fails fast), joins the
job's gRPC data plane with the other nodes and the dealer's TTP process (or, started
with `--bench-gloo` by a benchmark or test, the gloo baseline), builds secret-shared
tensors directly from its shares (nothing is re-shared or revealed), standardises them,
counts each dataset's rows that copy an earlier dataset's (a dataset found to be a copy
is then seen by no model), trains the full and leave-one-out models in one batched pass,
reveals the n+1 validation metrics, and writes:

  <output_dir>/result.json    metrics, comm stats, weight manifest (atomic rename)
  <output_dir>/weights.bin    this party's shares of the full model, raw LE int64
  <output_dir>/progress.json  steps done / total, rewritten as training goes
  <output_dir>/error.json     on a refusal or failure: code and message

Exit status: 0 done, 2 refused (typed error), 1 failed.

`python -m mpcnode.worker --ready` is the same worker started ahead of its job
(`mpcnode.worker.ready`): it imports torch and CrypTen, then waits for its spec's path
on stdin, and from there runs exactly as above.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from mpcnode.worker.job_spec import WorkerSpec, parse_worker_spec
from mpcnode.worker.lifetime import Deadline, bind_to_parent_and_deadline
from mutualmind.errors import IntegrityError, MutualMindError
from mutualmind.vocabulary.data_plane import BENCH_FLAG
from mutualmind.vocabulary.fixed_point import FRAC_BITS
from mutualmind.vocabulary.inference import INFERENCE_JOB

RESULT_FILE = "result.json"
WEIGHTS_FILE = "weights.bin"
PROGRESS_FILE = "progress.json"
ERROR_FILE = "error.json"


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write to a temp file in the same directory, (fsync,) rename: readers never see half.

    Progress notes skip the fsync (`durable=False`): losing one in a crash costs nothing.
    """
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "wb") as handle:
        handle.write(data)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(temp, path)


def init_crypten(spec: WorkerSpec, deadline: Deadline | None) -> ModuleType:
    if spec.plane == "grpc":
        return _init_crypten_over_plane(spec, deadline)
    os.environ.update(
        {
            "RENDEZVOUS": spec.rendezvous,
            "WORLD_SIZE": str(spec.world_size),
            "RANK": str(spec.rank),
            "DISTRIBUTED_BACKEND": "gloo",
        }
    )
    if spec.gloo_interface:
        os.environ["GLOO_SOCKET_IFNAME"] = spec.gloo_interface
    from mpcnode.worker import rendezvous

    rendezvous.register()  # spec.rendezvous is boundtcp://: rank 0 binds master_addr only
    from mutualmind.crypten_compat import crypten

    crypten.cfg["mpc.provider"] = "TTP"  # the dealer's process; never TFP outside unit tests
    crypten.cfg["communicator.verbose"] = True  # count rounds and bytes
    crypten.init()
    if crypten.cfg.encoder.precision_bits != FRAC_BITS:
        raise IntegrityError(
            f"CrypTen encodes with {crypten.cfg.encoder.precision_bits} fractional bits but the shares "
            f"use {FRAC_BITS}; leave CrypTen's encoder.precision_bits at its default"
        )
    from mpcnode.worker.crypten_config_view import install

    install(crypten.cfg)  # configuration final: plain attribute reads from here on
    return crypten


def _init_crypten_over_plane(spec: WorkerSpec, deadline: Deadline | None) -> ModuleType:
    """The gRPC data plane (issue 12): mutual TLS, no torch.distributed (`plane_install`);
    no wait for a peer lasts past the job's `deadline`."""
    from mpcnode.worker.plane_install import init_crypten_over_plane
    from mpcnode.worker.plane_session import PlaneConfig
    from mutualmind.crypten_compat import crypten

    crypten.cfg["mpc.provider"] = "TTP"
    crypten.cfg["communicator.verbose"] = True
    if crypten.cfg.encoder.precision_bits != FRAC_BITS:
        raise IntegrityError(
            f"CrypTen encodes with {crypten.cfg.encoder.precision_bits} fractional bits but the shares "
            f"use {FRAC_BITS}; leave CrypTen's encoder.precision_bits at its default"
        )
    config = PlaneConfig(
        job_id=spec.job_id, rank=spec.rank, world_size=spec.world_size,
        addresses=spec.plane_addresses, members=spec.plane_members, certs_dir=Path(spec.certs_dir),
        connect_timeout_s=spec.plane_connect_timeout_s, deadline=deadline)
    init_crypten_over_plane(config)
    from mpcnode.worker.crypten_config_view import install

    install(crypten.cfg)
    return crypten


class _Stats:
    """Snapshots of CrypTen's communication counters at the phases of a job."""

    def __init__(self, communicator: object) -> None:
        self._comm = communicator
        self.after_first_step: dict[str, float] | None = None
        self.after_training: dict[str, float] | None = None

    def now(self) -> dict[str, float]:
        return dict(self._comm.get_communication_stats())  # type: ignore[attr-defined]


def run(spec: WorkerSpec, deadline: Deadline | None = None, *, joined: bool = False,
        startup: dict[str, object] | None = None) -> dict[str, object]:
    """Run one party's job and return the result dict (also written to result.json);
    `deadline`: the job's, from the runner (`lifetime`), bounds every wait for a peer.
    `joined`: the calling thread already runs as its party, on links made for it
    (`plane_memory`, every party in one process): no CrypTen init here, no uninit.
    `startup` says how this process was started (a ready worker's pid and wait); it is
    reported in the result as it is."""
    import torch

    from mpcnode.worker.backend import CrypTenBackend
    from mpcnode.worker.copy_detection import count_copies
    from mpcnode.worker.inputs import load_local_shares
    from mpcnode.worker.memory_budget import measured_peak_bytes
    from mpcnode.worker.normalisation import align_columns
    from mpcnode.worker.training import (
        LABEL_EXPONENT,
        LABEL_MEAN,
        NORMALISE_EXPONENT,
        standardise_job,
        train_loo,
    )
    from mutualmind.vocabulary.copy_rule import copied_indices
    from mutualmind.vocabulary.model_spec import check_plausible

    if spec.tournament:  # a tournament's freeze or resolve (issue 15)
        from mpcnode.worker.tournament_run import run_tournament
        from mutualmind.vocabulary.tournament_job import parse_worker_tournament

        return run_tournament(spec, parse_worker_tournament(json.loads(spec.tournament)), deadline)
    started = time.monotonic()
    if spec.plane == "grpc" and not joined:   # a process-wide setting: a worker's, not a test's
        from mpcnode.worker.heap import fix_mmap_threshold

        fix_mmap_threshold()  # before the tables are loaded: they are the largest blocks
    output = Path(spec.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    shares = load_local_shares(spec)
    loaded = time.monotonic()
    if joined:
        from mutualmind.crypten_compat import crypten
    else:
        crypten = init_crypten(spec, deadline)
    try:
        import crypten.communicator as comm
        from crypten.mpc import MPCTensor

        communicator = comm.get()
        connected = time.monotonic()
        communicator.reset_communication_stats()
        stats = _Stats(communicator)

        backend = CrypTenBackend()

        def secret(array: np.ndarray) -> object:
            # the tensor shares the array's memory: no copy of the table. C order matters:
            # gloo sends a tensor's memory as laid out, so a column-major share would be
            # combined element by element with another party's row-major one
            return MPCTensor.from_shares(torch.from_numpy(np.ascontiguousarray(array)), precision=FRAC_BITS)

        train_x, train_y = secret(shares.train_features), secret(shares.train_labels)
        validation_x, validation_y = secret(shares.validation_features), secret(shares.validation_labels)
        # align each dataset's columns to the job's exponents (column_scale), in place
        starts = np.concatenate([[0], np.cumsum(shares.provider_rows)])
        if shares.train_shifts is not None:
            for index, shift in enumerate(shares.train_shifts):
                rows = (int(starts[index]), int(starts[index + 1]))
                align_columns(backend, train_x, shift[:-1], rows)
                align_columns(backend, train_y, shift[-1:], rows)
        if shares.validation_shift is not None:
            every = (0, int(shares.validation_features.shape[0]))
            align_columns(backend, validation_x, shares.validation_shift[:-1], every)
            align_columns(backend, validation_y, shares.validation_shift[-1:], every)

        def on_step(done: int, total: int) -> None:
            if done == 1:
                stats.after_first_step = stats.now()
            if done == total:
                stats.after_training = stats.now()
            write_atomic(output / PROGRESS_FILE, json.dumps({"done": done, "total": total}).encode(), durable=False)

        # standardise (pooled over every dataset), then find the copies on that scale
        # BEFORE training: no model sees a copy's rows (`excluded`), so its original keeps
        # the value it has without the copy
        standardise_started = time.monotonic()
        prepared = standardise_job(backend, spec.model, train_x, train_y, validation_x, validation_y)
        before_copies, copies_started = stats.now(), time.monotonic()
        copies = count_copies(backend, train_x, shares.provider_rows, spec.seed)
        after_copies, copies_s = stats.now(), time.monotonic() - copies_started
        excluded = copied_indices(copies.counts, copies.samples)
        valuation: dict[str, object] = {"method": "loo"}
        if spec.model.valuation == "banzhaf":
            from mpcnode.worker.banzhaf import train_banzhaf
            from mutualmind.vocabulary.valuation import msr_seed, plan

            coalitions = plan(len(shares.provider_rows),
                              msr_seed(spec.round_id, spec.model.to_json(), spec.dataset_ids, spec.beacon))
            valuation = {"method": coalitions.method, "models": coalitions.models}
            result = train_banzhaf(backend, spec.model, train_x, train_y, validation_x, validation_y,
                                   shares.provider_rows, coalitions, on_step=on_step, excluded=excluded, prepared=prepared)
            # differences of two means of the metric and their errors lie within the metric's range too
            check_plausible([abs(v) for v in result.metrics], spec.model.metric, spec.model.lr)
        else:
            result = train_loo(backend, spec.model, train_x, train_y, validation_x, validation_y, shares.provider_rows,
                               on_step=on_step, excluded=excluded, prepared=prepared)
            check_plausible(result.metrics, spec.model.metric, spec.model.lr)
        # public: the collected model folds these powers of two back (model_file.reconstruct)
        exponents = torch.tensor([shares.feature_exponents], dtype=torch.float64)
        result.weights[NORMALISE_EXPONENT] = backend.public(exponents)
        if LABEL_MEAN in result.weights:
            result.weights[LABEL_EXPONENT] = backend.public(torch.tensor([[float(shares.label_exponent)]], dtype=torch.float64))
        final = stats.now()
        manifest = _write_weights(output / WEIGHTS_FILE, result.weights)
        finished = time.monotonic()
        first = stats.after_first_step or final
        trained = stats.after_training or final
        steps = result.steps
        offline = result.offline or {}
        per_step = (trained["rounds"] - first["rounds"]) / (steps - 1) if steps > 1 else float(first["rounds"])
        per_step_bytes = (trained["bytes"] - first["bytes"]) / (steps - 1) if steps > 1 else float(first["bytes"])
        document: dict[str, object] = {
            "job_id": spec.job_id,
            "round_id": spec.round_id,
            "beacon": spec.beacon,
            "rank": spec.rank,
            "world_size": spec.world_size,
            "metric": spec.model.metric,
            "higher_is_better": spec.model.higher_is_better,
            "metrics": result.metrics,
            "valuation": valuation,
            "accuracy_full": result.accuracy_full,
            "provider_rows": list(shares.provider_rows),
            # per dataset: sampled rows that repeat an earlier dataset's row (copy_detection)
            "copies": copies.as_json(),
            # the datasets those counts mark as copies (copy_rule): no model saw their rows
            "excluded": excluded,
            "validation_rows": int(shares.validation_features.shape[0]),
            "steps": steps,
            "comm": {
                "rounds": int(final["rounds"]),
                "bytes": int(final["bytes"]),
                "comm_time_s": float(final["time"]),
                "rounds_per_step": per_step,
                "bytes_per_step": per_step_bytes,
                "rounds_evaluation": int(final["rounds"] - trained["rounds"]),
                # the dealer prefetch before training (rehearsal + one batched fetch)
                "offline_rounds": int(offline.get("rounds", 0)),
                "offline_bytes": int(offline.get("bytes", 0)),
                "offline_s": float(offline.get("wall_s", 0.0)),
                "compute_s": max(0.0, (finished - connected) - float(final["time"])),
                "copy_rounds": int(after_copies["rounds"] - before_copies["rounds"]),
                "copy_bytes": int(after_copies["bytes"] - before_copies["bytes"]),
                "copy_comparisons": copies.comparisons,
            },
            "wall_s": finished - started,
            # where the time went: loading the shares, then train_loo's phases
            "phases_s": {"load": round(loaded - started, 4), **result.phases,
                         "standardise": round(copies_started - standardise_started, 4), "copies": round(copies_s, 4)},
            # this process's peak resident memory (memory_budget checks its estimate)
            "peak_rss_bytes": measured_peak_bytes(),
            "mpc_s": finished - connected,
            "startup": startup or {"mode": "cold"},
            "weights": {"file": WEIGHTS_FILE, "frac_bits": FRAC_BITS, "tensors": manifest},
        }
        write_atomic(output / RESULT_FILE, json.dumps(document, indent=2, sort_keys=True).encode())
        return document
    finally:
        if not joined:
            crypten.uninit()


def _write_weights(path: Path, weights: dict[str, object]) -> list[dict[str, object]]:
    """This party's shares of the full model as raw LE int64, plus where each tensor is."""
    manifest = []
    chunks = []
    offset = 0
    for name in sorted(weights):
        share = weights[name].share.numpy().astype("<i8")  # type: ignore[attr-defined]
        manifest.append({"name": name, "shape": list(share.shape), "offset": offset})
        chunks.append(share.tobytes())
        offset += share.size
    write_atomic(path, b"".join(chunks))
    return manifest


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--ready"]:
        from mpcnode.worker.ready import serve_ready

        return serve_ready()
    # BENCH_FLAG: a benchmark or test harness may run a gloo job; a node never passes it
    bench = BENCH_FLAG in args
    args = [a for a in args if a != BENCH_FLAG]
    if len(args) != 1:
        print(f"usage: python -m mpcnode.worker [{BENCH_FLAG}] SPEC.json | --ready", file=sys.stderr)
        return 2
    deadline = bind_to_parent_and_deadline()
    return run_spec_file(Path(args[0]), deadline, bench=bench)


def run_spec_file(spec_path: Path, deadline: Deadline | None, startup: dict[str, object] | None = None,
                  *, bench: bool = False) -> int:
    """Run the job whose spec is at `spec_path` by `deadline`; the exit status `main` returns."""
    output: Path | None = None
    try:
        spec = parse_worker_spec(spec_path.read_text(encoding="utf-8"), bench=bench)
        output = Path(spec.output_dir)
        if spec.kind == INFERENCE_JOB and spec.tournament:   # a closed tournament's metamodel
            from mpcnode.worker.metamodel_inference import run_metamodel_inference
            from mutualmind.vocabulary.tournament_job import parse_worker_tournament

            run_metamodel_inference(spec, parse_worker_tournament(json.loads(spec.tournament)), deadline, startup)
        elif spec.kind == INFERENCE_JOB:
            from mpcnode.worker.inference import run_inference

            run_inference(spec, deadline, startup)
        else:
            run(spec, deadline, startup=startup)
        return 0
    except MutualMindError as err:
        _write_error(output or spec_path.parent, err.code.value, err.message)
        print(f"mpc worker: {err.message}", file=sys.stderr)
        return 2
    except Exception as err:  # the runner needs a reason; details go to stderr (its log)
        # not a typed refusal: most often a peer that stopped mid-job, which a re-run fixes
        _write_error(output or spec_path.parent, "internal",
                     f"worker failed: {type(err).__name__}: {err}; if a node stopped, re-run the round once every node is up")
        raise


def _write_error(directory: Path, code: str, message: str) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        write_atomic(directory / ERROR_FILE, json.dumps({"code": code, "message": message}).encode())
    except OSError:
        pass
