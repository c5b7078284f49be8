"""C2SP signed notes and tlog checkpoints: the shared known-answer cases and our own heads."""

from __future__ import annotations

import json

import pytest

from ledger.checkpoint import Checkpoint, format_checkpoint, open_checkpoint, open_note
from ledger.signed_note import (
    NoteError,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
    verifier_key_string,
)
from mutualmind.vocabulary.signing_keys import generate_signing_key
from tests.shared_testdata import SHARED_TESTDATA, needs_testdata, require

VECTORS = SHARED_TESTDATA / "signed-note" / "vectors.json"
needs_vectors = needs_testdata(VECTORS)


def _vectors() -> dict:
    return json.loads(VECTORS.read_text()) if VECTORS.is_file() else {"cases": [], "signer_keys": {}}


@needs_vectors
@pytest.mark.parametrize("case", _vectors()["cases"], ids=lambda c: c["name"])
def test_signed_note_vector(case: dict) -> None:
    if case["wantErr"]:
        with pytest.raises(NoteError):
            open_note(case["note"], case["vkey"])
        return
    assert open_note(case["note"], case["vkey"]) == case["want_text"]
    signer_name = parse_verifier_key(case["vkey"]).name
    skey = _vectors()["signer_keys"].get(signer_name)
    if skey is not None:  # Ed25519 is deterministic: signing must reproduce the published line
        name, key = parse_signer_key(skey)
        assert verifier_key_string(name, key) == case["vkey"]
        signed = sign_note(case["want_text"], name, key)
        own_line = signed[len(case["want_text"]) + 1 :]
        assert own_line in case["note"][len(case["want_text"]) + 1 :].splitlines(keepends=True)


@needs_vectors
def test_vectors_include_a_reproducible_signature() -> None:
    require(VECTORS)
    assert _vectors()["signer_keys"], "the vector file should carry at least one signer key"


def test_checkpoint_round_trip_and_wrong_key() -> None:
    key = generate_signing_key()
    head = Checkpoint("example.org/log", 1234, bytes(range(32)))
    note = format_checkpoint(head, key)
    assert note.startswith("example.org/log\n1234\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n\u2014 example.org/log ")
    assert open_checkpoint(note, verifier_key_string("example.org/log", key)) == head
    with pytest.raises(NoteError):
        open_checkpoint(note, verifier_key_string("example.org/log", generate_signing_key()))
    with pytest.raises(NoteError, match="expected"):
        open_checkpoint(note, verifier_key_string("example.org/log", key), origin="other/log")


@pytest.mark.parametrize("body", ["origin\n12\n", "origin\n012\nAAAA\n", "origin\n12\nnot-base64!\n", "origin\nx\nAAAA\n"])
def test_malformed_checkpoint_bodies_are_note_errors(body: str) -> None:
    key = generate_signing_key()
    note = sign_note(body, "origin", key)
    with pytest.raises(NoteError):
        open_checkpoint(note, verifier_key_string("origin", key))


@pytest.mark.parametrize("vkey", ["", "a+b", "name+zzzzzzzz+AAAA", "name+00000000+AS9ITcZkZEra4IHp4Klks4+jMgJSJ9wp3HrfXYv2/5LW"])
def test_malformed_verifier_keys_are_note_errors(vkey: str) -> None:
    with pytest.raises(NoteError):
        parse_verifier_key(vkey)
