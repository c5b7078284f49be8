"""Test fixtures for MPC jobs: share real data into real node stores, run real processes.

Shares are made the way a provider makes them (each column scaled by its public power
of two, `provider.sharing.column_exponents`; fixed point with 16 fractional bits,
additive split over Z/2^64 with randomness from `secrets`), written with the node's real
`ShareStore`, and the job runs as real worker processes plus a real TTP process on
loopback.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

from mpcnode.share_store import ShareSpec, ShareStore
from mpcnode.worker.heap import HUGE_PAGES_ENV
from mutualmind.transport.pki import create_cluster
from mutualmind.vocabulary.data_plane import BENCH_FLAG, BENCH_PLANE, DEFAULT_PLANE
from mutualmind.vocabulary.dataset import TableSchema
from mutualmind.vocabulary.fixed_point import SCALE
from provider.sharing import Table, column_exponents, infer_label_classes, prescale

REPO = Path(__file__).resolve().parents[3]


def encode(table: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(table, dtype=np.float64) * SCALE).astype(np.int64)


def split(encoded: np.ndarray, parties: int) -> list[np.ndarray]:
    """Additive shares over Z/2^64 (numpy int64 arithmetic wraps)."""
    shares = []
    total = np.zeros_like(encoded)
    for _ in range(parties - 1):
        noise = np.frombuffer(secrets.token_bytes(encoded.size * 8), dtype="<i8").reshape(encoded.shape)
        shares.append(noise.copy())
        with np.errstate(over="ignore"):
            total = total + noise
    with np.errstate(over="ignore"):
        shares.append(encoded - total)
    return shares


def schema_for(features: int) -> TableSchema:
    names = tuple(f"x{i}" for i in range(features)) + ("label",)
    return TableSchema(names, names[:-1], "label")


def store_dataset(
    data_dirs: list[Path], dataset_id: str, x: np.ndarray, y: np.ndarray, purpose: str = "training",
    label_classes: int | None = None,
) -> tuple[int, ...]:
    """Share one table into every node's store; returns its column exponents."""
    table = np.concatenate([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64).reshape(-1, 1)], axis=1)
    schema = schema_for(x.shape[1])
    plain = Table(table, schema)
    exponents = column_exponents(plain, infer_label_classes(plain) if label_classes is None else label_classes)
    shares = split(encode(prescale(table, exponents)), len(data_dirs))
    for index, (directory, share) in enumerate(zip(data_dirs, shares)):
        spec = ShareSpec.of_array(dataset_id, index, share, schema=schema, purpose=purpose, column_exponents=exponents)
        ShareStore(directory).put_array(spec, share)
    return exponents


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_spec(job_id: str, rank: int, world: int, port: int, data_dir: Path, out: Path, datasets: list[str], validation: str, model: dict) -> dict:
    return {
        "job_id": job_id,
        "round_id": "round-1",
        "rank": rank,
        "world_size": world,
        "master_addr": "127.0.0.1",
        "master_port": port,
        "data_dir": str(data_dir),
        "dataset_ids": datasets,
        "validation_dataset_id": validation,
        "model": model,
        "output_dir": str(out),
    }


def start_ttp(world: int, port: int, plane: dict | None = None) -> subprocess.Popen:
    """The dealer's process: over the gRPC plane (`plane`: the job's grpc fields from
    `plane_fields`), or, without them, over the gloo baseline at the rendezvous port (in
    bench mode, which only a harness like this one sets)."""
    if plane is None:
        args = ["--plane", BENCH_PLANE, BENCH_FLAG, "--master-addr", "127.0.0.1", "--master-port", str(port)]
    else:
        args = ["--plane", "grpc", "--job-id", plane["job_id"], "--addresses", ",".join(plane["plane_addresses"]),
                "--certs-dir", plane["certs_dir"], "--connect-timeout-s", str(plane["plane_connect_timeout_s"])]
    return subprocess.Popen(
        [sys.executable, "-m", "mpcnode.worker.ttp", "--world-size", str(world), *args],
        cwd=REPO,
        env=one_thread_env(),
        start_new_session=True,
    )


def plane_fields(job_id: str, world: int, certs_dir: Path, connect_timeout_s: float = 30.0) -> dict:
    """A job's gRPC data-plane fields: a free loopback MPC port per node rank."""
    return {
        "job_id": job_id,
        "plane": "grpc",
        "plane_addresses": [f"127.0.0.1:{free_port()}" for _ in range(world)],
        "certs_dir": str(certs_dir),
        "plane_connect_timeout_s": connect_timeout_s,
    }


def job_plane(world: int) -> dict[str, object]:
    """A job request's data-plane fields (JobRequest, DealerClient.start): the gRPC plane,
    a free loopback MPC port per node rank, members node0..."""
    return {"plane": DEFAULT_PLANE, "plane_addresses": tuple(f"127.0.0.1:{free_port()}" for _ in range(world)),
            "plane_members": tuple(f"node{i}" for i in range(world))}


