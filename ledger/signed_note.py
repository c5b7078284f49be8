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


def key_id(name: str, public_key: bytes, alg: int = ALG_ED25519) -> bytes:
    """The 4-byte key ID of a note key: Ed25519 (0x01) or, for cosigners, 0x04."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4]


def check_key_name(name: str) -> None:
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
    check_key_name(name)
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
    check_key_name(name)
    raw = public_key_bytes(key)
    encoded = base64.b64encode(bytes([ALG_ED25519]) + raw).decode()
    return f"{name}+{key_id(name, raw).hex()}+{encoded}"


def parse_signer_key(skey: str) -> tuple[str, Ed25519PrivateKey]:
    """Parse "PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>" into (name, key)."""
    parts = skey.strip().split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise NoteError("a signer key reads PRIVATE+KEY+<name>+<key ID>+<base64 seed>")
    name, hex_id, b64 = parts[2:]
    check_key_name(name)
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
    check_key_name(name)
    signature = key.sign(text.encode("utf-8"))
    blob = base64.b64encode(key_id(name, public_key_bytes(key)) + signature).decode()
    return f"{text}\n{SIGNATURE_PREFIX}{name} {blob}\n"


@dataclass(frozen=True)
class SignatureLine:
    """One "— <name> <base64>" line of a note: the key name and the decoded blob
    (key ID then the signature, whose layout depends on the key's algorithm)."""

    name: str
    blob: bytes

    @property
    def key_id(self) -> bytes:
        return self.blob[:4]

    def line(self) -> str:
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(self.blob).decode()}"


def split_note(note: str | bytes) -> tuple[str, list[SignatureLine]]:
    """The note's text (with its final newline) and its signature lines, parsed but unverified."""
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
    return text, [parse_signature_line(line, number) for number, line in enumerate(lines, start=1)]


def parse_signature_line(line: str, number: int = 1) -> SignatureLine:
    """Parse one "— <name> <base64(key ID || signature)>" line (without its newline)."""
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteError(f"signature line {number} does not start with an em dash and a space")
    fields = line[len(SIGNATURE_PREFIX) :].split(" ")
    if len(fields) != 2:
        raise NoteError(f"signature line {number} must read '— <name> <base64>'")
    name, b64 = fields
    check_key_name(name)
    blob = _b64decode(b64, f"signature line {number}")
    if len(blob) < 5:
        raise NoteError(f"signature line {number} is too short to hold a key ID")
    return SignatureLine(name, blob)


def add_signatures(note: str, extra: list[SignatureLine]) -> str:
    """`note` with `extra` signature lines appended, each replacing a line of the same key
    (name and key ID) already there, so a note holds one signature per key.

    The text is not re-verified here: callers add lines they checked themselves.
    """
    text, lines = split_note(note)
    replaced = {(line.name, line.key_id) for line in extra}
    merged = [line for line in lines if (line.name, line.key_id) not in replaced]
    for line in extra:
        if line not in merged:
            merged.append(line)
    if len(merged) > MAX_SIGNATURES:
        raise NoteError(f"a note may carry at most {MAX_SIGNATURES} signatures")
    return text + "\n" + "".join(line.line() + "\n" for line in merged)


def open_note(note: str | bytes, vkey: str | NoteVerifier) -> str:
    """Return the note's text if a signature by `vkey` verifies; NoteError otherwise.

    Signatures by other keys are ignored, as the spec asks; a signature line that claims
    the verifier's name and key ID but does not verify is an error, as is a note that
    carries no signature by the verifier at all.
    """
    verifier = parse_verifier_key(vkey) if isinstance(vkey, str) else vkey
    text, lines = split_note(note)
    message = text.encode("utf-8")
    verified = False
    for line in lines:
        if line.name != verifier.name or line.key_id != verifier.key_id:
            continue
        if not verify_signature(verifier.public_key, message, line.blob[4:]):
            raise NoteError(f"the signature by {line.name} does not verify over the note text")
        verified = True
    if not verified:
        raise NoteError(f"the note carries no signature by {verifier.name}+{verifier.key_id.hex()}")
    return text
