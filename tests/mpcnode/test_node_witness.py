"""A node as a witness: a real node server (mutual TLS on loopback), the coordinator's real
gRPC client (`GrpcClusterLink`), real SQLite ledgers signing real checkpoints. The node
cosigns a log that grew consistently and refuses a fork, a shrink and a bad signature,
keeping its stored head as it was."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.cluster_link import NodeEndpoint
from coordinator.cluster_link_client import GrpcClusterLink
from ledger import Ledger
from ledger.cosignature import Cosignature, Cosigner, verify_cosignature
from ledger.signed_note import parse_signature_line, split_note
from ledger.workload import realistic_mix
from mpcnode.server import RunningNode
from mpcnode.witness import STATE_FILE, CosignRequest, Witness
from mutualmind.errors import InvalidInput, RuleViolation
from mutualmind.transport import channel_credentials, open_channel
from mutualmind.transport.pki import load_signing_key
from mutualmind.vocabulary.signing_keys import generate_signing_key
from proto import node_pb2, node_pb2_grpc

ORIGIN = "mutualmind.test/ledger"
DEADLINE = 5.0


class Log:
    """A real ledger file the test grows, and the checkpoints it signs."""

    def __init__(self, path: Path, key: Ed25519PrivateKey, seed: int) -> None:
        self.ledger = Ledger.create(path, key, params={"nodes": 3}, origin=ORIGIN)
        self._requests = iter(realistic_mix(200, seed=seed, providers=4))

    def grow(self, count: int) -> str:
        self.ledger.append_many([next(self._requests) for _ in range(count)])
        return self.ledger.checkpoint()

    def proof(self, old: int) -> list[bytes]:
        return self.ledger.consistency_proof(old, self.ledger.size) if old else []


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return generate_signing_key()


@pytest.fixture
def logs(tmp_path: Path, key: Ed25519PrivateKey) -> Iterator[Callable[[int], Log]]:
    made: list[Log] = []

    def make(seed: int) -> Log:
        log = Log(tmp_path / f"ledger-{seed}.db", key, seed)
        made.append(log)
        return log

    yield make
    for log in made:
        log.ledger.close()


@pytest.fixture
def node(start: Callable[..., RunningNode]) -> RunningNode:
    return start(0)


@pytest.fixture
def link(node: RunningNode, certs_dir: Path) -> Iterator[GrpcClusterLink]:
    endpoint = NodeEndpoint(0, "node0", f"127.0.0.1:{node.public_port}", f"127.0.0.1:{node.cluster_port}")
    link = GrpcClusterLink([endpoint], "127.0.0.1:1", certs_dir)
    yield link
    link.close()


def _cosign(link: GrpcClusterLink, log: Log, note: str, old: int) -> Cosignature:
    line = link.cosign_checkpoint(0, note, log.ledger.verifier_key(), old, log.proof(old),
                                  timeout=DEADLINE)
    return Cosignature.from_line(parse_signature_line(line))


def _state(node: RunningNode) -> bytes:
    return (node.config.data_dir / STATE_FILE).read_bytes()


def test_a_node_cosigns_a_log_that_grew_consistently(
        link: GrpcClusterLink, logs: Callable[[int], Log], node: RunningNode,
        node_public_keys: list[bytes], certs_dir: Path) -> None:
    log = logs(1)
    witness = Cosigner("node0", node_public_keys[0])
    assert link.witness_size(0, timeout=DEADLINE) == 0
    first = log.grow(5)
    cosignature = _cosign(link, log, first, 0)
    assert verify_cosignature(split_note(first)[0], cosignature, witness)
    assert link.witness_size(0, timeout=DEADLINE) == 6
    later = log.grow(7)
    cosignature = _cosign(link, log, later, 6)
    assert verify_cosignature(split_note(later)[0], cosignature, witness)
    assert not verify_cosignature(split_note(first)[0], cosignature, witness)
    assert link.witness_size(0, timeout=DEADLINE) == 13
    # the same head again is cosigned again (a retry after a lost reply), the size stays
    assert verify_cosignature(split_note(later)[0], _cosign(link, log, later, 13), witness)
    assert b'"size": 13' in _state(node)
    # a restarted node reads the head it stored
    restarted = Witness(node.config.data_dir, "node0", load_signing_key(certs_dir, 0))
    head = restarted.head()
    assert head is not None and head.checkpoint.size == 13
    assert head.verifier_key == log.ledger.verifier_key()


def test_a_fork_is_refused_and_the_stored_head_is_kept(
        link: GrpcClusterLink, logs: Callable[[int], Log], node: RunningNode) -> None:
    honest, fork = logs(1), logs(2)  # the same coordinator key, two different histories
    _cosign(link, honest, honest.grow(5), 0)
    kept = _state(node)
    same_size = fork.grow(5)
    assert fork.ledger.size == honest.ledger.size
    with pytest.raises(RuleViolation, match="another root") as caught:
        _cosign(link, fork, same_size, 6)
    assert caught.value.rule == "checkpoint_fork"
    # a bigger fork whose proof starts from the node's size does not link to its root
    bigger = fork.grow(4)
    with pytest.raises(RuleViolation, match="not consistent with the one this witness cosigned") as caught:
        _cosign(link, fork, bigger, 6)
    assert caught.value.rule == "checkpoint_fork"
    assert _state(node) == kept
    assert link.witness_size(0, timeout=DEADLINE) == 6
    # the honest log still grows under the node's cosignature
    _cosign(link, honest, honest.grow(2), 6)
    assert link.witness_size(0, timeout=DEADLINE) == 8


def test_a_shrink_and_a_bad_signature_are_refused(
        link: GrpcClusterLink, logs: Callable[[int], Log], node: RunningNode, tmp_path: Path) -> None:
    log = logs(1)
    small = log.grow(3)
    _cosign(link, log, log.grow(5), 0)
    kept = _state(node)
    with pytest.raises(RuleViolation, match="a log never shrinks") as caught:
        _cosign(link, log, small, 9)
    assert caught.value.rule == "checkpoint_shrank"
    # a head signed by another key under the same origin
    other = Ledger.create(tmp_path / "other.db", generate_signing_key(), origin=ORIGIN)
    try:
        other.append_many(list(realistic_mix(12, seed=1, providers=4)))
        with pytest.raises(RuleViolation, match="follows the log signed by") as caught:
            link.cosign_checkpoint(0, other.checkpoint(), other.verifier_key(), 9,
                                   other.consistency_proof(9), timeout=DEADLINE)
        # the pinned key over a note whose signature does not verify (size edited)
        note = log.grow(1)
        tampered = note.replace(f"\n{log.ledger.size}\n", f"\n{log.ledger.size + 1}\n", 1)
        with pytest.raises(RuleViolation, match="not signed by the log's key") as caught:
            link.cosign_checkpoint(0, tampered, log.ledger.verifier_key(), 9, log.proof(9),
                                   timeout=DEADLINE)
        assert caught.value.rule == "checkpoint_signature"
    finally:
        other.close()
    assert _state(node) == kept


def test_refusals_travel_as_failed_precondition_and_only_the_coordinator_may_ask(
        link: GrpcClusterLink, logs: Callable[[int], Log], node: RunningNode, certs_dir: Path) -> None:
    log = logs(1)
    _cosign(link, log, log.grow(5), 0)
    request = node_pb2.CosignRequest(checkpoint_note=logs(2).grow(5), old_size=6,
                                     verifier_key=log.ledger.verifier_key())
    refusals = {}
    for member in ("coordinator", "admin"):
        with open_channel(f"127.0.0.1:{node.cluster_port}", channel_credentials(certs_dir, member),
                          server_name="node0") as channel:
            with pytest.raises(grpc.RpcError) as caught:
                node_pb2_grpc.NodeControlStub(channel).CosignCheckpoint(request, timeout=DEADLINE)
        refusals[member] = (caught.value.code(), caught.value.details() or "")
    assert refusals["coordinator"][0] == grpc.StatusCode.FAILED_PRECONDITION
    assert "the log forked" in refusals["coordinator"][1]
    assert refusals["admin"][0] == grpc.StatusCode.PERMISSION_DENIED


def test_a_pinned_log_key_refuses_another_logs_first_checkpoint(
        logs: Callable[[int], Log], tmp_path: Path, certs_dir: Path) -> None:
    log = logs(1)
    note = log.grow(3)
    other = Ledger.create(tmp_path / "other.db", generate_signing_key(), origin=ORIGIN)
    try:
        pinned = other.verifier_key()
    finally:
        other.close()
    witness = Witness(tmp_path / "w", "node0", load_signing_key(certs_dir, 0), pinned_vkey=pinned)
    with pytest.raises(RuleViolation, match="signed by .* only"):
        witness.cosign(CosignRequest(note, log.ledger.verifier_key(), 0, ()))
    with pytest.raises(RuleViolation, match="not signed by the log's key"):
        witness.cosign(CosignRequest(note, "", 0, ()))  # the coordinator named no key
    assert witness.head() is None and not (tmp_path / "w" / STATE_FILE).exists()
    with pytest.raises(InvalidInput, match="--ledger-vkey"):
        Witness(tmp_path / "w", "node0", load_signing_key(certs_dir, 0), pinned_vkey="nonsense")
