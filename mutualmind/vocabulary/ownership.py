"""A mutually owned model in integers: ownership units, inference fees, dividends, majority.

Pure arithmetic and the exact bytes people sign; no I/O and no ledger state. The ledger's
replay (`ledger.ownership_rules`) and the coordinator (which builds the entries) both
call these functions, so what is written and what is re-checked cannot drift apart; it
sits below the ledger for that reason (as `largest_remainder` does).

The rules (docs/ownership.md states them for people):
- Units: a settled model has exactly UNITS_PER_MODEL units. They go to the accounts that
  earned tokens by making it smarter, pro rata to the tokens each earned for this model
  (`units_for_earnings`), by the largest remainder rule over the accounts in ascending
  id order (equal remainders to the smaller id). An account that earned nothing gets none.
- Fee: an order of `rows` query rows at `price` tokens per 1,000 rows holds
  price * ceil(rows / 1000) tokens (every started thousand is paid in full).
- Dividend: the whole fee account is split over the holders with units > 0, pro rata to
  units, largest remainder in ascending id order; holders whose part is 0 are not listed.
- Majority: a price change needs signers holding more than half of the units
  (2 * signed > UNITS_PER_MODEL; exactly half is not enough).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mutualmind.errors import InvalidInput, RuleViolation
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.largest_remainder import largest_remainder_split
from mutualmind.vocabulary.payloads import AMOUNT_LIMIT, request_message

UNITS_PER_MODEL = 1_000_000
ROWS_PER_PRICE = 1000                  # the price is per 1,000 rows
ORDER_MAX_SKEW_MS = 300_000            # an order is fresh within 5 minutes of its entry's time
KIND_PRICE_PROPOSAL = "model_price_proposal"   # what owners sign (never an entry kind)
DELIVERY_DOMAIN = "mutualmind/inference-delivery/v1"


def units_for_earnings(earnings: Mapping[str, int]) -> dict[str, int]:
    """UNITS_PER_MODEL units over the accounts with positive earnings (see the module doc).

    Callable with any "tokens earned per account for model M": a round's payouts to its
    data providers today, a tournament's payouts to modelers and their data next.
    RuleViolation `nothing_earned` when nobody earned: such a model has no owners.
    """
    if any(type(v) is not int or v < 0 for v in earnings.values()):
        raise InvalidInput("earnings must be non-negative integers of tokens")
    earners = sorted(party for party, tokens in earnings.items() if tokens > 0)
    if not earners:
        raise RuleViolation("nothing_earned", "nobody earned tokens for this model, so it has "
                            "no owners and no units are issued")
    parts = largest_remainder_split(UNITS_PER_MODEL, [earnings[p] for p in earners])
    return {party: units for party, units in zip(earners, parts) if units > 0}


def inference_fee(price_per_1000_rows: int, rows: int) -> int:
    """Tokens an order of `rows` rows holds: price * ceil(rows / 1000)."""
    if type(rows) is not int or rows <= 0:
        raise InvalidInput(f"an order needs a positive whole number of rows, got {rows!r}")
    if type(price_per_1000_rows) is not int or price_per_1000_rows <= 0:
        raise RuleViolation("not_for_sale", "the model has no price; its owners set one with "
                            "a majority-signed price change first")
    fee = price_per_1000_rows * (-(-rows // ROWS_PER_PRICE))
    if fee >= AMOUNT_LIMIT:
        raise RuleViolation("amount_too_large", f"a fee of {fee} tokens is above 2^62; order fewer rows")
    return fee


def dividend_split(amount: int, units: Mapping[str, int]) -> dict[str, int]:
    """`amount` tokens over the holders pro rata to units; only positive parts, by id."""
    holders = sorted(party for party, held in units.items() if held > 0)
    if amount <= 0:
        raise RuleViolation("nothing_to_pay", "the model's fee account is empty; there is no dividend to pay")
    if not holders:
        raise RuleViolation("no_owners", "the model has no unit holders")
    parts = largest_remainder_split(amount, [units[p] for p in holders])
    return {party: part for party, part in zip(holders, parts) if part > 0}


def has_majority(signed_units: int, total_units: int = UNITS_PER_MODEL) -> bool:
    """More than half of the units (strictly)."""
    return 2 * signed_units > total_units


def as_list(parts: Mapping[str, int], value_field: str) -> list[dict[str, Any]]:
    """[{to, <value_field>}] in ascending id order: how entries list units and payments."""
    return [{"to": party, value_field: parts[party]} for party in sorted(parts)]


# ---- what people and nodes sign (clients build these; the ledger checks them) ---------

def order_payload(order_id: str, model_id: str, user: str, rows: int, price_per_1000_rows: int,
                  issued_at_ms: int, nonce: str) -> dict[str, Any]:
    """The `inference_ordered` payload the user signs, its fee computed from the price."""
    return {"order_id": order_id, "model_id": model_id, "user": user, "rows": rows,
            "fee": inference_fee(price_per_1000_rows, rows), "issued_at_ms": issued_at_ms,
            "nonce": nonce}


def units_transfer_payload(model_id: str, sender: str, to: str, units: int, nonce: str) -> dict[str, Any]:
    """The `model_units_transferred` payload the sender signs."""
    return {"model_id": model_id, "from": sender, "to": to, "units": units, "nonce": nonce}


def price_change_payload(model_id: str, price_per_1000_rows: int, nonce: str,
                         signatures: Mapping[str, bytes]) -> dict[str, Any]:
    """The `model_price_changed` payload: the proposal and each owner's signature over
    `price_proposal_message` (collected by whoever proposes), owners in id order."""
    return {"model_id": model_id, "price_per_1000_rows": price_per_1000_rows, "nonce": nonce,
            "signatures": [{"owner": o, "signature": signatures[o].hex()} for o in sorted(signatures)]}



def price_proposal_payload(model_id: str, price_per_1000_rows: int, nonce: str) -> dict[str, Any]:
    """The proposal every signing owner signs; the nonce makes it single-use per model."""
    return {"model_id": model_id, "price_per_1000_rows": price_per_1000_rows, "nonce": nonce}


def price_proposal_message(model_id: str, price_per_1000_rows: int, nonce: str) -> bytes:
    return request_message(KIND_PRICE_PROPOSAL, price_proposal_payload(model_id, price_per_1000_rows, nonce))


def delivery_message(order_id: str, model_id: str, user: str, rows: int) -> bytes:
    """The bytes each node signs when it has delivered an order's prediction shares."""
    return canonical_json({"domain": DELIVERY_DOMAIN, "model_id": model_id, "order_id": order_id,
                           "rows": rows, "user": user})
