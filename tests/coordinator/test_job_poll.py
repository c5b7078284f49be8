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

from coordinator.cluster_link import NodeJobReport
from coordinator.rounds import Rounds
from ledger import Ledger
from mutualmind.errors import Aborted
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
