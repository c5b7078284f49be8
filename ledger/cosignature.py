"""Witness cosignatures on checkpoints (C2SP `tlog-cosignature`, the Ed25519 kind).

A cosignature says "as of this time, the largest consistent tree head I have seen for
this log has this root". It is a signed-note signature line appended to the checkpoint:

    — <cosigner name> base64(key ID || u64 big-endian timestamp || Ed25519 signature)

with key ID = SHA-256(name || 0x0A || 0x04 || public key)[:4] (0x04 marks a cosignature
key, so it differs from the same key's plain note key ID) and the signature over

    "cosignature/v1\\n" "time <timestamp>\\n" <the checkpoint's whole text>

A client configured with the cosigners it trusts (name and public key) counts the valid
cosignatures by distinct keys and accepts a head only with a quorum of them
(`check_quorum`): a coordinator that showed two logs to two people would need a quorum
of witnesses to each sign a fork, and a witness signs only heads consistent with the last
one it signed. In MutualMind the cosigners are the MPC nodes, under their member names
("node0") and their Ed25519 signing keys from the cluster manifest.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.signed_note import (
    NoteError,
    SignatureLine,
    add_signatures,
    check_key_name,
    key_id,
    split_note,
)
from mutualmind.errors import IntegrityError, InvalidInput
from mutualmind.vocabulary.signing_keys import (
    load_public_key,
    public_key_bytes,
    verify_signature,
)

ALG_COSIGNATURE_V1 = 0x04
COSIGNATURE_HEADER = "cosignature/v1\n"
MAX_TIMESTAMP = 2**63 - 1
_BLOB_SIZE = 4 + 8 + 64


@dataclass(frozen=True)
class Cosigner:
    """A witness a verifier trusts: its name and raw 32-byte Ed25519 public key."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key, ALG_COSIGNATURE_V1)

    def vkey(self) -> str:
        """The C2SP verifier key string "<name>+<hex key ID>+<base64(0x04 || key)>"."""
        raw = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{raw}"


