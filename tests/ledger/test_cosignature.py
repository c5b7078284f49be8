"""C2SP tlog-cosignature lines: layout per the spec, round trip, and quorum counting."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.checkpoint import Checkpoint, format_checkpoint, open_checkpoint
from ledger.cosignature import (
    Cosignature,
    Cosigner,
    QuorumNotMet,
    add_cosignatures,
    check_quorum,
    cosign,
    cosigned_message,
    parse_cosigner_vkey,
    parse_cosigner_vkeys,
    valid_cosigners,
    verify_cosignature,
)
from ledger.signed_note import (
    NoteError,
    SignatureLine,
    key_id,
    parse_signature_line,
    split_note,
    verifier_key_string,
)
from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.signing_keys import generate_signing_key, public_key_bytes

# The example of c2sp.org/tlog-cosignature: its witness line and the message it signs.
SPEC_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_LINE = ("\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB"
             "9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==")
SPEC_MESSAGE = ("cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
                "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")

ORIGIN = "mutualmind.test/ledger"


def _note(size: int = 5) -> tuple[str, str]:
    key = generate_signing_key()
    note = format_checkpoint(Checkpoint(ORIGIN, size, bytes(range(32))), key)
    return note, verifier_key_string(ORIGIN, key)


def _witnesses(count: int) -> list[tuple[Cosigner, Ed25519PrivateKey]]:
    made = []
    for i in range(count):
        key = generate_signing_key()
        made.append((Cosigner(f"node{i}", public_key_bytes(key)), key))
    return made


def test_the_spec_example_decodes_to_its_timestamp_and_message() -> None:
    cosignature = Cosignature.from_line(parse_signature_line(SPEC_LINE[:]))
    assert cosignature.name == "witness.example.com/w1"
    assert cosignature.timestamp == 1679315147
    assert len(cosignature.key_id) == 4 and len(cosignature.signature) == 64
    assert cosigned_message(SPEC_TEXT, cosignature.timestamp) == SPEC_MESSAGE.encode()
    assert cosignature.line().line() == SPEC_LINE  # re-encodes byte for byte


# A known answer from an independent implementation: Node.js's own Ed25519 and SHA-256,
# with the line, key ID and verifier key formatted from the C2SP tlog-cosignature text
# (not from this module), for the key whose seed is the bytes 1..32. Ed25519 signing is
# deterministic, so our cosignature must equal it byte for byte.
KAT_SEED = bytes(range(1, 33))
KAT_NAME = "witness.example.com/w1"
KAT_TEXT = "example.com/log\n42\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n"
KAT_TIME = 1_700_000_000
KAT_LINE = ("\u2014 witness.example.com/w1 hWHHHgAAAABlU/EAwws/1xwF2HRVByiukd8QJlQ29brcidtQGunG2er"
            "aTdqfCIVzQhg4e9GVLclSBh3YlrsLQ9ByZlthGKFcqnzgBQ==")
KAT_VKEY = "witness.example.com/w1+8561c71e+BHm1Vi6P5lT5QHixEuipi6eQH4U65pW+1+DjkQutBJZk"


def test_a_cosignature_equals_an_independent_implementations_byte_for_byte() -> None:
    key = Ed25519PrivateKey.from_private_bytes(KAT_SEED)
    cosignature = cosign(KAT_TEXT, KAT_NAME, key, KAT_TIME)
    assert cosignature.line().line() == KAT_LINE
    cosigner = Cosigner(KAT_NAME, public_key_bytes(key))
    assert cosigner.vkey() == KAT_VKEY
    assert parse_cosigner_vkey(KAT_VKEY) == cosigner
    assert verify_cosignature(KAT_TEXT, cosignature, cosigner)
    assert not verify_cosignature(KAT_TEXT.replace("42", "43"), cosignature, cosigner)


def test_a_cosignature_key_id_uses_algorithm_0x04_not_the_note_keys_0x01() -> None:
    key = generate_signing_key()
    cosigner = Cosigner("node0", public_key_bytes(key))
    assert cosigner.key_id == key_id("node0", public_key_bytes(key), 0x04)
    assert cosigner.key_id != key_id("node0", public_key_bytes(key))
    assert parse_cosigner_vkey(cosigner.vkey()) == cosigner
    assert base64.b64decode(cosigner.vkey().split("+", 2)[2])[0] == 0x04


def test_cosignatures_ride_on_the_note_without_disturbing_the_log_signature() -> None:
    note, vkey = _note()
    (w0, k0), (w1, k1) = _witnesses(2)
    text, _ = split_note(note)
    cosigned = add_cosignatures(note, [cosign(text, "node0", k0, 100), cosign(text, "node1", k1, 101)])
    assert open_checkpoint(cosigned, vkey).size == 5  # the coordinator's signature still opens
    assert valid_cosigners(cosigned, [w0, w1]) == [w0, w1]
    # a newer cosignature by the same key replaces the older line: one line per key
    again = add_cosignatures(cosigned, [cosign(text, "node0", k0, 200)])
    assert len(split_note(again)[1]) == 3
    assert check_quorum(again, [w0, w1], 2) == [w0, w1]


def test_quorum_counts_only_valid_cosignatures_by_known_distinct_keys() -> None:
    note, _ = _note()
    (w0, k0), (w1, _k1), (stranger, ks) = _witnesses(3)
    text, _ = split_note(note)
    good = cosign(text, "node0", k0, 100)
    # node1's name and key ID over a signature by another key: claims node1, does not verify
    forged = Cosignature("node1", w1.key_id, 100, cosign(text, "node1", ks, 100).signature)
    cosigned = add_cosignatures(note, [good, forged, cosign(text, "node9", ks, 100)])
    assert valid_cosigners(cosigned, [w0, w1]) == [w0]
    with pytest.raises(QuorumNotMet, match=r"quorum not met: 1 valid cosignature by known nodes "
                                           r"\(node0\), 2 needed"):
        check_quorum(cosigned, [w0, w1], 2)
    # a cosignature over another text (another size) does not count either
    other_text = text.replace("\n5\n", "\n6\n")
    moved = add_cosignatures(note, [cosign(other_text, "node0", k0, 100)])
    with pytest.raises(QuorumNotMet, match="0 valid cosignatures"):
        check_quorum(moved, [w0, stranger], 1)
    with pytest.raises(InvalidInput, match="more than the 2 witnesses"):
        check_quorum(cosigned, [w0, w1], 3)


def test_a_line_of_the_wrong_length_is_no_cosignature() -> None:
    with pytest.raises(NoteError, match="not a cosignature"):
        Cosignature.from_line(SignatureLine("node0", b"\x01" * 68))
    with pytest.raises(NoteError, match="timestamp"):
        cosigned_message("x\n", -1)


def test_witness_key_files_skip_comments_and_name_the_bad_line() -> None:
    (w0, _), (w1, _) = _witnesses(2)
    text = f"# the cluster's nodes\n{w0.vkey()}\n\n{w1.vkey()}  # node1\n{w0.vkey()}\n"
    assert parse_cosigner_vkeys(text) == [w0, w1]
    with pytest.raises(InvalidInput, match="witness key 2"):
        parse_cosigner_vkeys(f"{w0.vkey()}\nnode1+00000000+AAAA\n")


_NAMES = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF,
                                        blacklist_characters="+"), min_size=1, max_size=40,
                 ).filter(lambda name: not any(ch.isspace() for ch in name))


@settings(max_examples=200, deadline=None)
@given(name=_NAMES, kid=st.binary(min_size=4, max_size=4),
       timestamp=st.integers(min_value=0, max_value=2**63 - 1),
       signature=st.binary(min_size=64, max_size=64))
def test_cosignature_lines_round_trip(name: str, kid: bytes, timestamp: int, signature: bytes) -> None:
    cosignature = Cosignature(name, kid, timestamp, signature)
    line = cosignature.line().line()
    assert line.startswith(f"\u2014 {name} ")
    assert Cosignature.from_line(parse_signature_line(line)) == cosignature
