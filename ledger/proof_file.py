"""Proof files: inclusion of an entry (for a provider) and consistency of two heads (auditors).

`mutualmind ledger proof --index N` writes one; `mutualmind ledger check-proof` checks one
with nothing but the coordinator's verifier key: the checkpoint's signature, the entry's
hash over its content, the entry's coordinator signature and the Merkle path to the
checkpoint's root. A consistency file shows that a tree head saved earlier is a prefix
of a later one: the log only grew. JSON, hex for hashes and signatures, base64 only
inside the notes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.cosignature import Cosigner, check_quorum
from ledger.entries import Entry, entry_hash
from ledger.ledger import Ledger
from ledger.merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion
from ledger.signed_note import parse_verifier_key
from mutualmind.errors import IntegrityError, InvalidInput
from mutualmind.vocabulary.signing_keys import verify_signature

PROOF_FORMAT = "mutualmind-inclusion-proof/v1"
CONSISTENCY_FORMAT = "mutualmind-consistency-proof/v1"


def build_proof(ledger: Ledger, index: int, checkpoint_note: str | None = None) -> dict[str, Any]:
    """An inclusion proof of entry `index` against the ledger's current signed head."""
    note = checkpoint_note or ledger.checkpoint()
    size = int(note.split("\n")[1])
    entry = ledger.entry(index)
    return {
        "format": PROOF_FORMAT,
        "index": index,
        "tree_size": size,
        "entry": entry.to_json() | {"payload_json": entry.payload_json.decode("utf-8")},
        "leaf_hash": leaf_hash(entry.hash).hex(),
        "proof": [h.hex() for h in ledger.inclusion_proof(index, size)],
        "checkpoint": note,
        "verifier_key": ledger.verifier_key(),
    }


def _hex(value: Any, what: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"proof file: {what} is not hex") from None


def check_proof(document: dict[str, Any], vkey: str, *, cosigners: Sequence[Cosigner] = (),
                quorum: int = 0) -> tuple[Checkpoint, Entry]:
    """Raise IntegrityError/ProofError unless the proof file holds up under `vkey`, and
    its checkpoint carries valid cosignatures by at least `quorum` of `cosigners`
    (`ledger.cosignature.QuorumNotMet` otherwise; 0: cosignatures are not required)."""
    if not isinstance(document, dict) or document.get("format") != PROOF_FORMAT:
        raise InvalidInput(f"not a {PROOF_FORMAT} document")
    verifier = parse_verifier_key(vkey)
    note = str(document.get("checkpoint", ""))
    head = open_checkpoint(note, verifier)
    if quorum:
        check_quorum(note, cosigners, quorum)
    raw = document.get("entry")
    if not isinstance(raw, dict):
        raise InvalidInput("proof file: entry is missing")
    try:
        entry = Entry(
            int(raw["index"]), int(raw["time_ms"]), str(raw["kind"]),
            str(raw["payload_json"]).encode("utf-8"), _hex(raw["prev_hash"], "prev_hash"),
            _hex(raw["hash"], "hash"), _hex(raw["signature"], "signature"),
            _hex(raw["provider_signature"], "provider_signature") if raw.get("provider_signature") else None,
        )
    except (KeyError, ValueError, TypeError) as err:
        raise InvalidInput(f"proof file: entry field missing or malformed ({err})") from None
    if entry_hash(entry.index, entry.time_ms, entry.kind, entry.prev_hash, entry.provider_signature,
                  entry.payload_json) != entry.hash:
        raise IntegrityError("the entry's hash does not match its content")
    if not verify_signature(verifier.public_key, entry.hash, entry.signature):
        raise IntegrityError("the entry's coordinator signature does not verify")
    if document.get("tree_size") != head.size or document.get("index") != entry.index:
        raise ProofError("the proof's index or tree size disagrees with its entry or checkpoint")
    proof = [_hex(h, "proof hash") for h in document.get("proof", [])]
    verify_inclusion(entry.index, head.size, leaf_hash(entry.hash), proof, head.root)
    return head, entry


def build_consistency(ledger: Ledger, old_note: str, new_note: str) -> dict[str, Any]:
    """A proof that the tree of `old_note` is a prefix of the tree of `new_note`."""
    verifier = parse_verifier_key(ledger.verifier_key())
    old = open_checkpoint(old_note, verifier, origin=ledger.origin)
    new = open_checkpoint(new_note, verifier, origin=ledger.origin)
    if old.size > new.size:
        raise InvalidInput(f"the saved head ({old.size}) is newer than the latest one ({new.size})")
    return {
        "format": CONSISTENCY_FORMAT,
        "old_checkpoint": old_note,
        "new_checkpoint": new_note,
        "proof": [h.hex() for h in ledger.consistency_proof(old.size, new.size)],
        "verifier_key": ledger.verifier_key(),
    }


def check_consistency(document: dict[str, Any], vkey: str, *, cosigners: Sequence[Cosigner] = (),
                      quorum: int = 0) -> tuple[Checkpoint, Checkpoint]:
    """Raise unless both heads are signed by `vkey`, the proof links the old to the new,
    and the new head carries at least `quorum` valid cosignatures by `cosigners`."""
    if not isinstance(document, dict) or document.get("format") != CONSISTENCY_FORMAT:
        raise InvalidInput(f"not a {CONSISTENCY_FORMAT} document")
    verifier = parse_verifier_key(vkey)
    old = open_checkpoint(str(document.get("old_checkpoint", "")), verifier)
    new_note = str(document.get("new_checkpoint", ""))
    new = open_checkpoint(new_note, verifier, origin=old.origin)
    if quorum:
        check_quorum(new_note, cosigners, quorum)
    proof = [_hex(h, "proof hash") for h in document.get("proof", [])]
    verify_consistency(old.size, new.size, proof, old.root, new.root)
    return old, new


def load_proof(text: str) -> dict[str, Any]:
    try:
        return json.loads(text)
    except ValueError as err:
        raise InvalidInput(f"proof file is not JSON: {err}") from None
