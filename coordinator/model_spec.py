"""Model specs as the ledger holds them: no floats, so hyper-parameters are decimal text.

The ledger's canonical JSON refuses floats (money and hashes must not depend on float
formatting). A model spec has a few real-valued hyper-parameters (learning rate, L2), so
on the ledger they are decimal strings ("0.5"), and the nodes get the spec back as JSON
in that same ledger form (the worker's `parse_model_spec` reads decimal strings for
these fields), so the spec a node checks against the ledger is byte for byte the one
the sponsor signed.
"""

from __future__ import annotations

from typing import Any

from mutualmind.errors import InvalidInput


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