def start_worker(spec: dict, spec_path: Path) -> subprocess.Popen:
    """One party's worker process; a gloo spec runs in bench mode (a node never sets it)."""
    spec_path.write_text(json.dumps(spec))
    bench = [BENCH_FLAG] if spec.get("plane") == BENCH_PLANE else []
    return subprocess.Popen([sys.executable, "-m", "mpcnode.worker", *bench, str(spec_path)], cwd=REPO,
                            env=one_thread_env(), start_new_session=True)


def one_thread_env() -> dict[str, str]:
    """One torch thread per process, as a node runs its workers (`node serve
    --worker-threads`, default 1) and the dealer its TTP: several parties on few cores."""
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **HUGE_PAGES_ENV)


def _store_job_data(dirs: list[Path], x: np.ndarray, y: np.ndarray, vx: np.ndarray, vy: np.ndarray,
                    provider_rows: list[int]) -> list[str]:
    """One training dataset per provider (consecutive rows) and "val", in every store."""
    ids = []
    start = 0
    for index, rows in enumerate(provider_rows):
        store_dataset(dirs, f"p{index}", x[start : start + rows], y[start : start + rows])
        ids.append(f"p{index}")
        start += rows
    store_dataset(dirs, "val", vx, vy, purpose="validation")
    return ids


def memory_plane(parties: int) -> dict[str, object]:
    """Worker-spec fields for parties joined in one process (`plane_memory.run_parties`)."""
    return {"plane": DEFAULT_PLANE, "plane_addresses": [f"memory:{r + 1}" for r in range(parties)],
            "certs_dir": "memory"}


def store_query(dirs: list[Path], query_id: str, rows: np.ndarray, exponents: tuple[int, ...]) -> None:
    """A user's query rows (features only) secret-shared into each node's store at the
    given column exponents, as `provider.predict` shares them."""
    names = tuple(f"x{i}" for i in range(rows.shape[1]))
    for r, share in enumerate(split(encode(prescale(rows, exponents)), len(dirs))):
        ShareStore(dirs[r]).put_array(ShareSpec.of_array(
            query_id, r, share, provider_id="user", schema=TableSchema(names, names, ""),
            purpose="inference", column_exponents=exponents), share)


def run_job_in_process(root: Path, x: np.ndarray, y: np.ndarray, vx: np.ndarray, vy: np.ndarray,
                       provider_rows: list[int], model: dict, parties: int = 3) -> list[dict]:
    """`run_job` with every party a thread of this process on in-memory links
    (`plane_memory`): the worker's own `run`, the same shares, frames, dealer and
    counters as over the gRPC plane, without starting processes. For tests of what the
    protocol computes; tests of the plane itself or of a process use `run_job`."""
    from mpcnode.worker.job_spec import parse_worker_spec
    from mpcnode.worker.plane_memory import run_parties
    from mpcnode.worker.run import run

    dirs = [root / f"node{i}" for i in range(parties)]
    ids = _store_job_data(dirs, x, y, vx, vy, provider_rows)
    specs = [parse_worker_spec(json.dumps({**worker_spec("job", r, parties, 1, dirs[r], root / f"out{r}", ids, "val",
                                                         model), **memory_plane(parties)}))
             for r in range(parties)]
    return run_parties(parties, lambda rank: run(specs[rank], joined=True), job_id="job")


def run_job(root: Path, x: np.ndarray, y: np.ndarray, vx: np.ndarray, vy: np.ndarray, provider_rows: list[int], model: dict, parties: int = 3, timeout: float = 120.0,
            plane: str = DEFAULT_PLANE, certs_dir: Path | None = None) -> list[dict]:
    """Share the data into `parties` stores, run one job (workers + TTP), return each
    party's result.json. On the gRPC data plane (cluster jobs' default) the parties use
    the cluster folder `certs_dir` (made under `root` when not given)."""
    dirs = [root / f"node{i}" for i in range(parties)]
    ids = _store_job_data(dirs, x, y, vx, vy, provider_rows)
    port = free_port()
    if plane == "grpc" and certs_dir is None:
        certs_dir = root / "certs"
        create_cluster(certs_dir, parties)
    plane_spec = plane_fields("job", parties, certs_dir) if plane == "grpc" and certs_dir is not None else None
    workers = [
        start_worker({**worker_spec("job", r, parties, port, dirs[r], root / f"out{r}", ids, "val", model),
                      **(plane_spec or {"plane": BENCH_PLANE})},
                     root / f"spec{r}.json")
        for r in range(parties)
    ]
    ttp = start_ttp(parties, port, plane_spec)
    try:
        codes = [w.wait(timeout=timeout) for w in workers]
        ttp.wait(timeout=30)
    finally:
        for process in [*workers, ttp]:
            if process.poll() is None:
                process.kill()
    if any(codes):
        raise AssertionError(f"workers exited with {codes}")
    return [json.loads((root / f"out{r}" / "result.json").read_text()) for r in range(parties)]
