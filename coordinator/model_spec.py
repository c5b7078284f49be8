"""Model specs as the ledger holds them: no floats, so hyper-parameters are decimal text.

The ledger's canonical JSON refuses floats (money and hashes must not depend on float
formatting). A model spec has a few real-valued hyper-parameters (learning rate, L2), so
on the ledger they are decimal strings ("0.5"), and the nodes get the spec back as JSON
with numbers. Both directions live here so they cannot drift apart.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from mutualmind.errors import InvalidInput

FLOAT_FIELDS = ("lr", "l2")


def spec_for_ledger(spec: dict[str, Any]) -> dict[str, Any]:
    """A model spec with its real-valued fields as decimal strings."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise InvalidInput(f"model spec field {key!r} must be a finite number")
            out[key] = repr(value)
        elif isinstance(value, (str, int, bool)) or value is None:
            out[key] = value
        else:
            raise InvalidInput(f"model spec field {key!r} must be a number or a string")
    return out


def spec_from_ledger(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with decimal strings turned back into numbers, for the nodes."""
    out = dict(spec)
    for key in FLOAT_FIELDS:
        if isinstance(out.get(key), str):
            try:
                out[key] = float(Decimal(out[key]))
            except InvalidOperation:
                raise InvalidInput(f"model spec field {key!r} is not a number") from None
    return out


def spec_json_for_nodes(ledger_spec: dict[str, Any]) -> str:
    return json.dumps(spec_from_ledger(ledger_spec), sort_keys=True, separators=(",", ":"))
