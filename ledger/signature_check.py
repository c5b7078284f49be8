"""Per-entry checks that need no ledger state: hash, encoding and every signature.

`verify` runs `check_range` over slices of the file in worker processes, so both cores
share the Ed25519 verifications (about 53 µs each with libsodium here) while the
main process replays the rules in order. A check only needs the public keys, which the
verifier collects up front from the registration entries; whether a key was registered
*before* it was used is the replay's business, not this module's. Workers read the
SQLite file themselves: only integers and key bytes cross the process boundary.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

from ledger.entries import entry_hash
from ledger.signers import UNKNOWN_SIGNER, check_signatures
from ledger.store import ENTRY_COLUMNS, connect_readonly
from mutualmind.errors import MutualMindError
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.payloads import KINDS
from mutualmind.vocabulary.signing_keys import verify_raw

# Problems, in the order they are reported when several hit the same entry.
PROBLEMS = (
    "missing entry", "chain link", "hash", "payload encoding", "coordinator signature",
    "provider signature", "node attestation", "rule broken on replay", "checkpoint",
)


@dataclass(frozen=True, order=True)
class Failure:
    """The first thing wrong with a ledger: where, what kind of problem, and details."""

    index: int
    rank: int
    message: str

    @property
    def problem(self) -> str:
        return PROBLEMS[self.rank]


def failure(index: int, problem: str, message: str) -> Failure:
    return Failure(index, PROBLEMS.index(problem), message)


@dataclass(frozen=True)
class KeyRing:
    """Public keys the signature checks need (raw bytes, picklable)."""

    coordinator: bytes
    providers: dict[str, bytes]
    nodes: dict[int, bytes]


def check_entry(row: tuple[Any, ...], keys: KeyRing) -> Failure | None:
    """Everything about one stored row that does not depend on the entries before it."""
    index, time_ms, kind, payload_json, prev_hash, stored_hash, signature, provider_sig = row
    columns = (kind, payload_json, prev_hash, stored_hash, signature)
    if not all(isinstance(value, bytes) for value in columns) or not (
        provider_sig is None or isinstance(provider_sig, bytes)
    ) or type(time_ms) is not int:
        return failure(index, "hash", "a stored field has the wrong type (edited outside the ledger)")
    try:
        kind = kind.decode("utf-8")
    except UnicodeDecodeError:
        return failure(index, "hash", "the kind is not UTF-8 text")
    if kind not in KINDS:
        return failure(index, "hash", f"unknown kind {kind!r}")
    try:
        recomputed = entry_hash(index, time_ms, kind, prev_hash, provider_sig, payload_json)
    except (OverflowError, struct.error, ValueError) as err:  # e.g. a negative time
        return failure(index, "hash", f"fields cannot be hashed: {err}")
    if recomputed != stored_hash:
        return failure(index, "hash", "stored hash does not match the entry's content")
    try:
        payload = json.loads(payload_json)
        if canonical_json(payload) != payload_json:
            return failure(index, "payload encoding", "payload is not canonical JSON")
    except (ValueError, MutualMindError) as err:
        return failure(index, "payload encoding", f"payload is not canonical JSON: {err}")
    if not verify_raw(keys.coordinator, stored_hash, signature):
        return failure(index, "coordinator signature", "coordinator signature does not verify")
    try:
        # payload_json is canonical (checked above): it is what request_message builds
        found = check_signatures(kind, payload, provider_sig, keys.providers, keys.nodes,
                                 payload_json=payload_json)
    except (KeyError, TypeError, ValueError, AttributeError, MutualMindError):
        return None  # malformed payload: the replay names the broken rule
    if found is None or found.reason == UNKNOWN_SIGNER:
        return None  # unknown signers and nodes are the replay's finding
    return failure(index, found.problem, found.message)


def check_range(path: str, lo: int, hi: int, keys: KeyRing) -> Failure | None:
    """The first failure among entries with lo <= index < hi (a worker's job)."""
    conn = connect_readonly(path)
    conn.text_factory = bytes  # text columns may have been garbled into invalid UTF-8
    try:
        rows = conn.execute(
            f"SELECT {ENTRY_COLUMNS} FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx", (lo, hi)
        )
        for row in rows:
            found = check_entry(row, keys)
            if found is not None:
                return found
    finally:
        conn.close()
    return None
