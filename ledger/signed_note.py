"""C2SP signed notes (the envelope of `tlog-checkpoint`), Ed25519 only.

A note is UTF-8 text ending in a newline, a blank line, then signature lines
"— <name> <base64(key ID || signature)>". Key ID = first 4 bytes of
SHA-256(name || 0x0A || 0x01 || public key); the signature covers the text including its
final newline. Verifier keys travel as "<name>+<hex key ID>+<base64(0x01 || key)>", the
form Go's `golang.org/x/mod/sumdb/note` and other transparency-log tools read, and signer
keys as "PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>". Every malformed input
surfaces as `NoteError`, never as a stray ValueError.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from mutualmind.errors import IntegrityError, InvalidInput
from mutualmind.vocabulary.signing_keys import (
    load_public_key,
    private_key_from_seed,
    public_key_bytes,
    verify_signature,
)

ALG_ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "
MAX_SIGNATURES = 100


class NoteError(IntegrityError):
    """A signed note (or a note key) is malformed, unsigned by the key, or badly signed."""


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID of an Ed25519 note key."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(ch.isspace() or ch == "+" for ch in name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise NoteError(f"{what} is not valid base64") from None


@dataclass(frozen=True)
class NoteVerifier:
    """A parsed verifier key: who signs, its key ID and its Ed25519 public key."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey


def parse_verifier_key(vkey: str) -> NoteVerifier:
    """Parse "<name>+<hex key ID>+<base64(0x01 || public key)>"."""
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise NoteError("a verifier key reads <name>+<8 hex digits>+<base64 key>")
    name, hex_id, b64 = parts
    _check_name(name)
    if len(hex_id) != 8:
        raise NoteError("a verifier key ID is 8 hex digits")
    try:
        wanted_id = bytes.fromhex(hex_id)
    except ValueError:
        raise NoteError("the verifier key ID is not hex") from None
    raw = _b64decode(b64, "verifier key")
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise NoteError("only Ed25519 verifier keys (0x01 then 32 bytes) are supported")
    if key_id(name, raw[1:]) != wanted_id:
        raise NoteError(f"verifier key ID {hex_id} does not match the key of {name}")
    try:
        public = load_public_key(raw[1:])
    except InvalidInput as err:
        raise NoteError(f"verifier key: {err.message}") from None
    return NoteVerifier(name, wanted_id, public)


def verifier_key_string(name: str, key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The verifier key string for `name` and an Ed25519 key."""
    _check_name(name)
    raw = public_key_bytes(key)
    encoded = base64.b64encode(bytes([ALG_ED25519]) + raw).decode()
    return f"{name}+{key_id(name, raw).hex()}+{encoded}"


def parse_signer_key(skey: str) -> tuple[str, Ed25519PrivateKey]:
    """Parse "PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>" into (name, key)."""
    parts = skey.strip().split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise NoteError("a signer key reads PRIVATE+KEY+<name>+<key ID>+<base64 seed>")
    name, hex_id, b64 = parts[2:]
    _check_name(name)
    raw = _b64decode(b64, "signer key")
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise NoteError("only Ed25519 signer keys (0x01 then a 32-byte seed) are supported")
    key = private_key_from_seed(raw[1:])
    if key_id(name, public_key_bytes(key)).hex() != hex_id.lower():
        raise NoteError(f"signer key ID {hex_id} does not match the key of {name}")
    return name, key


def sign_note(text: str, name: str, key: Ed25519PrivateKey) -> str:
    """Sign `text` (non-empty, ending in a newline, no blank-line trailer) as a note."""
    if not text.endswith("\n"):
        raise InvalidInput("note text must end with a newline")
    if "\n\n" in text or text.startswith("\n"):
        raise InvalidInput("note text must not contain blank lines")
    _check_name(name)
    signature = key.sign(text.encode("utf-8"))
    blob = base64.b64encode(key_id(name, public_key_bytes(key)) + signature).decode()
    return f"{text}\n{SIGNATURE_PREFIX}{name} {blob}\n"


def open_note(note: str | bytes, vkey: str | NoteVerifier) -> str:
    """Return the note's text if a signature by `vkey` verifies; NoteError otherwise.

    Signatures by other keys are ignored, as the spec asks; a signature line that claims
    the verifier's name and key ID but does not verify is an error, as is a note that
    carries no signature by the verifier at all.
    """
    verifier = parse_verifier_key(vkey) if isinstance(vkey, str) else vkey
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("a note must be UTF-8 text") from None
    if not note.endswith("\n"):
        raise NoteError("a note must end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("a note needs a blank line between its text and its signatures")
    text, sig_block = note[: split + 1], note[split + 2 :]
    lines = sig_block[:-1].split("\n") if sig_block else []
    if not lines:
        raise NoteError("the note carries no signature lines")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"a note may carry at most {MAX_SIGNATURES} signatures")
    message = text.encode("utf-8")
    verified = False
    for number, line in enumerate(lines, start=1):
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError(f"signature line {number} does not start with an em dash and a space")
        fields = line[len(SIGNATURE_PREFIX) :].split(" ")
        if len(fields) != 2:
            raise NoteError(f"signature line {number} must read '— <name> <base64>'")
        name, b64 = fields
        _check_name(name)
        blob = _b64decode(b64, f"signature line {number}")
        if len(blob) < 5:
            raise NoteError(f"signature line {number} is too short to hold a key ID")
        if name != verifier.name or blob[:4] != verifier.key_id:
            continue
        if not verify_signature(verifier.public_key, message, blob[4:]):
            raise NoteError(f"the signature by {name} does not verify over the note text")
        verified = True
    if not verified:
        raise NoteError(f"the note carries no signature by {verifier.name}+{verifier.key_id.hex()}")
    return text
