"""How a ledger entry is stored and hashed.

The kinds, their payload fields and who signs each live in `mutualmind.vocabulary.payloads`
(every role builds or checks those requests); this module is the ledger's own part: the
stored entry and its hash.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from typing import Any

ENTRY_DOMAIN = b"mutualmind/entry/v1\n"
GENESIS_PREV_HASH = bytes(32)


def entry_hash(
    index: int, time_ms: int, kind: str, prev_hash: bytes, provider_signature: bytes | None,
    payload_json: bytes,
) -> bytes:
    """SHA-256 over every stored field but the hash and coordinator signature themselves."""
    signature = provider_signature or b""
    return hashlib.sha256(
        b"".join(
            (
                ENTRY_DOMAIN,
                struct.pack(">QQ", index, time_ms),
                kind.encode("utf-8"),
                b"\n",
                prev_hash,
                bytes((len(signature),)),
                signature,
                payload_json,
            )
        )
    ).digest()


@dataclass(frozen=True)
class Entry:
    """One stored ledger entry, exactly as the database holds it."""

    index: int
    time_ms: int
    kind: str
    payload_json: bytes
    prev_hash: bytes
    hash: bytes
    signature: bytes
    provider_signature: bytes | None = None

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.payload_json)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view (hex for bytes) for `ledger show --json` and APIs."""
        return {
            "index": self.index,
            "time_ms": self.time_ms,
            "kind": self.kind,
            "payload": self.payload,
            "prev_hash": self.prev_hash.hex(),
            "hash": self.hash.hex(),
            "signature": self.signature.hex(),
            "provider_signature": (
                self.provider_signature.hex() if self.provider_signature else None
            ),
        }
