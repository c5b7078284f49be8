"""Proof files checked offline: what a provider holds proves its entry, and nothing else."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger
from ledger.merkle import ProofError
from ledger.proof_file import (
    build_consistency,
    build_proof,
    check_consistency,
    check_proof,
)
from mutualmind.errors import IntegrityError, InvalidInput


@pytest.fixture
def proof_and_key(filled_ledger: Path, coordinator_key: Ed25519PrivateKey):  # type: ignore[no-untyped-def]
    ledger = Ledger.open(filled_ledger, coordinator_key)
    try:
        index = next(e.index for e in ledger.entries(kind="payout", limit=1))
        yield build_proof(ledger, index), ledger.verifier_key()
    finally:
        ledger.close()


def test_valid_proof_checks_out(proof_and_key) -> None:  # type: ignore[no-untyped-def]
    document, vkey = proof_and_key
    head, entry = check_proof(document, vkey)
    assert entry.kind == "payout" and head.size == document["tree_size"] > entry.index


@pytest.mark.parametrize("edit, error", [
    (lambda d: d["entry"].update(payload_json=d["entry"]["payload_json"].replace('"amount":', '"amount":1')), IntegrityError),
    (lambda d: d["entry"].update(signature="00" * 64), IntegrityError),
    (lambda d: d.update(index=d["index"] + 1), ProofError),
    (lambda d: d["proof"].pop(), ProofError),
    (lambda d: d.update(checkpoint=d["checkpoint"].replace("\n\n", "\n")), IntegrityError),
    (lambda d: d.update(format="something-else"), InvalidInput),
    (lambda d: d["entry"].update(prev_hash="zz"), InvalidInput),
])
def test_edited_proofs_are_rejected(proof_and_key, edit, error) -> None:  # type: ignore[no-untyped-def]
    document, vkey = proof_and_key
    edited = copy.deepcopy(document)
    edit(edited)
    with pytest.raises(error):
        check_proof(edited, vkey)


def test_consistency_between_two_heads(filled_ledger: Path, coordinator_key: Ed25519PrivateKey) -> None:
    ledger = Ledger.open(filled_ledger, coordinator_key)
    try:
        old = ledger.checkpoints()[0][1]
        ledger.append("mint", {"to": "provider-0", "amount": 1, "memo": ""})
        new = ledger.checkpoint()
        document = build_consistency(ledger, old, new)
        first, last = check_consistency(document, ledger.verifier_key())
        assert first.size < last.size == ledger.size
        with pytest.raises(InvalidInput):
            build_consistency(ledger, new, old)
        swapped = dict(document, old_checkpoint=new, new_checkpoint=old)
        with pytest.raises(ProofError):
            check_consistency(swapped, ledger.verifier_key())
    finally:
        ledger.close()
