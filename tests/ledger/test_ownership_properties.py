"""Property tests: random orders, deliveries, failures, dividends, units transfers and price
changes on a real ledger conserve units and tokens, and replay equals the live state."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from coordinator.ownership import dividend_request
from ledger import Ledger
from mutualmind.errors import MutualMindError
from mutualmind.vocabulary.ownership import UNITS_PER_MODEL
from mutualmind.vocabulary.signing_keys import generate_signing_key
from tests.ledger.owned_model import OwnedMarket, owned_world

PARTIES = ("alice", "bob", "carol", "dave", "erin")
who = st.sampled_from(PARTIES)
signers = st.one_of(st.lists(who, min_size=1, max_size=3, unique=True),
                    st.sampled_from([["alice"], ["bob"], ["alice", "bob"], ["bob", "erin"]]))
operations = st.one_of(
    st.tuples(st.just("order"), who, st.integers(1, 4000)),
    st.tuples(st.just("deliver"), st.integers(0, 20)),
    st.tuples(st.just("deliver"), st.integers(0, 20)),
    st.tuples(st.just("fail"), st.integers(0, 20)),
    st.tuples(st.just("dividend")),
    st.tuples(st.just("transfer"), who, who, st.integers(1, 600_000)),
    st.tuples(st.just("price"), signers, st.integers(1, 20)),
)


@cache
def _template() -> tuple[Path, Ed25519PrivateKey, OwnedMarket]:
    """One owned world, written once; each example works on a copy of its file."""
    folder = Path(tempfile.mkdtemp(prefix="owned-template-"))
    atexit.register(shutil.rmtree, folder, True)
    key, market = generate_signing_key(), OwnedMarket()
    with Ledger.create(folder / "ledger.db", key, params={}) as ledger:
        owned_world(ledger, market)
    return folder / "ledger.db", key, market


def _request(ledger: Ledger, market: OwnedMarket, op: tuple[Any, ...], orders: list[str]) -> Any:
    view, kind = ledger.state.ownership, op[0]
    if kind == "order":
        model = view.model("r1")
        price = model.price_per_1000_rows if model else 1
        orders.append(f"o{len(orders)}")
        return market.order(orders[-1], "r1", op[1], op[2], price=price)
    if kind in ("deliver", "fail"):
        if not orders:
            return None
        order = view.order(orders[op[1] % len(orders)])
        if order is None:
            return None
        if kind == "fail":
            return "inference_failed", {"order_id": order.order_id, "reason": "test"}, None
        return market.delivery(order.order_id, "r1", order.user, order.rows)
    if kind == "dividend":
        return dividend_request("r1", view.fee_account("r1"), view.units("r1"))
    if kind == "transfer":
        return market.units_transfer("r1", op[1], op[2], op[3])
    return market.price_change("r1", op[2], op[1])


def _state(ledger: Ledger) -> tuple[Any, ...]:
    view = ledger.state.ownership
    return (dict(ledger.state.balances), view.units("r1"), view.fee_account("r1"), view.held_fees(),
            view.model("r1"), dict(ledger.state.totals))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operations, min_size=1, max_size=25))
def test_units_and_tokens_are_conserved(ops: list[tuple[Any, ...]]) -> None:
    template, key, market = _template()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.db"
        shutil.copy(template, path)
        orders: list[str] = []
        with Ledger.open(path, key) as ledger:
            minted = ledger.state.totals["minted"]
            for op in ops:
                try:
                    request = _request(ledger, market, op, orders)
                    if request is not None:
                        ledger.append(*request)
                        event(f"{op[0]} appended")
                except MutualMindError as err:   # a refusal; the checks below: nothing left behind
                    event(f"{op[0]} refused ({getattr(err, 'rule', type(err).__name__)})")
                view = ledger.state.ownership
                units = view.units("r1")
                assert sum(units.values()) == UNITS_PER_MODEL and min(units.values()) > 0
                recount = ledger.state.recount_supply()
                assert recount["minted"] == minted and ledger.state.supply_holds()
                assert recount["balances"] + recount["stakes"] + recount["pools"] == minted
                assert min(ledger.state.balances.values()) >= 0
                pending = [view.order(o) for o in orders]
                assert view.held_fees() == sum(o.fee for o in pending if o and o.status == "pending")
            live = _state(ledger)
        with Ledger.open(path) as reopened:
            assert _state(reopened) == live
