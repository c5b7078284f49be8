"""Ledger bounds: every list and string of a payload, the entry size, and the total supply
(so every balance stays within int64). Real ledgers on SQLite; refusals write nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger, verify_ledger
from ledger.workload import Market
from mutualmind.errors import InvalidInput, RuleViolation
from mutualmind.vocabulary.payloads import MAX_SUPPLY


@pytest.fixture
def world(tmp_path: Path, coordinator_key: Ed25519PrivateKey) -> Any:
    ledger = Ledger.create(tmp_path / "ledger.db", coordinator_key, params={"nodes": 2})
    market = Market()
    ledger.append_many([market.register_node(0), market.register_node(1)])
    for name in ("alice", "bob", "carol"):
        ledger.append(*market.register_provider(name))
    ledger.append_many([market.mint("alice", 100), market.mint("carol", 100),
                        market.register_dataset("ds-a", "alice"),
                        market.stake("alice", "ds-a", 10),
                        market.register_dataset("val", "carol", "validation")])
    yield ledger, market
    ledger.close()


def _refused(ledger: Ledger, error: type[Exception], request: tuple[str, dict[str, Any], Any],
             match: str) -> None:
    size, root = ledger.size, ledger.root_hash()
    with pytest.raises(error, match=match):
        ledger.append(*request)
    assert (ledger.size, ledger.root_hash()) == (size, root)


def test_minting_stops_at_the_supply_limit_and_replay_agrees(world: Any) -> None:
    ledger, market = world
    ledger.append(*market.mint("bob", MAX_SUPPLY - 200))
    _refused(ledger, RuleViolation, market.mint("bob", 1), "supply_limit: .* mint at most 0")
    _refused(ledger, RuleViolation, market.mint("alice", 2**62 - 1), "supply_limit")
    assert ledger.state.totals["minted"] == MAX_SUPPLY < 2**63 - 1
    assert sum(ledger.state.balances.values()) + sum(ledger.state.stakes.values()) == MAX_SUPPLY
    ledger.append(*market.transfer("bob", "alice", MAX_SUPPLY - 200))
    assert ledger.state.balance("alice") == MAX_SUPPLY - 110
    report = verify_ledger(ledger.path)
    assert report.ok and report.total_supply == MAX_SUPPLY
    reopened = Ledger.open(ledger.path)
    assert reopened.state.balances == ledger.state.balances
    reopened.close()


def _round(market: Market, datasets: list[str]) -> tuple[str, dict[str, Any], Any]:
    return market.open_round("r1", "carol", 10, "val", datasets)


@pytest.mark.parametrize("case, mutate, match", [
    ("mint memo of 1025 characters", lambda p: p.update(memo="m" * 1025), "'memo' must be a string of at most 1024"),
    ("round of 257 datasets", lambda p: p.update(datasets=[f"d{i}" for i in range(257)]),
     "'datasets' must be a list of at most 256 ids"),
    ("metric beyond int64", lambda p: p.update(metrics_micro=[2**63]), "outside the signed 64-bit range"),
    ("too many metrics", lambda p: p.update(metrics_micro=list(range(258))), "at most 257 integers"),
])
def test_payload_lists_and_strings_are_bounded(world: Any, case: str, mutate: Any, match: str) -> None:
    ledger, market = world
    if "metric" in case:
        kind, payload = "round_result", {
            "round_id": "r1", "job_digest": "0" * 64, "metrics_micro": [1, 2],
            "contributions_micro": [1], "attestations": [{"node_index": 0, "signature": "0" * 128}]}
        signature = None
    elif "memo" in case:
        kind, payload, signature = market.mint("alice", 1)
    else:
        kind, payload, _ = _round(market, ["ds-a"])
        signature = None
    mutate(payload)
    if kind == "round_opened":
        signature = market.signed(kind, payload, "carol")[2]
    _refused(ledger, InvalidInput, (kind, payload, signature), match)


def test_a_huge_model_spec_is_refused_by_entry_size(world: Any) -> None:
    ledger, market = world
    kind, payload, _ = _round(market, ["ds-a"])
    payload["model_spec"] = {"kind": "logistic", "pad": "x" * 300_000}
    signature = market.signed(kind, payload, "carol")[2]
    _refused(ledger, InvalidInput, (kind, payload, signature), "above the limit of 262144")
