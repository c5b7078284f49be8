"""The coordinator's own settlement (`Rounds.run`) issues the round's model units in the
same group commit as its payouts, and the ledger's replay recomputes them."""

from __future__ import annotations

from pathlib import Path

from coordinator.rounds import Rounds
from ledger import Ledger, verify_ledger
from mutualmind.vocabulary.ownership import UNITS_PER_MODEL
from mutualmind.vocabulary.signing_keys import generate_signing_key, public_key_bytes
from tests.coordinator.admin.settled_round import NODES, AttestingLink, settle_round


def test_settling_a_round_issues_its_units_in_the_same_group_commit(tmp_path: Path) -> None:
    node_keys = [generate_signing_key() for _ in range(NODES)]
    path = tmp_path / "ledger.db"
    with Ledger.create(path, generate_signing_key(), params={}) as ledger:
        ledger.append_many([("node_registered", {"node_index": i, "name": f"node{i}",
                                                 "signing_key": public_key_bytes(k).hex()}, None)
                            for i, k in enumerate(node_keys)])
        settle_round(ledger, Rounds(ledger, AttestingLink(node_keys), tmp_path / "rounds"))
        result = ledger.round_entries("r1", "round_result")[0]
        last = ledger.entry(ledger.size - 1)
        assert last.kind == "model_units_issued" and last.time_ms == result.time_ms  # one commit
        payouts = {e.payload["to"]: e.payload["amount"] for e in ledger.round_entries("r1", "payout")}
        assert payouts == {"hospital-a": 286, "hospital-b": 114}   # 400 = pool 300 + c's slash 100
        units = ledger.state.ownership.units("r1")
        assert units == {"hospital-a": 715_000, "hospital-b": 285_000}
        assert sum(units.values()) == UNITS_PER_MODEL
        assert ledger.state.ownership.model("r1").price_per_1000_rows == 0  # type: ignore[union-attr]
    with Ledger.open(path) as reopened:
        assert reopened.state.ownership.units("r1") == units
    assert verify_ledger(path).ok
