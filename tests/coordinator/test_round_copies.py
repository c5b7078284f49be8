"""A round whose nodes' copy counts flag a dataset, settled by the coordinator's own code.

A real SQLite ledger, providers and datasets registered with their own signatures, the
sponsor's signed round, and `Rounds.run` checking attestations and writing the result,
slashes and payouts; in place of the MPC job stands `AttestingLink`, which signs fixed
metrics and copy counts with every node's real key (tests/coordinator/admin/settled_round.py).
Dataset b-1 helps the model (+0.02) but its rows repeat a-1's: it earns nothing and is
slashed; a-1, the original, takes the pool; the ledger replays and verifies.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.rounds import Rounds
from ledger import Ledger, verify_ledger
from mutualmind.errors import IntegrityError, InvalidInput
from mutualmind.vocabulary.copy_rule import order_error

sys.path.insert(0, str(Path(__file__).parent / "admin"))
from settled_round import AttestingLink, attesting_rounds, open_round_r1, settle_round  # noqa: E402

B_COPIES_A = {"counts": [0, 40, 1], "samples": [0, 40, 40]}  # a-1, b-1, c-1 (40 rows each)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Ledger, Rounds, AttestingLink]]:
    ledger, rounds, link = attesting_rounds(tmp_path)
    yield ledger, rounds, link
    ledger.close()


def test_a_flagged_copy_earns_nothing_is_slashed_and_the_original_takes_its_share(setup) -> None:  # type: ignore[no-untyped-def]
    ledger, rounds, link = setup
    link.copies = B_COPIES_A
    settle_round(ledger, rounds)
    result = next(e.payload for e in ledger.round_entries("r1") if e.kind == "round_result")
    assert result["copies"] == B_COPIES_A and result["contributions_micro"] == [50_000, 20_000, -40_000]
    slashes = {e.payload["dataset_id"]: e.payload["amount"] for e in ledger.round_entries("r1") if e.kind == "slash"}
    payouts = {e.payload["to"]: e.payload["amount"] for e in ledger.round_entries("r1") if e.kind == "payout"}
    assert slashes == {"b-1": 50, "c-1": 100}  # the copy at the round's 25 %, like the harmful c-1
    assert payouts == {"hospital-a": 450}        # pool 300 + slashes 150, all to the original
    assert ledger.state.balances["hospital-b"] == 800 and ledger.state.stakes["b-1"] == 150
    report = verify_ledger(ledger.path)          # replays the copy rule and the signed counts
    assert report.ok, report.error


def test_without_copy_counts_the_round_settles_as_before(setup) -> None:  # type: ignore[no-untyped-def]
    ledger, rounds, _ = setup
    settle_round(ledger, rounds)
    result = next(e.payload for e in ledger.round_entries("r1") if e.kind == "round_result")
    assert "copies" not in result
    payouts = {e.payload["to"]: e.payload["amount"] for e in ledger.round_entries("r1") if e.kind == "payout"}
    assert payouts == {"hospital-a": 286, "hospital-b": 114}  # 400 split 5:2, the copy paid
    assert verify_ledger(ledger.path).ok


def test_a_node_signing_other_copy_counts_is_refused_and_nothing_is_written(setup) -> None:  # type: ignore[no-untyped-def]
    ledger, rounds, link = setup
    link.copies = B_COPIES_A
    link.copies_by_node = {2: {"counts": [0, 0, 1], "samples": [0, 40, 40]}}  # hides the copy
    open_round_r1(ledger, rounds)
    size = ledger.size
    with pytest.raises(IntegrityError, match="disagree"):
        rounds.run("r1", deadline_s=30.0)
    assert ledger.size == size and ledger.state.rounds["r1"].status == "open"


def test_a_round_must_list_its_datasets_in_registration_order(setup) -> None:  # type: ignore[no-untyped-def]
    """Otherwise a sponsor could list a copy before its original and have the original slashed."""
    ledger, rounds, _ = setup
    open_round_r1(ledger, rounds)  # registers a-1, b-1, c-1 in that order; opens r1
    size = ledger.size
    with pytest.raises(InvalidInput, match=r"order they were registered \(a-1, b-1\)"):
        rounds.open_round(round_id="r2", sponsor="sponsor", pool=10, model_spec={"kind": "logistic"},
                          validation_dataset="val-1", datasets=["b-1", "a-1"], slash_rate_ppm=0,
                          epsilon_micro=0, nonce="00" * 16, signature=b"")
    assert ledger.size == size


def test_the_order_rule_leaves_unknown_ids_to_the_ledger() -> None:
    assert order_error(["a", "x", "c"], ["a", "b", "c"]) is None
    assert order_error(["c", "a"], ["a", "b", "c"]) is not None
    assert order_error([], ["a"]) is None
