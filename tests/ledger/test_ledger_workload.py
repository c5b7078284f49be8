"""The workload rule of round_opened, by the version a ledger names in its genesis params:
version 2 counts the leave-one-out Newton step as one more pass, version 3 counts the
whole job (every model of a retrain, the evaluation, the solves; the Newton step folded
into the last pass), and a ledger created before (no `workload_rules`) keeps replaying
version 1: what a ledger admitted under its version stays admitted, and it verifies."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger, verify_ledger
from ledger.workload import Market
from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.model_spec import MAX_ROW_EPOCHS, WORKLOAD_RULES
from mutualmind.vocabulary.workload import MAX_WORK

EPOCHS = 8
ROWS = MAX_ROW_EPOCHS // (EPOCHS + 1) // 3 + 1  # per dataset: 3 x ROWS x 9 passes > the cap
DATASETS = ["ds-a", "ds-b", "ds-c"]
STEPPED = {"kind": "logistic", "solver": "newton", "l2": "0.01", "epochs": EPOCHS, "loo": "newton_step"}
RETRAIN = {**STEPPED, "loo": "retrain"}
BANZHAF_STEPPED = {**STEPPED, "valuation": "banzhaf"}


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


def _opened(ledger: Ledger, market: Market, round_id: str, spec: dict) -> None:
    ledger.append(*market.open_round(round_id, "carol", 10, "val", DATASETS, model_spec=spec))


def _refused(ledger: Ledger, market: Market, round_id: str, spec: dict, match: str) -> str:
    size = ledger.size
    with pytest.raises(InvalidInput, match=match) as caught:
        _opened(ledger, market, round_id, spec)
    assert ledger.size == size and ledger.state.pools.get(round_id, 0) == 0
    return str(caught.value)


def test_new_ledgers_name_version_3() -> None:
    assert WORKLOAD_RULES == 3


def test_a_version_2_ledger_counts_the_newton_step_as_a_pass_and_a_version_1_ledger_does_not(
        tmp_path: Path, coordinator_key: Ed25519PrivateKey) -> None:
    assert 3 * ROWS * EPOCHS <= MAX_ROW_EPOCHS < 3 * ROWS * (EPOCHS + 1)
    ledger, market = _world(tmp_path / "v2.db", coordinator_key, {"workload_rules": 2})
    try:
        _refused(ledger, market, "r1", STEPPED, "leave-one-out Newton step")
        _opened(ledger, market, "r2", RETRAIN)   # 4 models x 1.1 million rows x 8: version 2 let it in
    finally:
        ledger.close()
    old, market = _world(tmp_path / "old.db", coordinator_key, {})
    try:
        _opened(old, market, "r1", STEPPED)  # version 1
    finally:
        old.close()
    for name in ("v2.db", "old.db"):
        report = verify_ledger(tmp_path / name)
        assert report.ok, report.error


def test_version_3_counts_every_model_of_a_retrain_and_one_pass_per_newton_step_epoch(
        tmp_path: Path, coordinator_key: Ed25519PrivateKey) -> None:
    """The same three datasets: a retrain's 4 models are 4 x 8.9 million model-row passes
    (refused, naming what to reduce), while the Newton-step paths train one model (8.9
    million) whatever the number of models: leave-one-out (refused by version 2) and
    Banzhaf's 8 coalitions (refused by version 2's Banzhaf rule as 8 retrained models)."""
    assert 4 * 3 * ROWS * EPOCHS > MAX_WORK >= 3 * ROWS * EPOCHS + 8 * 1000 + 64 * (EPOCHS - 1 + 8)
    ledger, market = _world(tmp_path / "v3.db", coordinator_key, {"workload_rules": 3})
    try:
        message = _refused(ledger, market, "r1", RETRAIN, "model-row passes")
        assert "4 leave-one-out models" in message and "include fewer datasets" in message
        assert 'loo "newton_step"' in message
        _refused(ledger, market, "r2", {**RETRAIN, "valuation": "banzhaf"}, "8 Banzhaf coalition models")
        _opened(ledger, market, "r3", STEPPED)
        _opened(ledger, market, "r4", BANZHAF_STEPPED)
        _refused(ledger, market, "r5", {**STEPPED, "epochs": 30}, "rows x epochs")   # one model's passes
    finally:
        ledger.close()
    report = verify_ledger(tmp_path / "v3.db")
    assert report.ok, report.error
    v2, market = _world(tmp_path / "v2.db", coordinator_key, {"workload_rules": 2})
    try:
        # 7 epochs: within version 2's passes even with its extra one, but 8 x 1.1 million x 7
        _refused(v2, market, "r4", {**BANZHAF_STEPPED, "epochs": EPOCHS - 1}, "Banzhaf valuation trains 8 models")
    finally:
        v2.close()
