"""A node's retention of inference orders' shares, rule by rule, on a real share store and
a real `JobRunner` whose jobs are read from disk as after a node restart (folders in the
format the worker and `record_delivery` write), with a clock the test moves forward.

The same rules on live nodes after real MPC jobs (a delivered order, a failed one) are
tests/coordinator/rounds/test_model_collection.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from mpcnode.inference_retention import PURGED_FILE, InferenceRetention, purge_record
from mpcnode.jobs import DELIVERY_FILE, JobRequest, JobRunner, _request_json
from mpcnode.share_store import ShareSpec, ShareStore
from mpcnode.worker.inference import PREDICTIONS_FILE
from mpcnode.worker.run import RESULT_FILE
from mutualmind.errors import AlreadyExists, InvalidInput
from mutualmind.vocabulary.dataset import TableSchema
from mutualmind.vocabulary.inference import DELIVERY_WINDOW_S, INFERENCE_JOB
from mutualmind.vocabulary.signing_keys import generate_signing_key

RETENTION_S = 60.0
QUERY = TableSchema(("x0", "x1"), ("x0", "x1"), "")
ROWS = np.arange(8, dtype=np.int64).reshape(4, 2)


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def _node(tmp_path: Path) -> tuple[ShareStore, JobRunner, InferenceRetention, Clock]:
    store = ShareStore(tmp_path)
    jobs = JobRunner(tmp_path, generate_signing_key())
    clock = Clock()
    return store, jobs, InferenceRetention(store, jobs, retention_s=RETENTION_S, clock=clock), clock


def _query(store: ShareStore, order_id: str, purpose: str = "inference") -> ShareSpec:
    schema = QUERY if purpose == "inference" else TableSchema(("x0", "y"), ("x0",), "y")
    spec = ShareSpec.of_array(order_id, 0, ROWS, provider_id="user", schema=schema, purpose=purpose)
    store.put_array(spec, ROWS)
    return spec


def _job(jobs: JobRunner, order_id: str, *, finished: bool, delivered: bool = False) -> Path:
    """The folder a node leaves for an inference job: its request, and when it finished
    its result and prediction shares, and when it delivered them its signed delivery."""
    folder = jobs.jobs_dir / order_id
    folder.mkdir()
    (folder / "request.json").write_text(_request_json(JobRequest(
        job_id=order_id, round_id="r1", world_size=3, rank=0, master_addr="127.0.0.1",
        master_port=29500, dataset_ids=(order_id,), validation_dataset_id="", model_spec_json="{}",
        job_digest=b"\1" * 32, deadline_s=60.0, kind=INFERENCE_JOB)))
    if finished:
        (folder / PREDICTIONS_FILE).write_bytes(b"\0" * 32)
        (folder / RESULT_FILE).write_text(json.dumps(
            {"predictions": {"shape": [4, 1]}, "comm": {"rounds": 1}, "wall_s": 0.1}))
    if delivered:
        (folder / DELIVERY_FILE).write_text(json.dumps({"message": "{}", "signature": "00" * 64}))
    return folder


def _gone(store: ShareStore, folder: Path) -> bool:
    order_id = folder.name
    return (not store.has(order_id) and store.removed(order_id) is not None
            and not (folder / PREDICTIONS_FILE).exists() and (folder / PURGED_FILE).is_file())


def test_a_delivered_order_is_kept_for_the_retention_then_deleted_for_good(tmp_path: Path) -> None:
    store, jobs, retention, clock = _node(tmp_path)
    spec = _query(store, "q-delivered")
    folder = _job(jobs, "q-delivered", finished=True, delivered=True)
    clock.offset = RETENTION_S - 5
    assert retention.sweep() == [] and store.has("q-delivered")           # a broken download may retry
    clock.offset = RETENTION_S + 1
    assert retention.sweep() == ["q-delivered"]
    assert _gone(store, folder)
    assert (folder / DELIVERY_FILE).is_file()          # the signed delivery the coordinator collects
    assert "delivered to the user" in (purge_record(jobs, "q-delivered") or {})["reason"]
    assert [p.name for p in store.shares_dir.iterdir()] == [".removed-q-delivered"]   # no temp left
    with pytest.raises(AlreadyExists, match="deleted at .* register a new id"):
        store.put_array(spec, ROWS)
    assert retention.sweep() == []                     # once


def test_a_failed_job_goes_at_once_and_an_uncollected_one_after_the_window(tmp_path: Path) -> None:
    store, jobs, retention, clock = _node(tmp_path)
    _query(store, "q-failed")
    failed = _job(jobs, "q-failed", finished=False)    # no result: the job ended without one
    _query(store, "q-waiting")
    waiting = _job(jobs, "q-waiting", finished=True)   # done, nobody fetched it yet
    assert retention.sweep() == ["q-failed"]
    assert _gone(store, failed) and "ended without predictions" in (purge_record(jobs, "q-failed") or {})["reason"]
    clock.offset = DELIVERY_WINDOW_S + RETENTION_S - 5
    assert retention.sweep() == [] and (waiting / PREDICTIONS_FILE).exists()
    clock.offset = DELIVERY_WINDOW_S + RETENTION_S + 1
    assert retention.sweep() == ["q-waiting"] and _gone(store, waiting)
    assert "nobody fetched them" in (purge_record(jobs, "q-waiting") or {})["reason"]


def test_query_rows_no_job_ran_on_go_after_the_window_and_other_data_never(tmp_path: Path) -> None:
    store, jobs, retention, clock = _node(tmp_path)
    _query(store, "q-abandoned")
    _query(store, "training-set", purpose="training")
    clock.offset = DELIVERY_WINDOW_S
    assert retention.sweep() == []
    clock.offset = 10 * DELIVERY_WINDOW_S
    assert retention.sweep() == ["q-abandoned"]
    assert store.removed("q-abandoned") is not None and not store.has("q-abandoned")
    assert store.has("training-set")                   # a provider's staked data is never touched
    with pytest.raises(InvalidInput, match="retention"):
        InferenceRetention(store, jobs, retention_s=-1)
