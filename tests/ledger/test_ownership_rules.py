"""A mutually owned model on a real ledger: units from a settled round, transfers, inference
orders, deliveries, failures, dividends and price changes; every refusal typed, nothing written."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger, verify_ledger
from mutualmind.errors import InvalidInput, NotFound, PermissionDenied, RuleViolation
from mutualmind.vocabulary.ownership import UNITS_PER_MODEL
from mutualmind.vocabulary.payloads import MAX_MODEL_HOLDERS
from mutualmind.vocabulary.signing_keys import generate_signing_key
from tests.ledger.owned_model import OwnedMarket, owned_world, settlement_requests

ALICE_UNITS, BOB_UNITS = 714_333, 285_667   # 2143 and 857 tokens earned of r1's 3000


@pytest.fixture
def owned(tmp_path: Path, coordinator_key: Ed25519PrivateKey):  # type: ignore[no-untyped-def]
    ledger = Ledger.create(tmp_path / "ledger.db", coordinator_key, params={"nodes": 2})
    market = OwnedMarket()
    owned_world(ledger, market)
    yield ledger, market
    ledger.close()


def _count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])
    finally:
        conn.close()


def _snapshot(ledger: Ledger) -> tuple[Any, ...]:
    view = ledger.state.ownership
    return (ledger.size, ledger.root_hash(), dict(ledger.state.balances), dict(ledger.state.used_nonces),
            {m: view.units(m) for m in view.model_ids()}, {m: view.fee_account(m) for m in view.model_ids()},
            view.held_fees(), {m: view.model(m) for m in view.model_ids()})


def _refused(ledger: Ledger, error: type[Exception], request: tuple[str, dict[str, Any], Any],
             rule: str | None = None) -> Exception:
    before = _snapshot(ledger)
    with pytest.raises(error) as caught:
        ledger.append(*request)
    if rule is not None:
        assert caught.value.rule == rule  # type: ignore[attr-defined]
    assert _snapshot(ledger) == before
    assert _count(ledger.path) == ledger.size
    return caught.value


def test_units_are_issued_with_the_settlement_pro_rata_to_earnings(owned) -> None:  # type: ignore[no-untyped-def]
    ledger, _ = owned
    view = ledger.state.ownership
    assert view.units("r1") == {"alice": ALICE_UNITS, "bob": BOB_UNITS}
    assert sum(view.units("r1").values()) == UNITS_PER_MODEL
    model = view.model("r1")
    assert model is not None and model.price_per_1000_rows == 7 and model.source_id == "r1"
    last = ledger.entries(ledger.size - 2, limit=2)
    assert [e.kind for e in last] == ["round_closed", "model_units_issued"]
    assert ledger.state.ownership.units("r1") == {"alice": ALICE_UNITS, "bob": BOB_UNITS}


def test_units_issue_is_recomputed_on_append(tmp_path: Path, coordinator_key: Ed25519PrivateKey) -> None:
    ledger = Ledger.create(tmp_path / "ledger.db", coordinator_key, params={})
    market = OwnedMarket()
    with ledger:
        ledger.append_many([market.register_node(0)])
        for name in ("alice", "bob", "carol"):
            ledger.append_many([market.register_provider(name), market.mint(name, 10_000)])
        ledger.append_many([
            market.register_dataset("ds-a", "alice"), market.stake("alice", "ds-a", 1000),
            market.register_dataset("ds-b", "bob"), market.stake("bob", "ds-b", 1000),
            market.register_dataset("ds-c", "alice"), market.stake("alice", "ds-c", 1000),
            market.register_dataset("val", "carol", "validation"),
            market.open_priced_round("r1", "carol", 3000, "val", ["ds-a", "ds-b", "ds-c"]),
        ])
        batch = settlement_requests(ledger, market, "r1", [900_000, 880_000, 890_000, 895_000])
        units = batch.pop()
        holders = [{"to": "alice", "units": ALICE_UNITS - 1}, {"to": "bob", "units": BOB_UNITS + 1}]
        skewed = (units[0], {**units[1], "holders": holders}, None)
        _refused(ledger, RuleViolation, units, "source_not_settled")   # before the round closed
        with pytest.raises(RuleViolation) as caught:   # one group commit: all or nothing
            ledger.append_many([*batch, skewed])
        assert caught.value.rule == "units_mismatch" and ledger.state.rounds["r1"].status == "open"
        ledger.append_many(batch)
        _refused(ledger, RuleViolation, skewed, "units_mismatch")
        ledger.append(*units)
        again = (units[0], {**units[1], "model_id": "other"}, None)
        _refused(ledger, RuleViolation, again, "units_issued")


def test_a_round_where_nobody_earned_issues_no_model(tmp_path: Path, coordinator_key: Ed25519PrivateKey) -> None:
    ledger = Ledger.create(tmp_path / "ledger.db", coordinator_key, params={})
    market = OwnedMarket()
    with ledger:
        ledger.append_many([market.register_node(0)])
        for name in ("alice", "bob", "carol"):
            ledger.append_many([market.register_provider(name), market.mint(name, 10_000)])
        ledger.append_many([
            market.register_dataset("ds-a", "alice"), market.stake("alice", "ds-a", 1000),
            market.register_dataset("ds-b", "bob"), market.stake("bob", "ds-b", 1000),
            market.register_dataset("ds-c", "alice"), market.stake("alice", "ds-c", 1000),
            market.register_dataset("val", "carol", "validation"),
            market.open_priced_round("r1", "carol", 3000, "val", ["ds-a", "ds-b", "ds-c"]),
        ])
        batch = settlement_requests(ledger, market, "r1", [900_000, 900_000, 900_000, 900_000])
        assert batch[-1][0] == "round_closed"   # the pool went back to carol: no earner, no units
        ledger.append_many(batch)
        forced = ("model_units_issued", {"model_id": "r1", "source_kind": "round", "source_id": "r1",
                                         "holders": [{"to": "carol", "units": UNITS_PER_MODEL}]}, None)
        _refused(ledger, RuleViolation, forced, "nothing_earned")


def test_units_transfer_moves_units_and_refuses_more_than_held(owned) -> None:  # type: ignore[no-untyped-def]
    ledger, market = owned
    ledger.append(*market.units_transfer("r1", "bob", "erin", 85_667))
    assert ledger.state.ownership.units("r1") == {"alice": ALICE_UNITS, "bob": 200_000, "erin": 85_667}
    _refused(ledger, RuleViolation, market.units_transfer("r1", "erin", "bob", 85_668), "insufficient_units")
    _refused(ledger, RuleViolation, market.units_transfer("r1", "dave", "bob", 1), "insufficient_units")
    _refused(ledger, RuleViolation, market.units_transfer("nope", "bob", "dave", 1), "unknown_model")
    _refused(ledger, RuleViolation, market.units_transfer("r1", "bob", "bob", 1), "self_transfer")
    _refused(ledger, RuleViolation, market.units_transfer("r1", "bob", "zed", 1), "unknown_provider")
    kind, payload, _ = market.units_transfer("r1", "bob", "dave", 1)
    forged = generate_signing_key().sign(b"mutualmind/request/v1\n")
    _refused(ledger, PermissionDenied, (kind, payload, forged))
    _refused(ledger, InvalidInput, (kind, {**payload, "units": 1.5}, forged))
    used = market.units_transfer("r1", "bob", "dave", 1, nonce="n" * 16)
    ledger.append(*used)
    _refused(ledger, RuleViolation, market.units_transfer("r1", "bob", "dave", 1, nonce="n" * 16), "nonce_reused")


def test_a_model_has_at_most_max_holders(owned) -> None:  # type: ignore[no-untyped-def]
    ledger, market = owned
    names = [f"h{i:04d}" for i in range(MAX_MODEL_HOLDERS - 2)]   # with alice and bob: the limit
    ledger.append_many([market.register_provider(name) for name in names])
    ledger.append_many([market.units_transfer("r1", "alice", name, 1) for name in names[:-1]])
    ledger.append(*market.units_transfer("r1", "bob", names[-1], 1))
    assert len(ledger.state.ownership.units("r1")) == MAX_MODEL_HOLDERS
    _refused(ledger, RuleViolation, market.units_transfer("r1", "alice", "dave", 1), "too_many_holders")
    ledger.append(*market.units_transfer("r1", names[0], "dave", 1))   # a holder leaves, one joins
    assert "dave" in ledger.state.ownership.units("r1") and names[0] not in ledger.state.ownership.units("r1")


def test_order_holds_the_fee_and_delivery_pays_the_fee_account(owned) -> None:  # type: ignore[no-untyped-def]
    ledger, market = owned
    supply = ledger.state.totals["minted"]
    ledger.append(*market.order("o1", "r1", "dave", 2500))   # ceil(2500 / 1000) = 3 thousands x 7
    view = ledger.state.ownership
    assert ledger.state.balance("dave") == 10_000 - 21 and view.held_fees() == 21
    _refused(ledger, RuleViolation, market.delivery("o1", "r1", "dave", 2400), "order_mismatch")
    ledger.append(*market.delivery("o1", "r1", "dave", 2500))
    assert view.held_fees() == 0 and view.fee_account("r1") == 21 and view.order("o1").status == "delivered"  # type: ignore[union-attr]
    _refused(ledger, RuleViolation, market.delivery("o1", "r1", "dave", 2500), "order_state")
    _refused(ledger, RuleViolation, ("inference_failed", {"order_id": "o1", "reason": "late"}, None), "order_state")
    recount = ledger.state.recount_supply()
    assert recount["balances"] + recount["stakes"] + recount["pools"] == supply


def test_order_refusals(owned) -> None:  # type: ignore[no-untyped-def]
    ledger, market = owned
    _refused(ledger, RuleViolation, market.order("o1", "r1", "dave", 2500, fee=14), "fee_mismatch")
    _refused(ledger, RuleViolation, market.order("o1", "r1", "dave", 2_000_000), "insufficient_balance")
    _refused(ledger, RuleViolation, market.order("o1", "nope", "dave", 10), "unknown_model")
    _refused(ledger, RuleViolation, market.order("o1", "r1", "dave", 10, issued_at_ms=1), "stale_order")
    market.provider_keys["zed"] = generate_signing_key()   # a key the ledger never registered
    _refused(ledger, RuleViolation, market.order("o1", "r1", "zed", 10), "unknown_provider")
    ledger.append(*market.order("o1", "r1", "dave", 10, nonce="replayed-nonce"))
    _refused(ledger, RuleViolation, market.order("o2", "r1", "dave", 10, nonce="replayed-nonce"), "nonce_reused")
    _refused(ledger, RuleViolation, market.order("o1", "r1", "erin", 10), "order_exists")


def test_delivery_must_be_attested_by_every_registered_node(owned) -> None:  # type: ignore[no-untyped-def]
    ledger, market = owned
    ledger.append(*market.order("o1", "r1", "dave", 10))
    stranger = generate_signing_key()
    # a key that is no node, signing as node 1: the attestation does not verify
    _refused(ledger, PermissionDenied, market.delivery("o1", "r1", "dave", 10,
                                                       node_keys=[market.node_keys[0], stranger]))
    # an attestation from an index that is no registered node
    _refused(ledger, RuleViolation, market.delivery("o1", "r1", "dave", 10,
                                                    node_keys=[market.node_keys[0], stranger],
                                                    indexes=[0, 5]), "attestations")
    _refused(ledger, RuleViolation, market.delivery("o1", "r1", "dave", 10, node_keys=market.node_keys[:1]),
             "attestations")
    ledger.append(*market.delivery("o1", "r1", "dave", 10))


def test_a_failed_job_refunds_the_fee(owned) -> None:  # type: ignore[no-untyped-def]
    ledger, market = owned
    ledger.append(*market.order("o1", "r1", "dave", 1001))
    assert ledger.state.balance("dave") == 10_000 - 14
    ledger.append("inference_failed", {"order_id": "o1", "reason": "a node went away"}, None)
    assert ledger.state.balance("dave") == 10_000 and ledger.state.ownership.held_fees() == 0
    _refused(ledger, RuleViolation, market.delivery("o1", "r1", "dave", 1001), "order_state")
    _refused(ledger, RuleViolation, ("inference_failed", {"order_id": "o9", "reason": ""}, None), "unknown_order")


def test_dividend_pays_the_fee_account_pro_rata_to_units(owned) -> None:  # type: ignore[no-untyped-def]
    from coordinator.ownership import dividend_request, pay_dividend

    ledger, market = owned
    view = ledger.state.ownership
    nothing = ("dividend_paid", {"model_id": "r1", "amount": 5, "payments": [{"to": "alice", "amount": 5}]}, None)
    _refused(ledger, RuleViolation, nothing, "nothing_to_pay")
    ledger.append(*market.order("o1", "r1", "dave", 2500))
    ledger.append(*market.delivery("o1", "r1", "dave", 2500))
    request = dividend_request("r1", view.fee_account("r1"), view.units("r1"))
    assert request[1]["payments"] == [{"to": "alice", "amount": 15}, {"to": "bob", "amount": 6}]
    skewed = (request[0], {**request[1], "payments": [{"to": "alice", "amount": 16}, {"to": "bob", "amount": 5}]}, None)
    _refused(ledger, RuleViolation, skewed, "dividend_mismatch")
    _refused(ledger, RuleViolation, (request[0], {**request[1], "amount": 20}, None), "dividend_amount")
    alice, bob = ledger.state.balance("alice"), ledger.state.balance("bob")
    with pytest.raises(NotFound):
        pay_dividend(ledger, "nope")
    assert pay_dividend(ledger, "r1").payload == request[1]
    assert (ledger.state.balance("alice") - alice, ledger.state.balance("bob") - bob) == (15, 6)
    assert view.fee_account("r1") == 0
    _refused(ledger, RuleViolation, request, "nothing_to_pay")
    with pytest.raises(RuleViolation):
        pay_dividend(ledger, "r1")
    history = [e.kind for e in ledger.entries_for_party("bob")]   # listed payees are indexed
    assert history[-2:] == ["model_units_issued", "dividend_paid"]


def test_price_changes_only_with_a_majority_of_units(owned) -> None:  # type: ignore[no-untyped-def]
    ledger, market = owned
    _refused(ledger, RuleViolation, market.price_change("r1", 9, ["bob"]), "no_majority")
    _refused(ledger, RuleViolation, market.price_change("r1", 9, ["bob", "dave"]), "not_owner")
    kind, payload, _ = market.price_change("r1", 9, ["alice"])
    forged = [{"owner": "alice", "signature": generate_signing_key().sign(b"x").hex()}]
    _refused(ledger, PermissionDenied, (kind, {**payload, "signatures": forged}, None))
    _refused(ledger, PermissionDenied, (kind, {**payload, "price_per_1000_rows": 1}, None))  # signed 9, not 1
    # exactly half is not a majority: alice passes bob all but 500,000 of her units
    ledger.append(*market.units_transfer("r1", "alice", "bob", ALICE_UNITS - 500_000))
    _refused(ledger, RuleViolation, market.price_change("r1", 9, ["bob"]), "no_majority")
    ledger.append(*market.units_transfer("r1", "alice", "bob", 1))
    ledger.append(*market.price_change("r1", 9, ["bob"]))
    assert ledger.state.ownership.model("r1").price_per_1000_rows == 9  # type: ignore[union-attr]
    _refused(ledger, RuleViolation, market.order("o1", "r1", "dave", 1000), "fee_mismatch")  # priced at 7
    ledger.append(*market.order("o1", "r1", "dave", 1000, price=9))
    replay = market.price_change("r1", 11, ["bob"], nonce="proposal-1")
    ledger.append(*replay)
    _refused(ledger, RuleViolation, replay, "nonce_reused")


def test_a_model_opened_without_a_price_is_not_for_sale(tmp_path: Path, coordinator_key: Ed25519PrivateKey) -> None:
    market = OwnedMarket()
    with Ledger.create(tmp_path / "ledger.db", coordinator_key, params={}) as ledger:
        owned_world(ledger, market, price=None)
        _refused(ledger, RuleViolation, market.order("o1", "r1", "dave", 10), "not_for_sale")
        ledger.append(*market.price_change("r1", 3, ["alice"]))
        ledger.append(*market.order("o1", "r1", "dave", 10, price=3))


def test_replay_and_verify_agree_with_the_live_state(owned) -> None:  # type: ignore[no-untyped-def]
    ledger, market = owned
    ledger.append(*market.order("o1", "r1", "dave", 3000))
    ledger.append(*market.delivery("o1", "r1", "dave", 3000))
    ledger.append(*market.order("o2", "r1", "erin", 1))
    ledger.append(*market.units_transfer("r1", "alice", "erin", 1000))
    live = _snapshot(ledger)[2:]
    path = ledger.path
    ledger.close()
    with Ledger.open(path) as reopened:
        assert _snapshot(reopened)[2:] == live
    report = verify_ledger(path)
    assert report.ok, report