def parse_cosigner_vkey(vkey: str) -> Cosigner:
    """Parse a cosigner verifier key "<name>+<hex key ID>+<base64(0x04 || key)>"."""
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise NoteError("a cosigner key reads <name>+<8 hex digits>+<base64 key>")
    name, hex_id, b64 = parts
    check_key_name(name)
    try:
        raw = base64.b64decode(b64.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise NoteError("the cosigner key is not valid base64") from None
    if len(raw) != 33 or raw[0] != ALG_COSIGNATURE_V1:
        raise NoteError("a cosigner key is 0x04 then a 32-byte Ed25519 key (tlog-cosignature/v1)")
    cosigner = Cosigner(name, raw[1:])
    if cosigner.key_id.hex() != hex_id.lower():
        raise NoteError(f"cosigner key ID {hex_id} does not match the key of {name}")
    try:
        load_public_key(cosigner.public_key)
    except InvalidInput as err:
        raise NoteError(f"cosigner key: {err.message}") from None
    return cosigner


def parse_cosigner_vkeys(text: str) -> list[Cosigner]:
    """Cosigner keys, one a line (blank lines and '#' comments skipped), each key once."""
    found: dict[bytes, Cosigner] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            cosigner = parse_cosigner_vkey(line)
        except NoteError as err:
            raise InvalidInput(f"witness key {number} ({line[:40]}): {err.message}") from None
        found.setdefault(cosigner.public_key, cosigner)
    return list(found.values())


def cosigned_message(text: str, timestamp: int) -> bytes:
    """The bytes a v1 cosignature signs: header, time line, the checkpoint's whole text."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"a cosignature timestamp must be 0..2^63-1, got {timestamp}")
    return f"{COSIGNATURE_HEADER}time {timestamp}\n{text}".encode()


@dataclass(frozen=True)
class Cosignature:
    """One decoded cosignature line: who, which key, when, and the Ed25519 signature."""

    name: str
    key_id: bytes
    timestamp: int
    signature: bytes

    def line(self) -> SignatureLine:
        blob = self.key_id + struct.pack(">Q", self.timestamp) + self.signature
        return SignatureLine(self.name, blob)

    @classmethod
    def from_line(cls, line: SignatureLine) -> "Cosignature":
        """Decode a signature line's blob as a cosignature; NoteError when it is not one."""
        if len(line.blob) != _BLOB_SIZE:
            raise NoteError(f"the signature by {line.name} is {len(line.blob)} bytes, not a "
                            f"cosignature's {_BLOB_SIZE} (key ID, timestamp, signature)")
        (timestamp,) = struct.unpack(">Q", line.blob[4:12])
        if timestamp > MAX_TIMESTAMP:
            raise NoteError(f"the cosignature by {line.name} has a timestamp above 2^63-1")
        return cls(line.name, line.blob[:4], timestamp, line.blob[12:])


def cosign(text: str, name: str, key: Ed25519PrivateKey, timestamp: int) -> Cosignature:
    """Cosign a checkpoint's text (already checked by the caller) at `timestamp`."""
    check_key_name(name)
    signature = key.sign(cosigned_message(text, timestamp))
    return Cosignature(name, key_id(name, public_key_bytes(key), ALG_COSIGNATURE_V1),
                       timestamp, signature)


def verify_cosignature(text: str, cosignature: Cosignature, cosigner: Cosigner) -> bool:
    """True when `cosignature` is `cosigner`'s valid cosignature over `text`."""
    if cosignature.name != cosigner.name or cosignature.key_id != cosigner.key_id:
        return False
    return verify_signature(cosigner.public_key, cosigned_message(text, cosignature.timestamp),
                            cosignature.signature)


def add_cosignatures(note: str, cosignatures: Iterable[Cosignature]) -> str:
    """The note with these cosignature lines added (one per cosigner key, newest kept)."""
    return add_signatures(note, [c.line() for c in cosignatures])


def valid_cosigners(note: str, cosigners: Sequence[Cosigner]) -> list[Cosigner]:
    """The trusted cosigners with a valid cosignature on `note`, each distinct key once,
    in the order of `cosigners`.

    Lines by keys not in `cosigners` are ignored (as the spec asks), as are lines that
    claim a trusted name and key ID but do not verify: they count for nothing.
    """
    text, lines = split_note(note)
    by_id = {(c.name, c.key_id): c for c in cosigners}
    found: dict[bytes, Cosigner] = {}
    for line in lines:
        cosigner = by_id.get((line.name, line.key_id))
        if cosigner is None or cosigner.public_key in found:
            continue
        try:
            cosignature = Cosignature.from_line(line)
        except NoteError:
            continue
        if verify_cosignature(text, cosignature, cosigner):
            found[cosigner.public_key] = cosigner
    return [c for c in cosigners if found.pop(c.public_key, None) is not None]  # in given order


class QuorumNotMet(IntegrityError):
    """Fewer valid cosignatures by known witnesses than the verifier asked for."""


def check_quorum(note: str, cosigners: Sequence[Cosigner], quorum: int) -> list[Cosigner]:
    """The valid cosigners of `note`; QuorumNotMet when fewer than `quorum` distinct keys."""
    if quorum < 0:
        raise InvalidInput(f"--quorum must be 0 or more, got {quorum}")
    if quorum > len({c.public_key for c in cosigners}):
        raise InvalidInput(f"--quorum {quorum} is more than the {len(cosigners)} witnesses known")
    found = valid_cosigners(note, cosigners)
    if len(found) < quorum:
        names = ", ".join(c.name for c in found) or "none"
        raise QuorumNotMet(f"quorum not met: {len(found)} valid cosignature"
                           f"{'' if len(found) == 1 else 's'} by known nodes ({names}), "
                           f"{quorum} needed")
    return found
