"""The coordinator's inference orders on a real ledger, without MPC: what `place` refuses
before the fee is held (nothing written), and `recover` refunding orders a restart left
pending. The MPC path is tests/coordinator/rounds/test_model_collection.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coordinator.inference import InferenceOrders
from ledger import Ledger, verify_ledger
from mutualmind.errors import InvalidInput, NotFound, RuleViolation
from mutualmind.vocabulary.signing_keys import generate_signing_key
from tests.ledger.owned_model import OwnedMarket, owned_world


@pytest.fixture
def owned(tmp_path: Path) -> Any:
    ledger = Ledger.create(tmp_path / "ledger.db", generate_signing_key(), params={"nodes": 2})
    market = OwnedMarket()
    owned_world(ledger, market)
    yield ledger, market
    ledger.close()


def test_an_order_without_the_users_query_rows_is_refused_and_nothing_is_held(owned: Any) -> None:
    ledger, market = owned
    orders = InferenceOrders(ledger, rounds=None)  # type: ignore[arg-type]  # refused before any job
    size = ledger.state.size
    _, payload, signature = market.order("q-1", "r1", "dave", 10)
    with pytest.raises(InvalidInput, match="names no shared query rows"):
        orders.place(payload, signature)
    # a training set of another provider under the order's id is no query
    _, payload, signature = market.order("ds-a", "r1", "dave", 10)
    with pytest.raises(InvalidInput, match="names no shared query rows"):
        orders.place(payload, signature)
    _, payload, signature = market.order("q-2", "nope", "dave", 10)
    with pytest.raises(NotFound, match="no model 'nope'"):
        orders.place(payload, signature)
    assert ledger.state.size == size and ledger.state.balance("dave") == 10_000


def test_recover_refunds_orders_a_restart_left_pending(owned: Any) -> None:
    ledger, market = owned
    ledger.append(*market.order("o1", "r1", "dave", 10))
    ledger.append(*market.order("o2", "r1", "erin", 10))
    ledger.append(*market.delivery("o2", "r1", "erin", 10))
    assert ledger.state.balance("dave") == 10_000 - 7
    assert InferenceOrders(ledger, rounds=None).recover() == ["o1"]  # type: ignore[arg-type]
    assert ledger.state.balance("dave") == 10_000 and ledger.state.ownership.held_fees() == 0
    assert ledger.state.ownership.fee_account("r1") == 7            # o2 stays delivered
    assert InferenceOrders(ledger, rounds=None).view("o1").state == "failed"  # type: ignore[arg-type]
    assert verify_ledger(ledger.path).ok


def test_a_multiclass_tournaments_metamodel_is_not_sold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed multiclass tournament's metamodel is an owned model, but inference answers
    one probability per row: the order is refused before its fee is held."""
    from coordinator.tournaments import Tournaments, settlement_requests
    from mutualmind.vocabulary.ownership import order_payload
    from tests.ledger.test_tournament_rules import (
        DEADLINE,
        MULTICLASS,
        Clock,
        build_world,
        freeze,
        open_multiclass,
        resolve,
        result,
        submit,
    )

    clock = Clock()
    monkeypatch.setattr("ledger.ledger._now_ms", clock)
    ledger, market = build_world(tmp_path / "ledger.db", generate_signing_key(), clock)
    open_multiclass(ledger, market)
    ledger.append(*submit(market, "soft", "m1", list(MULTICLASS), recipe={"kind": "softmax", "classes": 3},
                          tid="t3"))
    clock.now = DEADLINE
    ledger.append(*freeze(ledger, market, "t3"))
    ledger.append_many([market.register_dataset("res3", "spon", "validation", label_classes=3),
                        resolve(market, dataset="res3", tid="t3")])
    ledger.append(*result(ledger, market, 500_000, [10_000], [[1_000, 2_000, 3_000]], tid="t3"))
    ledger.append_many(settlement_requests(ledger, "t3", "spon"))
    assert ledger.state.ownership.model("t3") is not None    # owned, like a binary metamodel
    orders = InferenceOrders(ledger, rounds=None, tournaments=Tournaments(ledger, None, tmp_path / "t"))  # type: ignore[arg-type]
    payload = order_payload("q-3", "t3", "eve", 10, 1_000, clock.now, market.nonce())
    kind, payload, signature = market.signed("inference_ordered", payload, "eve")
    size = ledger.state.size
    with pytest.raises(RuleViolation, match="metamodel of a multiclass tournament") as caught:
        orders.place(payload, signature)
    assert caught.value.rule == "model_not_sellable" and ledger.state.size == size
    ledger.close()
