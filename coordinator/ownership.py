"""The coordinator's side of a mutually owned model: the entries it writes.

The arithmetic is `mutualmind.vocabulary.ownership` (the ledger's replay runs the same
functions); this module turns a settlement or a model's state into append requests.
A round's model is named by its round id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger import Entry, Ledger
from mutualmind.errors import NotFound
from mutualmind.vocabulary.ownership import as_list, dividend_split, units_for_earnings
from mutualmind.vocabulary.states import EntryKind

Request = tuple[str, dict[str, Any], "bytes | None"]


def round_earnings(payouts: Mapping[str, int], sponsor: str) -> dict[str, int]:
    """What each account earned for a round's model: its payouts, the sponsor's excepted
    (a refund, or a sponsor paying itself from its own pool, earns no ownership)."""
    return {party: amount for party, amount in payouts.items() if party != sponsor and amount > 0}


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
