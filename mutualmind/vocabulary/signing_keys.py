"""Ed25519 keys for the coordinator, providers and nodes (`cryptography` underneath).

Keys travel as raw 32-byte public keys (hex in payloads) and sit on disk as PKCS#8 PEM
files readable only by their owner. Verification returns a bool instead of raising so that
callers choose the typed error that fits their context (a bad provider signature is
PermissionDenied on append and a numbered failure in `verify`).

Verification goes through libsodium (PyNaCl) when it is installed: the same Ed25519, with
libsodium's stricter checks (it also refuses small-order keys and non-canonical points),
at about half the cost of OpenSSL's (about 53 µs against 103 µs here). `verify` checks
one or more signatures per entry, so this is what lets a 2-core machine verify over
10,000 entries/s. Without PyNaCl the `cryptography` (OpenSSL) verifier is used, slower
but accepting the same honest signatures. Signing always uses `cryptography`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from mutualmind.errors import InvalidInput, NotFound

_sodium_open: Callable[[bytes, bytes], bytes] | None
try:  # libsodium: the fast verifier (see the module docstring)
    from nacl.bindings import crypto_sign_open
    from nacl.exceptions import CryptoError as _SodiumError
    _sodium_open = crypto_sign_open
except ImportError:  # pragma: no cover - depends on the installation
    _sodium_open = None

VERIFY_BACKEND = "libsodium" if _sodium_open is not None else "openssl"

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


def generate_signing_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 key from the operating system's CSPRNG."""
    return Ed25519PrivateKey.generate()


def private_key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    """The Ed25519 key whose 32-byte seed is `seed` (used by signed-note key strings)."""
    if len(seed) != 32:
        raise InvalidInput(f"an Ed25519 seed is 32 bytes, got {len(seed)}")
    return Ed25519PrivateKey.from_private_bytes(seed)


def save_private_key(key: Ed25519PrivateKey, path: str | Path) -> None:
    """Write `key` as unencrypted PKCS#8 PEM, mode 0600, refusing to overwrite a file."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidInput(f"{path} already exists; refusing to overwrite a key file") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Read an Ed25519 PKCS#8 PEM key file written by `save_private_key`."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise NotFound(f"key file {path} does not exist") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a directory; give the path of a key file") from None
    except OSError as err:
        raise InvalidInput(f"cannot read the key file {path}: {err.strerror or err}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise InvalidInput(f"{path} is not an unencrypted PEM private key (one made by "
                           "`mutualmind provider keygen`)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The raw 32-byte public key of a private or public key."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_public_key(raw: bytes) -> Ed25519PublicKey:
    """Parse a raw 32-byte public key; InvalidInput when it is not one."""
    if len(raw) != PUBLIC_KEY_SIZE:
        raise InvalidInput(f"an Ed25519 public key is 32 bytes, got {len(raw)}")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as err:
        raise InvalidInput(f"not a valid Ed25519 public key: {err}") from None


def public_key_from_hex(text: str) -> Ed25519PublicKey:
    """Parse a hex-encoded raw public key as carried in ledger payloads."""
    try:
        raw = bytes.fromhex(text)
    except (ValueError, TypeError):
        raise InvalidInput("public key must be 64 hex characters") from None
    return load_public_key(raw)


def sign(key: Ed25519PrivateKey, message: bytes) -> bytes:
    """Ed25519 signature (64 bytes, deterministic) of `message`."""
    return key.sign(message)


def verify_raw(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature of `message` by a raw 32-byte key."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    if _sodium_open is not None:
        try:
            _sodium_open(signature + message, public_key)
        except (_SodiumError, ValueError, TypeError):
            return False
        return True
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_signature(public_key: Ed25519PublicKey | bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature of `message` by `public_key`."""
    raw = public_key_bytes(public_key) if isinstance(public_key, Ed25519PublicKey) else bytes(public_key)
    return verify_raw(raw, bytes(message), bytes(signature))
