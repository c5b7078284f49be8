"""The coordinator's wait on a running job ends at the first node that reports a failure.

When one node's link is cut, its peers see the broken data-plane stream within seconds
and report FAILED, while the cut node's own status call hangs until its deadline. The
coordinator asks every node at once (`Rounds.run_job`), so the peers' answer is not
queued behind the silent node. The real-network version of this is the cut cable in
tests/coordinator/rounds/test_round_netns.py; here the nodes are `AttestingLink`
doubles on a real ledger, so the timing is exact.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from coordinator.cluster_link import JobOrder, NodeJobReport
from coordinator.mpc_job import run_job
from coordinator.rounds import Rounds
from ledger import Ledger
from mutualmind.errors import Aborted, InvalidInput
from mutualmind.vocabulary.fixed_point import FRAC_BITS
from mutualmind.vocabulary.signing_keys import generate_signing_key, public_key_bytes
from mutualmind.vocabulary.states import JobState
from tests.coordinator.admin.settled_round import NODES, AttestingLink, open_round_r1

SILENT_S = 20.0   # how long the silent node's status call hangs (a cluster call's deadline)


class OneSilentOneFailed(AttestingLink):
    """Node 1 never answers a status call in time; node 2 reports its stream broke."""

    def __init__(self, keys: list[object]) -> None:
        super().__init__(keys)
        self.released = threading.Event()

    def job_report(self, node_index: int, job_id: str) -> NodeJobReport:
        if node_index == 1:
            self.released.wait(SILENT_S)
            return NodeJobReport(state=JobState.RUNNING, progress=0.5)
        if node_index == 2:
            return NodeJobReport(state=JobState.FAILED, progress=0.5,
                                 message="the data-plane stream with node1 (rank 1) broke")
        return NodeJobReport(state=JobState.RUNNING, progress=0.5)


def test_a_failure_reported_by_one_node_is_not_held_up_by_a_silent_one(tmp_path: Path) -> None:
    node_keys = [generate_signing_key() for _ in range(NODES)]
    ledger = Ledger.create(tmp_path / "ledger.db", generate_signing_key(),
                           params={"nodes": NODES, "frac_bits": FRAC_BITS})
    link = OneSilentOneFailed(node_keys)
    try:
        ledger.append_many([("node_registered", {"node_index": i, "name": f"node{i}",
                                                 "signing_key": public_key_bytes(k).hex()}, None)
                            for i, k in enumerate(node_keys)])
        rounds = Rounds(ledger, link, tmp_path / "rounds")
        open_round_r1(ledger, rounds)
        size = ledger.size
        started = time.monotonic()
        with pytest.raises(Aborted, match=r"node 2 .*node1 \(rank 1\) broke"):
            rounds.run("r1", deadline_s=60.0)
        waited = time.monotonic() - started
        assert waited < SILENT_S / 4, f"the failure waited {waited:.1f} s behind the silent node"
        # nothing written for the failed run: the round stays open, stakes locked as before
        assert ledger.size == size
    finally:
        link.released.set()
        ledger.close()


class StartsTogether(AttestingLink):
    """Each node's start returns only once every node's start has been called (a
    coordinator that starts them one after another breaks the barrier); node
    `refusing`, if any, then refuses the job."""

    def __init__(self, keys: list[object], refusing: int | None = None) -> None:
        super().__init__(keys)
        self.barrier = threading.Barrier(NODES, timeout=10.0)
        self.refusing = refusing
        self.cancelled: list[int] = []

    def start_job(self, node_index: int, order: JobOrder) -> None:
        self.barrier.wait()
        if node_index == self.refusing:
            raise InvalidInput(f"node {node_index} does not hold the order's datasets")
        super().start_job(node_index, order)

    def cancel_job(self, node_index: int, job_id: str) -> None:
        self.cancelled.append(node_index)


ORDER = JobOrder(job_id="job-1", round_id="r1", world_size=NODES, master_addr="", master_port=0,
                 dataset_ids=("d1",), validation_dataset_id="v", model_spec_json="{}",
                 job_digest="00" * 32, deadline_s=30.0)


def test_every_node_is_started_at_once_and_a_refusal_cancels_the_others() -> None:
    together = StartsTogether([generate_signing_key() for _ in range(NODES)])
    reports = run_job(together, ORDER, lambda stage, fraction, message: None, poll_s=0.01)
    assert [r.state for r in reports] == [JobState.DONE] * NODES
    assert together.cancelled == []
    refusing = StartsTogether([generate_signing_key() for _ in range(NODES)], refusing=1)
    with pytest.raises(InvalidInput, match="node 1 does not hold"):
        run_job(refusing, ORDER, lambda stage, fraction, message: None)
    assert sorted(refusing.cancelled) == [i for i in range(NODES) if i != 1]


class SlowDealerStop(AttestingLink):
    """The dealer's stop call hangs until released (a loaded dealer reaping its TTP)."""

    def __init__(self, keys: list[object]) -> None:
        super().__init__(keys)
        self.release, self.stopped = threading.Event(), threading.Event()

    def stop_dealer(self, job_id: str) -> None:
        self.release.wait(10.0)
        self.stopped.set()


def test_an_inference_job_returns_before_the_dealers_stop_and_the_stop_still_comes() -> None:
    link = SlowDealerStop([generate_signing_key() for _ in range(NODES)])
    try:
        reports = run_job(link, ORDER, lambda stage, fraction, message: None, poll_s=0.01,
                          stop_dealer_behind=True)
        assert [r.state for r in reports] == [JobState.DONE] * NODES
        assert not link.stopped.is_set()   # returned while the stop still hangs
    finally:
        link.release.set()
    assert link.stopped.wait(5.0)
