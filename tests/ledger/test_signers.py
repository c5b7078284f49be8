"""Who signs what has one owner (`ledger.signers`); append and verify both go through it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger, verify_ledger
from ledger.entries import entry_hash
from ledger.signers import (
    INVALID,
    MISSING,
    NODE_ATTESTATION,
    PROVIDER_SIGNATURE,
    UNEXPECTED,
    UNKNOWN_SIGNER,
    check_signatures,
)
from mutualmind.errors import InvalidInput, PermissionDenied
from mutualmind.vocabulary.attestation import attestation_message
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.payloads import request_message
from mutualmind.vocabulary.signing_keys import generate_signing_key, public_key_bytes
from mutualmind.vocabulary.states import EntryKind

ALICE = generate_signing_key()
NODE = generate_signing_key()
PROVIDERS = {"alice": public_key_bytes(ALICE)}
NODES = {0: public_key_bytes(NODE)}
TRANSFER = {"from": "alice", "to": "bob", "amount": 5, "nonce": "n" * 16}


def _reason(kind: str, payload: dict, signature: bytes | None) -> tuple[str, str] | None:
    found = check_signatures(kind, payload, signature, PROVIDERS, NODES)
    return None if found is None else (found.problem, found.reason)


def test_each_kind_needs_exactly_its_signers() -> None:
    good = ALICE.sign(request_message("transfer", TRANSFER))
    assert _reason("transfer", TRANSFER, good) is None
    assert _reason("transfer", TRANSFER, None) == (PROVIDER_SIGNATURE, MISSING)
    assert _reason("transfer", TRANSFER, generate_signing_key().sign(request_message("transfer", TRANSFER))) == (
        PROVIDER_SIGNATURE, INVALID)
    # a signed transfer is not a signed stake: the kind is part of the message
    assert _reason("transfer", TRANSFER, ALICE.sign(request_message("stake", TRANSFER))) == (PROVIDER_SIGNATURE, INVALID)
    assert _reason("transfer", {**TRANSFER, "from": "carol"}, good) == (PROVIDER_SIGNATURE, UNKNOWN_SIGNER)
    assert _reason("mint", {"to": "alice", "amount": 1, "memo": ""}, good) == (PROVIDER_SIGNATURE, UNEXPECTED)
    assert _reason("mint", {"to": "alice", "amount": 1, "memo": ""}, None) is None


def test_a_registration_is_signed_by_the_key_it_registers() -> None:
    newcomer = generate_signing_key()
    payload = {"provider_id": "dave", "name": "Dave", "public_key": public_key_bytes(newcomer).hex(), "nonce": "n" * 16}
    assert _reason("provider_registered", payload, newcomer.sign(request_message("provider_registered", payload))) is None
    assert _reason("provider_registered", payload, ALICE.sign(request_message("provider_registered", payload))) == (
        PROVIDER_SIGNATURE, INVALID)


def test_a_forged_attestation_is_named_even_beside_an_unknown_node() -> None:
    result = {"round_id": "r1", "job_digest": "ab" * 32, "metrics_micro": [1, 2]}
    good = NODE.sign(attestation_message("r1", "ab" * 32, [1, 2])).hex()
    bad = generate_signing_key().sign(attestation_message("r1", "ab" * 32, [1, 2])).hex()

    def attest(*pairs: tuple[int, str]) -> dict:
        return {**result, "attestations": [{"node_index": i, "signature": s} for i, s in pairs]}

    assert _reason("round_result", attest((0, good)), None) is None
    assert _reason("round_result", attest((7, good)), None) == (NODE_ATTESTATION, UNKNOWN_SIGNER)
    assert _reason("round_result", attest((7, good), (0, bad)), None) == (NODE_ATTESTATION, INVALID)


def test_append_and_verify_refuse_the_same_forgery_with_the_same_words(
        tmp_path: Path, coordinator_key: Ed25519PrivateKey) -> None:
    path = tmp_path / "ledger.db"
    ledger = Ledger.create(path, coordinator_key)
    for name in ("alice", "bob"):
        key = generate_signing_key()
        reg = {"provider_id": name, "name": name, "public_key": public_key_bytes(key).hex(), "nonce": "r" * 16}
        ledger.append(EntryKind.PROVIDER_REGISTERED, reg,
                      provider_signature=key.sign(request_message("provider_registered", reg)))
    ledger.append(EntryKind.MINT, {"to": "alice", "amount": 10, "memo": ""})
    payload = TRANSFER
    forged = generate_signing_key().sign(request_message("transfer", payload))
    with pytest.raises(PermissionDenied) as refused:
        ledger.append("transfer", payload, provider_signature=forged)
    with pytest.raises(InvalidInput, match="carries no provider signature"):
        ledger.append("mint", {"to": "alice", "amount": 1, "memo": ""}, provider_signature=forged)
    ledger.close()

    # the same entry written behind the ledger's back is found by verify, in the same words
    conn = sqlite3.connect(path, isolation_level=None)
    index, time_ms, prev = conn.execute("SELECT idx, time_ms, hash FROM entries ORDER BY idx DESC LIMIT 1").fetchone()
    index += 1
    body = canonical_json(payload)
    digest = entry_hash(index, time_ms, "transfer", prev, forged, body)
    conn.execute("INSERT INTO entries VALUES (?,?,?,?,?,?,?,?)",
                 (index, time_ms, "transfer", body, prev, digest, coordinator_key.sign(digest), forged))
    conn.close()
    report = verify_ledger(path)
    assert (report.first_bad_index, report.problem) == (index, PROVIDER_SIGNATURE)
    assert report.error is not None and report.error in str(refused.value)
