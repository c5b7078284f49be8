"""A mutually owned model's ledger rules: units, inference orders, fees, dividends, price.

`LedgerState` takes these `_apply_<kind>` methods from `OwnershipRules`, so they run
under the same discipline as the round rules: checked before any change, journaled for
a group commit's rollback, the same code on append, open and verify, supply conserved
after every entry. The arithmetic is `mutualmind.vocabulary.ownership` (the coordinator
builds entries with the same functions); docs/ownership.md states the rules for people.

Where tokens sit: an ordered job's fee is held (`held_fees`, order id -> tokens) until
the nodes attest its delivery, which moves it to the model's fee account
(`fee_accounts`, model id -> tokens), or until it fails, which refunds the user. A
dividend empties the fee account into the holders' balances. Both places count in the
supply's "pools" total. Units are per-model balances (`units`, model id -> party ->
units); every model has exactly UNITS_PER_MODEL of them from its issue on, and only a
signed transfer moves them, so replay conserves units by construction.

The rules, kind by kind:
- model_units_issued (coordinator): the source is settled (a round CLOSED, or a
  tournament CLOSED, not ABORTED), no model was issued for it yet, the model id is the
  source's id and unused; holders = `units_for_earnings` of what the source paid each
  account, the source's sponsor excepted (its refund or self-payment is no earning): a
  round's payouts, a tournament's model_payout entries (both levels: each modeler's kept
  share and its datasets' providers). Rounds and tournaments share one id namespace
  (round_opened and tournament_opened refuse the other kind's id, `id_taken`), so a
  model id can never clash and a settlement's units issue cannot fail on one. The price
  is the round_opened's optional inference_price_per_1000_rows (a tournament's metamodel
  and a round without one: not for sale until a majority-signed price change).
- model_units_transferred (signed by `from`, nonce): both registered and different;
  units <= the sender's units of the model; at most MAX_MODEL_HOLDERS holders after.
- inference_ordered (signed by the user, nonce): the order id is unused, the model is
  for sale, fee = `inference_fee(price, rows)` at this point of the replay, fee <= the
  user's balance, issued_at_ms within ORDER_MAX_SKEW_MS of the entry's time; fee held.
- inference_delivered (every node attests `delivery_message`): the order is pending and
  the payload repeats its model, user and rows; fee -> the model's fee account.
- inference_failed (coordinator): the order is pending; fee -> the user.
- dividend_paid (coordinator): amount = the whole fee account (> 0) and payments =
  `dividend_split(amount, units)`; fee account -> holders.
- model_price_changed (owners sign `price_proposal_message`): every signer is
  registered and holds units, together more than half (`has_majority`) at this point
  of the replay; the proposal's nonce is single-use per model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ledger.state_core import RoundRecord, StateCore
from mutualmind.errors import IntegrityError, RuleViolation
from mutualmind.vocabulary.ownership import (
    ORDER_MAX_SKEW_MS,
    UNITS_PER_MODEL,
    as_list,
    dividend_split,
    has_majority,
    inference_fee,
    units_for_earnings,
)
from mutualmind.vocabulary.payloads import MAX_MODEL_HOLDERS
from mutualmind.vocabulary.states import RoundStatus

PRICE_KEY = "inference_price_per_1000_rows"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class OwnedModel:
    """An owned model; replaced, never mutated. price 0: not for sale."""

    model_id: str
    source_kind: str
    source_id: str
    price_per_1000_rows: int


@dataclass(frozen=True)
class OrderRecord:
    """An inference order: pending -> delivered or failed."""

    order_id: str
    model_id: str
    user: str
    rows: int
    fee: int
    status: str = PENDING


def source_key(source_kind: str, source_id: str) -> str:
    """The key of a model's source ('/' is in no id, so keys never collide)."""
    return f"{source_kind}/{source_id}"


