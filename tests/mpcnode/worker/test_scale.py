"""Scale in rows (issue 18): a job at the row limit trains like plaintext, in the memory
its estimate promises; a job that would not fit is refused before it starts.

Real MPC: three worker processes and the TTP on loopback, shares made as a provider
makes them and read from real share stores. The table is in dollars next to a fraction,
the way a user's table looks, at exactly MAX_JOB_ROWS training rows.

The row-limit job runs over gloo: what it checks (every sum whose size depends on the
row count, and memory) is the same arithmetic on either data plane, and the gRPC plane
moves this job's large messages ~2.5x slower (152 s against 62 s, the longest test of
the suite); `test_grpc_plane.py` checks that both planes compute the same values with the
same rounds and bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mpcnode.worker.memory_budget import JobShape, check_memory, estimate_bytes
from mpcnode.worker.reference import plaintext_batched
from mutualmind.errors import QuotaExceeded
from mutualmind.vocabulary.column_scale import MAX_JOB_ROWS
from mutualmind.vocabulary.data_plane import BENCH_PLANE
from mutualmind.vocabulary.model_spec import parse_model_spec
from tests.mpcnode.worker.cluster import (
    free_port,
    run_job,
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


def test_a_job_at_the_row_limit_trains_like_plaintext_within_its_memory_estimate(tmp_path: Path) -> None:
    x, y = income_table(MAX_JOB_ROWS, seed=3)
    vx, vy = income_table(VALIDATION_ROWS, seed=4)
    rows = [MAX_JOB_ROWS]  # one dataset: two models (with and without it); cost is rows x models
    raw = {"kind": "logistic", "epochs": 1, "batch_size": 1 << 17}
    results = run_job(tmp_path, x, y, vx, vy, rows, raw, timeout=900, plane="gloo")
    assert all(r["metrics"] == results[0]["metrics"] for r in results)
    spec = parse_model_spec(raw)
    reference = plaintext_batched(spec, x, y, vx, vy, rows)
    np.testing.assert_allclose(results[0]["metrics"], reference.metrics, atol=0.005, err_msg=str(results[0]["phases_s"]))
    assert reference.accuracy_full is not None and reference.accuracy_full > 0.85  # it learns
    assert abs(results[0]["accuracy_full"] - reference.accuracy_full) <= 0.01
    shape = JobShape(MAX_JOB_ROWS, VALIDATION_ROWS, 2, len(rows) + 1, spec)
    table_bytes = 8 * (MAX_JOB_ROWS + VALIDATION_ROWS) * 3
    for result in results:
        assert table_bytes < result["peak_rss_bytes"] <= estimate_bytes(shape), result["peak_rss_bytes"]


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
