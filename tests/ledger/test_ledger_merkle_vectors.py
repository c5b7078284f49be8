"""RFC 9162 proofs: the 196 transparency-dev cases, and our trees against a naive reference."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from ledger.merkle import (
    EMPTY_ROOT,
    ProofError,
    RootMismatchError,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from ledger.merkle_tree import MerkleTree
from tests.shared_testdata import SHARED_TESTDATA, needs_testdata, require

VECTORS = SHARED_TESTDATA / "rfc9162"


def _cases(kind: str) -> list[Path]:
    if not VECTORS.is_dir():
        return []
    return sorted((VECTORS / kind).rglob("*.json"))


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


needs_vectors = needs_testdata(VECTORS)


@needs_vectors
def test_all_196_cases_are_present() -> None:
    require(VECTORS)
    assert len(_cases("inclusion")) + len(_cases("consistency")) == 196


@needs_vectors
@pytest.mark.parametrize("case_path", _cases("inclusion"), ids=lambda p: str(p.relative_to(VECTORS)))
def test_inclusion_vector(case_path: Path) -> None:
    case = json.loads(case_path.read_text())
    proof = [_b64(h) for h in case["proof"] or []]
    try:
        verify_inclusion(case["leafIdx"], case["treeSize"], _b64(case["leafHash"]), proof, _b64(case["root"]))
        accepted = True
    except ProofError:
        accepted = False
    assert accepted is (not case["wantErr"]), case["desc"]


@needs_vectors
@pytest.mark.parametrize("case_path", _cases("consistency"), ids=lambda p: str(p.relative_to(VECTORS)))
def test_consistency_vector(case_path: Path) -> None:
    case = json.loads(case_path.read_text())
    proof = [_b64(h) for h in case["proof"] or []]
    try:
        verify_consistency(case["size1"], case["size2"], proof, _b64(case["root1"]), _b64(case["root2"]))
        accepted = True
    except ProofError:
        accepted = False
    assert accepted is (not case["wantErr"]), case["desc"]


def _tree(n: int) -> tuple[MerkleTree, list[bytes]]:
    leaves = [leaf_hash(os.urandom(8) + i.to_bytes(4, "big")) for i in range(n)]
    tree = MerkleTree()
    for leaf in leaves:
        tree.append(leaf)
    return tree, leaves


def test_tree_matches_naive_reference_for_every_size_and_proof() -> None:
    tree, leaves = _tree(40)
    for size in range(1, 41):
        root = tree.root(size)
        assert root == root_from_leaf_hashes(leaves[:size])
        for index in range(size):
            verify_inclusion(index, size, leaves[index], tree.inclusion_proof(index, size), root)
        for size1 in range(1, size + 1):
            verify_consistency(size1, size, tree.consistency_proof(size1, size), tree.root(size1), root)


def test_empty_tree_root_is_hash_of_nothing() -> None:
    assert MerkleTree().root() == EMPTY_ROOT


def test_wrong_leaf_is_a_root_mismatch_naming_both_roots() -> None:
    tree, leaves = _tree(13)
    with pytest.raises(RootMismatchError) as caught:
        verify_inclusion(5, 13, leaves[6], tree.inclusion_proof(5), tree.root())
    assert caught.value.expected == tree.root()
    assert tree.root().hex() in str(caught.value)


def test_truncate_undoes_appends() -> None:
    tree, leaves = _tree(37)
    root_20 = tree.root(20)
    tree.truncate(20)
    assert tree.size == 20 and tree.root() == root_20
    for leaf in leaves[20:]:
        tree.append(leaf)
    assert tree.root() == root_from_leaf_hashes(leaves)


def test_malformed_proof_inputs_are_proof_errors_not_value_errors() -> None:
    tree, leaves = _tree(8)
    proof = tree.inclusion_proof(3)
    for bad in (
        lambda: verify_inclusion(8, 8, leaves[3], proof, tree.root()),
        lambda: verify_inclusion(3, 8, leaves[3][:31], proof, tree.root()),
        lambda: verify_inclusion(3, 8, leaves[3], proof + [leaves[0]], tree.root()),
        lambda: verify_inclusion(3, 8, leaves[3], [p[:5] for p in proof], tree.root()),
        lambda: verify_consistency(5, 3, [], tree.root(5), tree.root(3)),
    ):
        with pytest.raises(ProofError):
            bad()
