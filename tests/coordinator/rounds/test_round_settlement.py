"""An end-to-end round on real processes: MPC leave-one-out against plaintext retraining,
slashing of the noisy provider, payouts that add up, a ledger that verifies."""

from __future__ import annotations

import json

from tests.coordinator.rounds.conftest import TOLERANCE, Market, assert_settled_like_plaintext


def test_round_values_data_like_plaintext_loo_and_pays_out(market: Market) -> None:
    terms = market.terms("settle-1")
    market.session.open_round(market.sponsor, terms)
    view = market.session.run_round("settle-1", deadline_s=300)

    assert_settled_like_plaintext(market, terms, view)


def test_round_verify_reruns_the_valuation_and_records_the_verdict(market: Market) -> None:
    from proto import admin_pb2, market_pb2

    market.session.open_round(market.sponsor, market.terms("verify-1"))
    view = market.session.run_round("verify-1", deadline_s=300)
    admin = market.session.admin
    reply = admin.call(admin.admin, "VerifyRound",
                       admin_pb2.VerifyRoundRequest(round_id="verify-1", tolerance=TOLERANCE,
                                                    deadline_s=300), timeout=400)
    assert list(reply.recorded_micro) == [p.contribution_micro for p in view.participants]
    assert reply.agrees and reply.max_abs_diff_micro <= reply.tolerance_micro == 10_000
    entries = admin.call(admin.market, "ListEntries",
                         market_pb2.ListEntriesRequest(kind="round_verified", limit=10)).entries
    recorded = [json.loads(e.payload_json) for e in entries]
    assert [r["round_id"] for r in recorded] == ["verify-1"]
    assert recorded[0]["verdict"] == "agrees"
    assert recorded[0]["recomputed_micro"] == list(reply.recomputed_micro)
    assert market.session.verify_ledger().ok
