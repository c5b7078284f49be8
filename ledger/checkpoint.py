"""Signed tree heads in the C2SP `tlog-checkpoint` format.

A checkpoint is a signed note whose text is three lines: the log's origin, the tree size
in decimal, and the base64 root hash (extension lines may follow). The coordinator signs
it with the same Ed25519 key that signs entries, under the origin as key name, so any
tool that reads checkpoints can check a MutualMind tree head with the verifier key string
(`verifier_key_string(origin, key)`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.merkle import HASH_SIZE
from ledger.signed_note import NoteError, NoteVerifier, open_note, sign_note

__all__ = ["Checkpoint", "NoteError", "format_checkpoint", "open_checkpoint", "open_note"]


@dataclass(frozen=True)
class Checkpoint:
    """The body of a tree head: which log, how many entries, which root."""

    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def format_checkpoint(checkpoint: Checkpoint, key: Ed25519PrivateKey) -> str:
    """Sign `checkpoint` as a note under its origin as key name."""
    return sign_note(checkpoint.text(), checkpoint.origin, key)


def parse_checkpoint_text(text: str) -> Checkpoint:
    """Parse checkpoint body lines; NoteError when they are not origin, size, root."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("a checkpoint needs an origin line, a size line and a root line")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not origin:
        raise NoteError("the checkpoint's origin line is empty")
    if not size_text.isascii() or not size_text.isdigit() or (
        len(size_text) > 1 and size_text[0] == "0"
    ):
        raise NoteError(f"checkpoint size {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise NoteError("the checkpoint's root line is not base64") from None
    if len(root) != HASH_SIZE:
        raise NoteError(f"the checkpoint's root is {len(root)} bytes, not {HASH_SIZE}")
    return Checkpoint(origin, int(size_text), root)


def open_checkpoint(note: str, vkey: str | NoteVerifier, origin: str | None = None) -> Checkpoint:
    """Verify a checkpoint note with `vkey` and parse it; check its origin when given."""
    checkpoint = parse_checkpoint_text(open_note(note, vkey))
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint is for log {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint
