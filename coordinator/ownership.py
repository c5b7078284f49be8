"""The coordinator's side of a mutually owned model: the entries it writes.

The arithmetic is `mutualmind.vocabulary.ownership` (the ledger's replay runs the same
functions); this module turns a settlement or a model's state into append requests.
A model is named by its source's id: a round's model by the round id, a tournament's
metamodel by the tournament id (the ledger keeps the two kinds' ids apart).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ledger import Entry, Ledger
from mutualmind.errors import InvalidInput, NotFound, RuleViolation
from mutualmind.vocabulary.ownership import (
    as_list,
    dividend_split,
    price_change_payload,
    units_for_earnings,
    units_transfer_payload,
)
from mutualmind.vocabulary.states import EntryKind

Request = tuple[str, dict[str, Any], "bytes | None"]


def round_earnings(payouts: Mapping[str, int], sponsor: str) -> dict[str, int]:
    """What each account earned for a round's model: its payouts, the sponsor's excepted
    (a refund, or a sponsor paying itself from its own pool, earns no ownership)."""
    return {party: amount for party, amount in payouts.items() if party != sponsor and amount > 0}


def tournament_earnings(plan: Iterable[tuple[str, Mapping[str, Any]]], sponsor: str) -> dict[str, int]:
    """What each account earned for a tournament's metamodel: the settlement's model_payout
    entries (both levels: each modeler's kept share, its datasets' providers), the
    sponsor's excepted, as the ledger's `_apply_model_payout` notes them."""
    earned: dict[str, int] = {}
    for kind, payload in plan:
        if kind == EntryKind.MODEL_PAYOUT and payload["to"] != sponsor:
            earned[payload["to"]] = earned.get(payload["to"], 0) + int(payload["amount"])
    return earned


def units_issued_request(source_kind: str, source_id: str, earnings: Mapping[str, int],
                         model_id: str | None = None) -> Request | None:
    """The model_units_issued request for a settled source, None when nobody earned
    (a model without owners is not issued). Rounds and tournaments both call this."""
    if not any(amount > 0 for amount in earnings.values()):
        return None
    holders = as_list(units_for_earnings(earnings), "units")
    return (EntryKind.MODEL_UNITS_ISSUED, {"model_id": model_id or source_id, "source_kind": source_kind,
                                           "source_id": source_id, "holders": holders}, None)


def dividend_request(model_id: str, fee_account: int, units: Mapping[str, int]) -> Request:
    """The dividend_paid request that empties `fee_account` to the holders of `units`
    (RuleViolation nothing_to_pay when it is empty)."""
    payments = as_list(dividend_split(fee_account, units), "amount")
    return (EntryKind.DIVIDEND_PAID, {"model_id": model_id, "amount": fee_account,
                                      "payments": payments}, None)


def pay_dividend(ledger: Ledger, model_id: str) -> Entry:
    """Pay `model_id`'s whole fee account to its holders now (on demand).

    NotFound for an unknown model, RuleViolation nothing_to_pay for an empty account. An
    order delivered between the read and the append makes the ledger refuse the entry
    (dividend_amount) and nothing is written; calling again pays the new account.
    """
    view = ledger.state.ownership
    if view.model(model_id) is None:
        raise NotFound(f"no model {model_id!r} has been issued units")
    return ledger.append(*dividend_request(model_id, view.fee_account(model_id), view.units(model_id)))


def pay_all_dividends(ledger: Ledger) -> list[Entry]:
    """Pay every model's whole fee account to its holders in one group commit (the
    settlement period's payout; `coordinator.server` calls it every `dividend_period_s`).

    The requests are built while the ledger appends them: `Ledger.append_many` consumes
    this generator under its writer lock, so each amount is the fee account at that very
    point and an order delivered meanwhile can neither make it stale nor be half paid.
    Returns the dividend_paid entries, none when no account holds a token (nothing is
    written then). A model without holders with units > 0 cannot exist (units are
    conserved from the issue on), so one model cannot block the others' payout.
    """
    view = ledger.state.ownership
    if not any(view.fee_account(m) > 0 for m in view.model_ids()):
        return []

    def requests() -> Iterator[Request]:
        for model_id in view.model_ids():
            amount = view.fee_account(model_id)
            if amount > 0:
                yield dividend_request(model_id, amount, view.units(model_id))

    try:
        return ledger.append_many(requests())
    except InvalidInput:
        # only "an append batch needs at least one entry": an on-demand payout emptied the
        # accounts between the look above and the lock
        if any(view.fee_account(m) > 0 for m in view.model_ids()):
            raise
        return []


# ---- what the Market API asks (coordinator.market_servicer turns these into protobuf) ----

@dataclass(frozen=True)
class ModelSummary:
    """A model as owners and users see it: holders by id, price, fees not yet paid out."""

    model_id: str
    source_kind: str
    source_id: str
    price_per_1000_rows: int
    fee_account: int
    holders: dict[str, int]


def model_summary(ledger: Ledger, model_id: str) -> ModelSummary:
    """NotFound (saying how to find the ids) for a model that has no units."""
    view = ledger.state.ownership
    model = view.model(model_id)
    if model is None:
        raise NotFound(f"no model {model_id!r} has been issued units; a round's model is named "
                       "by its round id, a tournament's metamodel by its tournament id, and "
                       "each exists once its round or tournament settled with earners "
                       "(mutualmind owner units --key K lists yours)")
    return ModelSummary(model.model_id, model.source_kind, model.source_id,
                        model.price_per_1000_rows, view.fee_account(model_id),
                        dict(sorted(view.units(model_id).items())))


def account_units(ledger: Ledger, account: str) -> dict[str, int]:
    """The units `account` holds, model id -> units (> 0), by model id. NotFound for an
    account that is not registered (a typo would otherwise look like "no units")."""
    if account not in ledger.state.providers:
        raise NotFound(f"no account {account!r} is registered; check the id "
                       "(mutualmind provider register makes one)")
    view = ledger.state.ownership
    held = {m: view.units(m).get(account, 0) for m in view.model_ids()}
    return {m: u for m, u in held.items() if u > 0}


def transfer_units(ledger: Ledger, model_id: str, sender: str, to: str, units: int,
                   nonce: str, signature: bytes) -> Entry:
    """Record the sender-signed transfer; the ledger checks the signature, the balance of
    units (insufficient_units), the nonce and the parties, and writes nothing otherwise."""
    if type(units) is not int or units <= 0:
        raise InvalidInput(f"a transfer moves a positive whole number of units, got {units}")
    model_summary(ledger, model_id)  # NotFound with a hint before the ledger's rule name
    with _hint("insufficient_units", "transfer at most what you hold "
               f"(mutualmind owner units --model {model_id})"):
        return ledger.append(EntryKind.MODEL_UNITS_TRANSFERRED,
                             units_transfer_payload(model_id, sender, to, units, nonce),
                             provider_signature=signature)


def change_price(ledger: Ledger, model_id: str, price_per_1000_rows: int, nonce: str,
                 signatures: Mapping[str, bytes]) -> tuple[Entry, int]:
    """Record a price change signed offline by owners; returns the entry and the units
    its signers hold. The ledger checks each signature and the majority (no_majority,
    not_owner) at this point of the replay; nothing is written when any fails."""
    summary = model_summary(ledger, model_id)
    if not signatures:
        raise InvalidInput("the proposal carries no owner signature; owners sign it with "
                           "`mutualmind owner sign PROPOSAL --key K` first")
    if price_per_1000_rows <= 0:
        raise InvalidInput(f"the price must be a positive number of tokens per 1,000 rows, "
                           f"got {price_per_1000_rows}")
    with _hint("no_majority", "gather more owners' signatures on the proposal "
               "(mutualmind owner sign PROPOSAL --key K) and submit it again"):
        entry = ledger.append(EntryKind.MODEL_PRICE_CHANGED,
                              price_change_payload(model_id, price_per_1000_rows, nonce, signatures))
    return entry, sum(summary.holders.get(owner, 0) for owner in signatures)


@contextmanager
def _hint(rule: str, what_to_do: str) -> Iterator[None]:
    """Add what to do to the ledger's refusal `rule` (its message says what is wrong)."""
    try:
        yield
    except RuleViolation as err:
        if err.rule != rule:
            raise
        text = err.message.removeprefix(f"{rule}: ")
        raise RuleViolation(rule, f"{text}; {what_to_do}") from None
