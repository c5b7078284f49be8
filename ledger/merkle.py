"""RFC 9162 Merkle hashing and proof verification: pure functions, no database.

This is what a provider or an auditor runs with nothing but a proof, a tree head and the
coordinator's public key. Input shape is checked first (index < size, hash lengths, proof
length), then the root is recomputed and compared; every failure is a `ProofError`
(a subclass of the project's IntegrityError), never a stray ValueError. The verification
algorithms follow transparency-dev/merkle's `proof/verify.go`, whose test vectors
(`../shared/testdata/rfc9162/`) the tests run; proof *building* lives in `merkle_tree.py`.
"""

from __future__ import annotations

import hashlib

from mutualmind.errors import IntegrityError

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


class ProofError(IntegrityError):
    """A Merkle proof is malformed or does not lead to the claimed root."""


class RootMismatchError(ProofError):
    """The proof is well formed but yields another root than the one claimed."""

    def __init__(self, expected: bytes, calculated: bytes) -> None:
        super().__init__(
            f"root mismatch: the tree head says {expected.hex() or '(empty)'}, "
            f"the proof gives {calculated.hex()}"
        )
        self.expected = expected
        self.calculated = calculated


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || data)."""
    return _sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 || left || right)."""
    return _sha256(NODE_PREFIX + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly less than n (n >= 2): the RFC's split point."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: list[bytes]) -> bytes:
    """MTH over already-hashed leaves by the RFC's recursive definition (reference use)."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = largest_power_of_two_below(len(hashes))
    return node_hash(root_from_leaf_hashes(hashes[:k]), root_from_leaf_hashes(hashes[k:]))


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{name} is {len(value)} bytes; a SHA-256 hash is {HASH_SIZE}")


def _decompose_inclusion(index: int, size: int) -> tuple[int, int]:
    """Split a proof for `index` in a tree of `size` into (inner, border) lengths."""
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner, border


def _chain_inner(seed: bytes, proof: list[bytes], index: int) -> bytes:
    for level, sibling in enumerate(proof):
        if (index >> level) & 1 == 0:
            seed = _sha256(NODE_PREFIX + seed + sibling).digest()
        else:
            seed = _sha256(NODE_PREFIX + sibling + seed).digest()
    return seed


def _chain_inner_right(seed: bytes, proof: list[bytes], index: int) -> bytes:
    for level, sibling in enumerate(proof):
        if (index >> level) & 1 == 1:
            seed = _sha256(NODE_PREFIX + sibling + seed).digest()
    return seed


def _chain_border_right(seed: bytes, proof: list[bytes]) -> bytes:
    for sibling in proof:
        seed = _sha256(NODE_PREFIX + sibling + seed).digest()
    return seed


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """The root that `proof` implies for leaf hash `leaf` at `index` in a tree of `size`."""
    if index < 0 or size < 0:
        raise ProofError(f"index {index} and size {size} must not be negative")
    if index >= size:
        raise ProofError(f"leaf index {index} is beyond the tree size {size}")
    _check_hash("leaf hash", leaf)
    inner, border = _decompose_inclusion(index, size)
    if len(proof) != inner + border:
        raise ProofError(
            f"inclusion proof has {len(proof)} hashes; a leaf at {index} of {size} needs "
            f"{inner + border}"
        )
    for pos, item in enumerate(proof):
        _check_hash(f"proof hash {pos}", item)
    seed = _chain_inner(leaf, proof[:inner], index)
    return _chain_border_right(seed, proof[inner:])


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> None:
    """Raise ProofError unless `proof` shows leaf hash `leaf` at `index` under `root`."""
    calculated = root_from_inclusion_proof(index, size, leaf, proof)
    if calculated != root:
        raise RootMismatchError(root, calculated)


def _verify_match(calculated: bytes, expected: bytes) -> None:
    if calculated != expected:
        raise RootMismatchError(expected, calculated)


def verify_consistency(
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes
) -> None:
    """Raise ProofError unless `proof` shows the tree of `size1`/`root1` grew into `size2`/`root2`."""
    if size1 < 0 or size2 < 0:
        raise ProofError(f"sizes {size1} and {size2} must not be negative")
    if size2 < size1:
        raise ProofError(f"size2 ({size2}) is smaller than size1 ({size1}): a log never shrinks")
    if size1 == 0:
        # transparency-dev's convention: every tree extends the empty one, so a
        # "proof" from size 0 proves nothing and is refused rather than waved through.
        raise ProofError("a consistency proof from the empty tree proves nothing; start at size 1")
    if size1 == size2:
        if proof:
            raise ProofError("equal sizes need an empty consistency proof")
        _verify_match(root1, root2)
        return
    if not proof:
        raise ProofError(f"consistency from {size1} to {size2} needs a non-empty proof")
    for pos, item in enumerate(proof):
        _check_hash(f"proof hash {pos}", item)
    inner, border = _decompose_inclusion(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    if size1 == 1 << shift:
        seed, start = root1, 0
    else:
        seed, start = proof[0], 1
    if len(proof) != start + inner + border:
        raise ProofError(
            f"consistency proof has {len(proof)} hashes; {size1} -> {size2} needs "
            f"{start + inner + border}"
        )
    rest = proof[start:]
    mask = (size1 - 1) >> shift
    hash1 = _chain_inner_right(seed, rest[:inner], mask)
    hash1 = _chain_border_right(hash1, rest[inner:])
    _verify_match(hash1, root1)
    hash2 = _chain_inner(seed, rest[:inner], mask)
    hash2 = _chain_border_right(hash2, rest[inner:])
    _verify_match(hash2, root2)