class OwnershipRules(StateCore):
    """The ownership kinds' rules; mixed into `LedgerState` (see the module docstring)."""

    def init_ownership(self) -> None:
        self.owned_models: dict[str, OwnedModel] = {}
        self.units: dict[str, dict[str, int]] = {}         # model id -> party -> units
        self.fee_accounts: dict[str, int] = {}             # model id -> fees not yet paid out
        self.orders: dict[str, OrderRecord] = {}
        self.held_fees: dict[str, int] = {}                # order id -> fee held while pending
        self.issued_sources: dict[str, str] = {}           # source key -> model id
        self.round_prices: dict[str, int] = {}             # round id -> price signed at open

    def ownership_pool_total(self) -> int:
        """Tokens held for orders and in fee accounts (part of the supply's "pools")."""
        return sum(self.held_fees.values()) + sum(self.fee_accounts.values())

    # -- hooks the round rules call ----------------------------------------------------

    def _note_round_opened(self, p: dict[str, Any]) -> None:
        if PRICE_KEY in p:
            self._put(self.round_prices, p["round_id"], p[PRICE_KEY])

    def _note_round_payout(self, record: RoundRecord, party: str, amount: int) -> None:
        """A payout to anyone but the round's sponsor is an earning for its model."""
        if party != record.sponsor:
            self._note_earning(source_key("round", record.round_id), party, amount)

    # -- helpers -------------------------------------------------------------------

    def _model(self, model_id: str) -> OwnedModel:
        record = self.owned_models.get(model_id)
        if record is None:
            raise RuleViolation("unknown_model", f"no model {model_id!r} has been issued units")
        return record

    def _order(self, order_id: str) -> OrderRecord:
        record = self.orders.get(order_id)
        if record is None:
            raise RuleViolation("unknown_order", f"no inference order {order_id!r}")
        if record.status != PENDING:
            raise RuleViolation("order_state", f"order {order_id!r} is already {record.status}")
        return record

    def units_of(self, model_id: str, party: str) -> int:
        return self.units.get(model_id, {}).get(party, 0)

    # -- units -----------------------------------------------------------------------

    def _apply_model_units_issued(self, index: int, p: dict[str, Any]) -> None:
        model_id, kind, source = p["model_id"], p["source_kind"], p["source_id"]
        if model_id in self.owned_models:
            raise RuleViolation("model_exists", f"model {model_id!r} was already issued units")
        key = source_key(kind, source)
        if key in self.issued_sources:
            raise RuleViolation("units_issued", f"{kind} {source!r} already issued model "
                                f"{self.issued_sources[key]!r}")
        if model_id != source:
            raise RuleViolation("model_id", f"a model is named by its source's id ({source!r}), "
                                f"not {model_id!r}")
        settled = self._source_settled(kind, source)
        if not settled:
            raise RuleViolation("source_not_settled", f"{kind} {source!r} is not closed; units "
                                f"are issued from a settled {kind}'s payouts")
        expected = as_list(units_for_earnings(self.earnings.get(key, {})), "units")
        if p["holders"] != expected:
            raise RuleViolation("units_mismatch", f"{kind} {source!r}'s payouts give the holders "
                                f"{expected}, the entry names {p['holders']}")
        held: dict[str, int] = {}
        self._put(self.units, model_id, held)
        for item in expected:
            self._put(held, item["to"], item["units"])
        self._put(self.issued_sources, key, model_id)
        self._put(self.fee_accounts, model_id, 0)
        self._put(self.owned_models, model_id, OwnedModel(model_id, kind, source,
                                                      self.round_prices.get(source, 0)))

    def _source_settled(self, kind: str, source: str) -> bool:
        """A round closed with its result, or a tournament closed with its settlement
        (an aborted one has no metamodel: CLOSED only)."""
        if kind == "tournament":
            return self.tournament_closed(source)
        record = self.rounds.get(source)
        return record is not None and record.status == RoundStatus.CLOSED

    def _apply_model_units_transferred(self, index: int, p: dict[str, Any]) -> None:
        self._model(p["model_id"])
        sender, to, units = p["from"], p["to"], p["units"]
        self._provider(sender, "sender")
        self._provider(to, "recipient")
        if sender == to:
            raise RuleViolation("self_transfer", "a units transfer needs two different parties")
        held = self.units[p["model_id"]]
        have = held.get(sender, 0)
        if units > have:
            raise RuleViolation("insufficient_units", f"{sender!r} holds {have} units of "
                                f"{p['model_id']!r}, the transfer needs {units}")
        if held.get(to, 0) == 0 and units < have and \
                sum(1 for v in held.values() if v > 0) >= MAX_MODEL_HOLDERS:
            raise RuleViolation("too_many_holders", f"a model has at most {MAX_MODEL_HOLDERS} holders")
        self._nonce(index, sender, p["nonce"])
        self._put(held, sender, have - units)
        self._put(held, to, held.get(to, 0) + units)

    # -- inference orders --------------------------------------------------------------

    def _apply_inference_ordered(self, index: int, p: dict[str, Any]) -> None:
        order_id, user = p["order_id"], p["user"]
        self._provider(user, "user")
        if order_id in self.orders:
            raise RuleViolation("order_exists", f"order {order_id!r} exists; use a new order id")
        model = self._model(p["model_id"])
        fee = inference_fee(model.price_per_1000_rows, p["rows"])
        if p["fee"] != fee:
            raise RuleViolation("fee_mismatch", f"{p['rows']} rows at {model.price_per_1000_rows} "
                                f"per 1,000 rows cost {fee}, the order says {p['fee']}")
        now = self.entry_time_ms
        if now is None:
            raise IntegrityError("an inference order is judged against its entry's time; apply it with one")
        if abs(now - p["issued_at_ms"]) > ORDER_MAX_SKEW_MS:
            raise RuleViolation("stale_order", f"the order was signed at {p['issued_at_ms']}, "
                                f"more than {ORDER_MAX_SKEW_MS // 1000} s from {now}; sign it again")
        self._nonce(index, user, p["nonce"])
        self._spend(user, fee, "this order's fee")
        self._add(self.held_fees, order_id, fee, "pools")
        self._put(self.orders, order_id, OrderRecord(order_id, model.model_id, user, p["rows"], fee))

    def _apply_inference_delivered(self, index: int, p: dict[str, Any]) -> None:
        order = self._order(p["order_id"])
        claimed = (p["model_id"], p["user"], p["rows"])
        if claimed != (order.model_id, order.user, order.rows):
            raise RuleViolation("order_mismatch", f"the delivery names {claimed}, the order "
                                f"{(order.model_id, order.user, order.rows)}")
        attested = [a["node_index"] for a in p["attestations"]]
        if sorted(attested) != sorted(self.nodes) or len(set(attested)) != len(attested):
            raise RuleViolation("attestations", f"delivery attested by nodes {sorted(attested)}, "
                                f"need each of {sorted(self.nodes)} once")
        self._add(self.held_fees, order.order_id, -order.fee, "pools")
        self._add(self.fee_accounts, order.model_id, order.fee, "pools")
        self._put(self.orders, order.order_id, replace(order, status=DELIVERED))

    def _apply_inference_failed(self, index: int, p: dict[str, Any]) -> None:
        order = self._order(p["order_id"])
        self._add(self.held_fees, order.order_id, -order.fee, "pools")
        self._add(self.balances, order.user, order.fee, "balances")
        self._put(self.orders, order.order_id, replace(order, status=FAILED))

    # -- dividends and governance ------------------------------------------------------

    def _apply_dividend_paid(self, index: int, p: dict[str, Any]) -> None:
        model_id = self._model(p["model_id"]).model_id
        account = self.fee_accounts[model_id]
        if account == 0:
            raise RuleViolation("nothing_to_pay", f"model {model_id!r}'s fee account is empty; "
                                "there is no dividend to pay")
        if p["amount"] != account:
            raise RuleViolation("dividend_amount", f"a dividend pays the whole fee account "
                                f"({account}), the entry says {p['amount']}")
        expected = as_list(dividend_split(account, self.units[model_id]), "amount")
        if p["payments"] != expected:
            raise RuleViolation("dividend_mismatch", f"units give the payments {expected}, "
                                f"the entry names {p['payments']}")
        self._add(self.fee_accounts, model_id, -account, "pools")
        for item in expected:
            self._add(self.balances, item["to"], item["amount"], "balances")

    def _apply_model_price_changed(self, index: int, p: dict[str, Any]) -> None:
        model = self._model(p["model_id"])
        held = self.units[model.model_id]
        signed = 0
        for item in p["signatures"]:
            owner = item["owner"]
            self._provider(owner, "signing owner")
            if held.get(owner, 0) <= 0:
                raise RuleViolation("not_owner", f"{owner!r} holds no units of {model.model_id!r}")
            signed += held[owner]
        if not has_majority(signed):
            raise RuleViolation("no_majority", f"the signers hold {signed} of {UNITS_PER_MODEL} "
                                f"units of {model.model_id!r}; a price change needs more than half")
        self._nonce(index, f"model/{model.model_id}", p["nonce"])
        self._put(self.owned_models, model.model_id, replace(model, price_per_1000_rows=p["price_per_1000_rows"]))



class OwnershipView:
    """The ownership state, read-only (`Ledger.state.ownership`): frozen records and
    plain copies, so a reader can never change the ledger's state."""

    def __init__(self, state: OwnershipRules) -> None:
        self._state = state

    def model(self, model_id: str) -> OwnedModel | None:
        return self._state.owned_models.get(model_id)

    def model_ids(self) -> list[str]:
        return sorted(self._state.owned_models)

    def units(self, model_id: str) -> dict[str, int]:
        """Holders with units > 0 of `model_id` (empty for an unknown model)."""
        return {p: u for p, u in self._state.units.get(model_id, {}).items() if u > 0}

    def fee_account(self, model_id: str) -> int:
        return self._state.fee_accounts.get(model_id, 0)

    def order(self, order_id: str) -> OrderRecord | None:
        return self._state.orders.get(order_id)

    def held_fees(self) -> int:
        return sum(self._state.held_fees.values())

    def pending_orders(self) -> list[OrderRecord]:
        """Orders whose fee is still held (neither delivered nor failed), by id."""
        return [o for _, o in sorted(self._state.orders.items()) if o.status == PENDING]
