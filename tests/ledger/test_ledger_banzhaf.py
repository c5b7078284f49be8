"""Banzhaf rounds on the ledger: the result's values and errors are those of the signed
values, slashes and payouts follow the error band, and `verify_ledger` replays it all."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger, verify_ledger
from ledger.workload import Market
from mutualmind.errors import InvalidInput, RuleViolation
from tests.ledger.test_ledger_rules import _refused

BANZHAF = {"kind": "logistic", "epochs": 3, "valuation": "banzhaf"}
# full log-loss, then mean_in - mean_out per dataset (lower is better: negative = helps),
# then standard errors: ds-a helps clearly, ds-b hurts within noise, ds-c hurts clearly
SIGNED = [300_000, -20_000, 3_000, 9_000, 4_000, 2_000, 2_000]


@pytest.fixture
def banzhaf_world(tmp_path: Path, coordinator_key: Ed25519PrivateKey):  # type: ignore[no-untyped-def]
    ledger = Ledger.create(tmp_path / "ledger.db", coordinator_key, params={"nodes": 2})
    market = Market()
    ledger.append_many([market.register_node(0), market.register_node(1)])
    for name in ("alice", "bob", "carol", "dave"):
        ledger.append(*market.register_provider(name))
        ledger.append(*market.mint(name, 10_000))
    ledger.append_many([
        market.register_dataset("ds-a", "alice"), market.stake("alice", "ds-a", 1000),
        market.register_dataset("ds-b", "bob"), market.stake("bob", "ds-b", 1000),
        market.register_dataset("ds-c", "dave"), market.stake("dave", "ds-c", 1000),
        market.register_dataset("val", "carol", "validation"),
        market.open_round("r1", "carol", 3000, "val", ["ds-a", "ds-b", "ds-c"], model_spec=BANZHAF),
    ])
    yield ledger, market
    ledger.close()


def test_a_banzhaf_round_slashes_and_pays_by_the_error_band(banzhaf_world) -> None:  # type: ignore[no-untyped-def]
    ledger, market = banzhaf_world
    assert ledger.state.rounds["r1"].valuation == "banzhaf"
    ledger.append(*market.round_result("r1", SIGNED))
    assert ledger.state.rounds["r1"].errors == (4_000, 2_000, 2_000)
    # ds-b: -3,000 + 2 x 2,000 is not below -1,000: within noise, no slash
    _refused(ledger, RuleViolation, ("slash", {"round_id": "r1", "dataset_id": "ds-b", "provider_id": "bob",
                                               "amount": 100}, None), "slash_unwarranted")
    ledger.append("slash", {"round_id": "r1", "dataset_id": "ds-c", "provider_id": "dave", "amount": 100}, None)
    # bob's value is within noise and dave's negative: no payout to them
    for party in ("bob", "dave"):
        _refused(ledger, RuleViolation, ("payout", {"round_id": "r1", "to": party, "amount": 1}, None),
                 "payout_unwarranted")
    ledger.append("payout", {"round_id": "r1", "to": "alice", "amount": 3100}, None)
    ledger.append("round_closed", {"round_id": "r1"}, None)
    report = verify_ledger(ledger.path)
    assert report.ok, report.error


def test_a_banzhaf_result_must_derive_from_its_signed_values(banzhaf_world) -> None:  # type: ignore[no-untyped-def]
    ledger, market = banzhaf_world
    kind, payload, _ = market.round_result("r1", SIGNED)
    _refused(ledger, RuleViolation, (kind, {**payload, "errors_micro": [0, 0, 0]}, None), "result_values")
    _refused(ledger, RuleViolation, (kind, {**payload, "contributions_micro": [20_000, -3_000, -8_000]}, None),
             "result_values")
    missing = dict(payload)
    del missing["errors_micro"]
    _refused(ledger, RuleViolation, (kind, missing, None), "result_shape")
    # a leave-one-out shaped result (n+1 values) is refused for a Banzhaf round
    _refused(ledger, RuleViolation, market.round_result("r1", SIGNED[:4]), "result_shape")


def test_a_loo_round_refuses_errors(tmp_path: Path, coordinator_key: Ed25519PrivateKey) -> None:
    ledger = Ledger.create(tmp_path / "ledger.db", coordinator_key, params={"nodes": 1})
    market = Market()
    ledger.append(*market.register_node(0))
    for name in ("alice", "bob", "carol"):
        ledger.append(*market.register_provider(name))
        ledger.append(*market.mint(name, 10_000))
    ledger.append_many([
        market.register_dataset("ds-a", "alice"), market.stake("alice", "ds-a", 1000),
        market.register_dataset("ds-b", "bob"), market.stake("bob", "ds-b", 1000),
        market.register_dataset("ds-c", "alice"), market.stake("alice", "ds-c", 1000),
        market.register_dataset("val", "carol", "validation"),
        market.open_round("r1", "carol", 3000, "val", ["ds-a", "ds-b", "ds-c"]),
    ])
    kind, payload, _ = market.round_result("r1", [900_000, 850_000, 910_000, 900_000])
    _refused(ledger, RuleViolation, (kind, {**payload, "errors_micro": [0, 0, 0]}, None), "result_shape")
    ledger.close()


def test_a_banzhaf_round_beyond_a_jobs_work_is_refused_at_open(banzhaf_world) -> None:  # type: ignore[no-untyped-def]
    ledger, market = banzhaf_world
    # 8 models x 3,000 rows x 1,000 epochs: fine for leave-one-out, too much for Banzhaf
    heavy = {**BANZHAF, "epochs": 1000}
    error = _refused(ledger, InvalidInput, market.open_round("r2", "carol", 10, "val", ["ds-a", "ds-b", "ds-c"],
                                                             model_spec=heavy))
    assert "Banzhaf" in str(error) and "epochs" in str(error)
    ledger.append(*market.open_round("r3", "carol", 10, "val", ["ds-a", "ds-b", "ds-c"],
                                     model_spec={**heavy, "valuation": "loo"}))
