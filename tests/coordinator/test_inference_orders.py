"""The coordinator's inference orders on a real ledger, without MPC: what `place` refuses
before the fee is held (nothing written), and `recover` refunding orders a restart left
pending. The MPC path is tests/coordinator/rounds/test_model_collection.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coordinator.inference import InferenceOrders
from ledger import Ledger, verify_ledger
from mutualmind.errors import InvalidInput, NotFound
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
