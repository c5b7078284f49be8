"""An end-to-end round on real processes: MPC leave-one-out against plaintext retraining,
slashing of the noisy provider, payouts that add up, a ledger that verifies."""

from __future__ import annotations

import json

import numpy as np

from mpcnode.worker.reference import plaintext_loo
from mutualmind.vocabulary.copy_rule import is_copy
from mutualmind.vocabulary.model_spec import parse_model_spec, spec_for_ledger
from tests.coordinator.rounds.conftest import MINT, POOL, SLASH_RATE_PPM, STAKE, Market

# MPC fixed point (16 fractional bits), CrypTen's sigmoid/log approximations and share
# truncation noise move a log-loss contribution by a few thousandths at most here.
TOLERANCE = 0.01


def test_round_values_data_like_plaintext_loo_and_pays_out(market: Market) -> None:
    terms = market.terms("settle-1")
    market.session.open_round(market.sponsor, terms)
    view = market.session.run_round("settle-1", deadline_s=300)

    assert view.status == "closed", view.message
    mpc = np.array([p.contribution_micro for p in view.participants]) / 1e6

    # plaintext: the same algorithm retrained n+1 times, without each provider in turn
    spec = parse_model_spec(spec_for_ledger(terms.model_spec))   # what the nodes train
    train = market.scenario.training.values
    val = market.scenario.validation.values
    metrics = plaintext_loo(spec, train[:, :-1], train[:, -1], val[:, :-1], val[:, -1],
                            [p.rows for p in market.scenario.providers])
    plain = np.array(metrics[1:]) - metrics[0]          # log-loss: lower is better

    assert np.max(np.abs(mpc - plain)) < TOLERANCE, (mpc, plain)
    for i in range(len(plain)):
        if abs(plain[i]) > TOLERANCE:
            assert np.sign(mpc[i]) == np.sign(plain[i]), (i, mpc, plain)
        for j in range(len(plain)):
            if plain[i] - plain[j] > 2 * TOLERANCE:
                assert mpc[i] > mpc[j], (i, j, mpc, plain)

    roles = {p.name + "-data": p.role for p in market.scenario.providers}
    by_role = {roles[p.dataset_id]: p for p in view.participants}
    noisy = by_role["noisy"]
    assert noisy.contribution_micro < -terms.epsilon_micro
    assert noisy.slashed == STAKE * SLASH_RATE_PPM // 1_000_000
    assert noisy.payout == 0
    # the duplicate re-submits provider 0's rows: the nodes' copy counts flag it (issue 13),
    # so it earns nothing and is slashed, while the original it copied is paid
    result = _round_result(market, "settle-1")
    copies = result["copies"]
    copied = {d for d, c, s in zip(terms.datasets, copies["counts"], copies["samples"], strict=True) if is_copy(c, s)}
    assert copied == {p.dataset_id for p in view.participants if roles[p.dataset_id] == "duplicate"}
    duplicate = by_role["duplicate"]
    assert duplicate.payout == 0 and duplicate.slashed == STAKE * SLASH_RATE_PPM // 1_000_000
    assert by_role["honest"].contribution_micro > terms.epsilon_micro and by_role["honest"].payout > 0
    slashed = sum(p.slashed for p in view.participants)
    paid = sum(p.payout for p in view.participants) + view.refund_to_sponsor
    assert paid == POOL + slashed                    # the pool (and slashes) paid out exactly
    assert all(p.payout > 0 for p in view.participants
               if p.contribution_micro > terms.epsilon_micro and p.dataset_id not in copied)

    # balances are a replay of the ledger, and the ledger verifies
    for part in market.scenario.providers:
        balance = market.session.balance(part.name)
        payout = next(p.payout for p in view.participants if p.dataset_id == f"{part.name}-data")
        assert balance.balance == MINT - STAKE + payout   # a slash takes from the stake
    assert market.session.balance("sponsor").balance == MINT - POOL
    verified = market.session.verify_ledger()
    assert verified.ok, verified.error


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
    # the re-run counted copies again (a fresh sample) and flags the same duplicate
    assert recorded[0]["recomputed_copies"]["samples"] == _round_result(market, "verify-1")["copies"]["samples"]
    assert market.session.verify_ledger().ok


def _round_result(market: Market, round_id: str) -> dict:
    from proto import market_pb2

    admin = market.session.admin
    entries = admin.call(admin.market, "ListEntries",
                         market_pb2.ListEntriesRequest(kind="round_result", limit=50)).entries
    return next(p for p in (json.loads(e.payload_json) for e in entries) if p["round_id"] == round_id)
