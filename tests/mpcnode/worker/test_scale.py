"""Scale in rows (issue 18): a job at the row limit trains like plaintext, in the memory
its estimate promises; a job that would not fit is refused before it starts.

Real MPC: the row-limit job runs the worker's own `run` as three parties and the
dealer, each a thread of this process on the plane's in-memory links (`plane_memory`:
the gRPC plane's communicator, codec, sequence checks and dealer protocol, without
sockets and TLS), shares made as a provider makes them and read from real share stores.
The table is in dollars next to a fraction, the way a user's table looks, at exactly
MAX_JOB_ROWS training rows. Its memory is the process's growth over the job (peak
resident bytes, reset before it), held to three parties' estimates without the
process's own base (`BASE_BYTES`: the imports, counted once here); the dealer's thread
counts against it too. It ran as four processes over the gloo baseline before (107 s
against 73 s at the same load; the gRPC plane with processes took 148 s).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mpcnode.worker.memory_budget import (
    BASE_BYTES,
    JobShape,
    check_memory,
    estimate_bytes,
    measured_peak_bytes,
)
from mpcnode.worker.reference import plaintext_batched
from mutualmind.crypten_compat import crypten  # noqa: F401 - CrypTen and torch in memory before it is measured
from mutualmind.errors import QuotaExceeded
from mutualmind.vocabulary.column_scale import MAX_JOB_ROWS
from mutualmind.vocabulary.data_plane import BENCH_PLANE
from mutualmind.vocabulary.model_spec import parse_model_spec
from tests.mpcnode.worker.cluster import (
    free_port,
    run_job_in_process,
    start_ttp,
    start_worker,
    store_dataset,
    worker_spec,
)

VALIDATION_ROWS = 20_000


def income_table(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Income in dollars (clipped to the admitted +-2^20) and a debt ratio in [0, 1]."""
    rng = np.random.default_rng(seed)
    income = np.clip(rng.normal(60_000, 25_000, rows), 0, 1_000_000)
    ratio = rng.uniform(0, 1, rows)
    logit = 3 * (income - 60_000) / 25_000 - 6 * (ratio - 0.5)
    return np.column_stack([income, ratio]), (logit + rng.logistic(size=rows) > 0).astype(np.float64)


def resident_now_and_reset_peak() -> int:
    """This process's resident bytes now, with its peak mark (VmHWM) reset to them (Linux
    clear_refs 5): the peak measured after the job is then the job's, not an earlier test's."""
    Path("/proc/self/clear_refs").write_text("5")
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_a_job_at_the_row_limit_trains_like_plaintext_within_its_memory_estimate(tmp_path: Path) -> None:
    x, y = income_table(MAX_JOB_ROWS, seed=3)
    vx, vy = income_table(VALIDATION_ROWS, seed=4)
    rows = [MAX_JOB_ROWS]  # one dataset: two models (with and without it); cost is rows x models
    raw = {"kind": "logistic", "epochs": 1, "batch_size": 1 << 17}
    before = resident_now_and_reset_peak()
    results = run_job_in_process(tmp_path, x, y, vx, vy, rows, raw)
    grown = measured_peak_bytes() - before
    assert all(r["metrics"] == results[0]["metrics"] for r in results)
    spec = parse_model_spec(raw)
    reference = plaintext_batched(spec, x, y, vx, vy, rows)
    np.testing.assert_allclose(results[0]["metrics"], reference.metrics, atol=0.005, err_msg=str(results[0]["phases_s"]))
    assert reference.accuracy_full is not None and reference.accuracy_full > 0.85  # it learns
    assert abs(results[0]["accuracy_full"] - reference.accuracy_full) <= 0.01
    shape = JobShape(MAX_JOB_ROWS, VALIDATION_ROWS, 2, len(rows) + 1, spec)
    table_bytes = 8 * (MAX_JOB_ROWS + VALIDATION_ROWS) * 3
    parties = len(results)
    assert parties * table_bytes < grown <= parties * (estimate_bytes(shape) - BASE_BYTES), grown


def test_the_estimate_names_what_to_change() -> None:
    spec = parse_model_spec({"kind": "logistic"})  # full batch, the default
    shape = JobShape(1_000_000, 200_000, 30, 9, spec)
    need = estimate_bytes(shape)
    with pytest.raises(QuotaExceeded) as refused:
        check_memory(need - 1, shape)
    message = str(refused.value)
    assert "batch_size to at most" in message and "--worker-memory" in message and "1,000,000 training" in message
    assert check_memory(need, shape) == need
    # the advised batch size fits the same budget
    batch = int(message.split("batch_size to at most ")[1].split(" ")[0].replace(",", ""))
    smaller = JobShape(1_000_000, 200_000, 30, 9, parse_model_spec({"kind": "logistic", "batch_size": batch}))
    assert estimate_bytes(smaller) <= need - 1


def test_a_job_over_the_memory_budget_is_refused_before_it_joins(tmp_path: Path) -> None:
    """Every party refuses on its own, from public shapes, before the rendezvous: the
    error file names the budget and what to change, and no result is written."""
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(3_000, 4)), (rng.random(3_000) > 0.5).astype(np.float64)
    dirs = [tmp_path / f"node{i}" for i in range(3)]
    store_dataset(dirs, "p0", x[:2_000], y[:2_000])
    store_dataset(dirs, "val", x[2_000:], y[2_000:], purpose="validation")
    port = free_port()
    workers = []
    for rank in range(3):
        spec = worker_spec("job", rank, 3, port, dirs[rank], tmp_path / f"out{rank}", ["p0"], "val", {"kind": "logistic"})
        spec["memory_budget_bytes"] = 64 << 20
        spec["plane"] = BENCH_PLANE   # the TTP below is the gloo one (start_ttp without plane fields)
        workers.append(start_worker(spec, tmp_path / f"spec{rank}.json"))
    ttp = start_ttp(3, port)
    try:
        codes = [w.wait(timeout=60) for w in workers]
    finally:
        for process in [*workers, ttp]:
            if process.poll() is None:
                process.kill()
    assert codes == [2, 2, 2]
    for rank in range(3):
        error = json.loads((tmp_path / f"out{rank}" / "error.json").read_text())
        assert error["code"] == "quota_exceeded", error
        assert "GiB per node" in error["message"] and "--worker-memory" in error["message"]
        assert not (tmp_path / f"out{rank}" / "result.json").exists()
