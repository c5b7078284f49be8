"""An end-to-end round on real processes: MPC leave-one-out against plaintext retraining,
slashing of the noisy provider, payouts that add up, a ledger that verifies."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from mutualmind.vocabulary.model_spec import parse_model_spec, spec_for_ledger
from tests.coordinator.rounds.conftest import (
    POOL,
    TOLERANCE,
    Market,
    assert_settled_like_plaintext,
    round_result,
)


@pytest.fixture(scope="module")
def settled(market: Market) -> tuple[Any, Any]:
    """The module's first round, run once: its terms and closed view. The payout test
    checks it; the verify test re-runs its valuation (a verify moves no token)."""
    terms = market.terms("settle-1")
    market.session.open_round(market.sponsor, terms)
    return terms, market.session.run_round("settle-1", deadline_s=300)


def test_round_values_data_like_plaintext_loo_and_pays_out(market: Market, settled: tuple[Any, Any]) -> None:
    terms, view = settled
    assert_settled_like_plaintext(market, terms, view)


def test_round_verify_reruns_the_valuation_and_records_the_verdict(
    market: Market, settled: tuple[Any, Any],
) -> None:
    from proto import admin_pb2, market_pb2

    _, view = settled
    admin = market.session.admin
    reply = admin.call(admin.admin, "VerifyRound",
                       admin_pb2.VerifyRoundRequest(round_id="settle-1", tolerance=TOLERANCE,
                                                    deadline_s=300), timeout=400)
    assert list(reply.recorded_micro) == [p.contribution_micro for p in view.participants]
    assert reply.agrees and reply.max_abs_diff_micro <= reply.tolerance_micro == 10_000
    entries = admin.call(admin.market, "ListEntries",
                         market_pb2.ListEntriesRequest(kind="round_verified", limit=10)).entries
    recorded = [json.loads(e.payload_json) for e in entries]
    assert [r["round_id"] for r in recorded] == ["settle-1"]
    assert recorded[0]["verdict"] == "agrees"
    assert recorded[0]["recomputed_micro"] == list(reply.recomputed_micro)
    # the re-run counted copies again (a fresh sample) and flags the same duplicate
    assert recorded[0]["recomputed_copies"]["samples"] == round_result(market, "settle-1")["copies"]["samples"]
    assert market.session.verify_ledger().ok


def test_a_banzhaf_round_values_every_coalition_and_records_errors(market: Market) -> None:
    """valuation banzhaf: 2^4 coalitions in one MPC pass, 2n+1 signed values, the result
    entry carries errors (0: exact), contributions match plaintext retraining."""
    from mpcnode.worker.reference import plaintext_banzhaf
    from mutualmind.vocabulary.valuation import EXACT, msr_seed, plan
    from proto import market_pb2

    raw = {"kind": "logistic", "task": "binary", "metric": "log_loss", "epochs": 2, "valuation": "banzhaf"}
    terms = market.terms("banzhaf-1", model_spec=raw)
    market.session.open_round(market.sponsor, terms)
    view = market.session.run_round("banzhaf-1", deadline_s=300)
    assert view.status == "closed", view.message
    n = len(market.datasets)
    assert len(view.metrics_micro) == 2 * n + 1
    admin = market.session.admin
    entries = admin.call(admin.market, "ListEntries", market_pb2.ListEntriesRequest(kind="round_result", limit=100)).entries
    result = next(json.loads(e.payload_json) for e in entries if json.loads(e.payload_json)["round_id"] == "banzhaf-1")
    assert result["errors_micro"] == [0] * n

    spec = parse_model_spec(spec_for_ledger(raw))
    coalitions = plan(n, msr_seed("banzhaf-1", spec.to_json(), market.datasets))
    assert coalitions.method == EXACT
    train, val = market.scenario.training.values, market.scenario.validation.values
    reference = plaintext_banzhaf(spec, train[:, :-1], train[:, -1], val[:, :-1], val[:, -1],
                                  [p.rows for p in market.scenario.providers], coalitions)
    plain = -np.array(reference[1 : n + 1])  # log-loss: lower is better
    mpc = np.array([p.contribution_micro for p in view.participants]) / 1e6
    assert np.max(np.abs(mpc - plain)) < TOLERANCE, (mpc, plain)
    slashed = sum(p.slashed for p in view.participants)
    assert sum(p.payout for p in view.participants) + view.refund_to_sponsor == POOL + slashed
    verified = market.session.verify_ledger()
    assert verified.ok, verified.error
