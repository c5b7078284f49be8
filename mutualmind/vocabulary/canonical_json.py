"""Canonical JSON: the one byte encoding of a payload that hashes and signatures cover.

Two parties that build the same payload must produce the same bytes, or a provider's
signature made on its own machine would not match what the ledger stores. So: sorted keys,
no insignificant whitespace, UTF-8 (not ASCII escapes), and only JSON types whose encoding
is unambiguous. Floats are refused outright: money and metrics are integers (token units,
millionths), and a float's decimal rendering differs between languages.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from mutualmind.errors import InvalidInput

# Integers beyond a signed 64-bit range lose precision in other JSON readers.
INT_LIMIT = 2**63

_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def check_json_value(value: Any, path: str = "$") -> None:
    """Raise InvalidInput unless `value` holds only dict/list/str/int/bool/None.

    A `StrEnum` member (`mutualmind.vocabulary.states`) counts as the string it is: the
    encoder writes its value, so {"kind": EntryKind.STAKE} and {"kind": "stake"} give
    the same bytes. Other str subclasses are still refused (their encoding is not ours).
    """
    kind = type(value)
    if kind is str or value is None or kind is bool or isinstance(value, StrEnum):
        return
    if kind is int:
        if not -INT_LIMIT < value < INT_LIMIT:
            raise InvalidInput(f"{path}: integer {value} is outside the signed 64-bit range")
        return
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str and not isinstance(key, StrEnum):
                raise InvalidInput(f"{path}: object key {key!r} is not a string")
            check_json_value(item, f"{path}.{key}")
        return
    if kind is list or kind is tuple:
        for pos, item in enumerate(value):
            check_json_value(item, f"{path}[{pos}]")
        return
    if kind is float:
        raise InvalidInput(
            f"{path}: floats are not allowed in ledger payloads ({value!r}); "
            "use integers (token units, or millionths for metrics)"
        )
    raise InvalidInput(f"{path}: a {kind.__name__} cannot be stored in a ledger payload")


def canonical_json(value: Any) -> bytes:
    """Encode `value` as canonical JSON bytes; InvalidInput on floats or foreign types."""
    check_json_value(value)
    try:
        return _ENCODER.encode(value).encode("utf-8")
    except UnicodeEncodeError as err:
        raise InvalidInput(f"payload text is not valid Unicode: {err.reason}") from None


def parse_canonical(data: bytes) -> Any:
    """Parse bytes that must already be canonical JSON; InvalidInput if they are not."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidInput(f"payload is not valid JSON: {err}") from None
    if canonical_json(value) != data:
        raise InvalidInput("payload is JSON but not in canonical form (sorted keys, no spaces)")
    return value
