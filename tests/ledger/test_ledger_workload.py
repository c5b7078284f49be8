"""The workload rule of round_opened counts the leave-one-out Newton step (rule version
2), and a ledger created before (no `workload_rules` in its genesis params) keeps
replaying version 1: what it admitted stays admitted."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger, verify_ledger
from ledger.workload import Market
from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.model_spec import MAX_ROW_EPOCHS, WORKLOAD_RULES

EPOCHS = 8
ROWS = MAX_ROW_EPOCHS // (EPOCHS + 1) // 3 + 1  # per dataset: 3 x ROWS x 9 passes > the cap
STEPPED = {"kind": "logistic", "solver": "newton", "l2": "0.01", "epochs": EPOCHS, "loo": "newton_step"}


def _world(path: Path, key: Ed25519PrivateKey, params: dict) -> tuple[Ledger, Market]:
    ledger = Ledger.create(path, key, params={"nodes": 2, **params})
    market = Market()
    ledger.append_many([market.register_node(0), market.register_node(1)])
    for name in ("alice", "bob", "carol", "dave"):
        ledger.append(*market.register_provider(name))
        ledger.append(*market.mint(name, 10_000))
    for dataset, owner in (("ds-a", "alice"), ("ds-b", "bob"), ("ds-c", "dave")):
        ledger.append_many([market.register_dataset(dataset, owner, rows=ROWS), market.stake(owner, dataset, 1000)])
    ledger.append(*market.register_dataset("val", "carol", "validation"))
    return ledger, market


def test_the_newton_step_counts_as_a_pass_on_new_ledgers_only(tmp_path: Path, coordinator_key: Ed25519PrivateKey) -> None:
    assert 3 * ROWS * EPOCHS <= MAX_ROW_EPOCHS < 3 * ROWS * (EPOCHS + 1)
    datasets = ["ds-a", "ds-b", "ds-c"]
    ledger, market = _world(tmp_path / "new.db", coordinator_key, {"workload_rules": WORKLOAD_RULES})
    try:
        with pytest.raises(InvalidInput, match="leave-one-out Newton step"):
            ledger.append(*market.open_round("r1", "carol", 10, "val", datasets, model_spec=STEPPED))
        ledger.append(*market.open_round("r2", "carol", 10, "val", datasets, model_spec={**STEPPED, "loo": "retrain"}))
    finally:
        ledger.close()
    old, market = _world(tmp_path / "old.db", coordinator_key, {})
    try:
        old.append(*market.open_round("r1", "carol", 10, "val", datasets, model_spec=STEPPED))  # version 1
    finally:
        old.close()
    report = verify_ledger(tmp_path / "old.db")
    assert report.ok, report.error
