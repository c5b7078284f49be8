"""The job's random beacon (issue 13): the seed of the copy sample and of Banzhaf's
sampled coalitions comes from 256 random bits the coordinator draws when it starts the
round's job, not from anything a provider knows when it shares its data.

A real SQLite ledger and the coordinator's own `Rounds.run` and `verify_round`; in place
of the MPC job stands `AttestingLink`, which signs like a node, with each node's real key,
the beacon it was sent (tests/coordinator/admin/settled_round.py). The beacon is on the
ledger, signed by every node, differs from round to round, and `round verify` re-runs
with the recorded one; the ledger refuses a verification that names another.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from coordinator.round_verify import verify_round
from ledger import Ledger, verify_ledger
from mutualmind.errors import IntegrityError, RuleViolation

sys.path.insert(0, str(Path(__file__).parent / "admin"))
from settled_round import NODES, attesting_rounds, open_round_r1, settle_round  # noqa: E402


def _result(ledger: Ledger) -> dict:
    return next(e.payload for e in ledger.round_entries("r1") if e.kind == "round_result")


def test_the_beacon_is_drawn_per_round_signed_on_the_ledger_and_reused_by_verify(tmp_path: Path) -> None:
    beacons = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        ledger, rounds, link = attesting_rounds(tmp_path / name)
        try:
            settle_round(ledger, rounds)
            beacon = _result(ledger)["beacon"]
            assert len(beacon) == 64 and int(beacon, 16) and [o.beacon for o in link.orders] == [beacon] * NODES
            verification = verify_round(rounds, "r1")
            verified = next(e.payload for e in ledger.round_entries("r1") if e.kind == "round_verified")
            assert verification.agrees and verified["beacon"] == beacon
            assert [o.beacon for o in link.orders[NODES:]] == [beacon] * NODES  # the re-run's job got it
            report = verify_ledger(ledger.path)  # the nodes' signatures over the beacon replay
            assert report.ok, report.error
            beacons.append(beacon)
        finally:
            ledger.close()
    assert beacons[0] != beacons[1]


def test_a_node_signing_another_beacon_is_refused(tmp_path: Path) -> None:
    ledger, rounds, link = attesting_rounds(tmp_path)
    try:
        link.beacon = "ab" * 32
        open_round_r1(ledger, rounds)
        with pytest.raises(IntegrityError, match="beacon"):
            rounds.run("r1", deadline_s=30.0)
        assert not [e for e in ledger.round_entries("r1") if e.kind == "round_result"]
    finally:
        ledger.close()


def test_the_ledger_refuses_a_verification_with_another_beacon(tmp_path: Path) -> None:
    ledger, rounds, _ = attesting_rounds(tmp_path)
    try:
        settle_round(ledger, rounds)
        result = _result(ledger)
        verified = {"round_id": "r1", "job_digest": result["job_digest"], "recomputed_micro": result["contributions_micro"],
                    "max_abs_diff_micro": 0, "tolerance_micro": 5000, "verdict": "agrees", "beacon": "cd" * 32}
        with pytest.raises(RuleViolation, match="beacon"):
            ledger.append("round_verified", verified)
    finally:
        ledger.close()
