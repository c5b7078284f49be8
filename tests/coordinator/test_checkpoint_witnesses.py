"""The nodes witness the coordinator's checkpoints: three real nodes and a real coordinator
(mutual TLS on loopback, SQLite ledger, its own gRPC link to the nodes), the real
`mutualmind` CLI as subprocesses. Every new checkpoint gets the nodes' cosignatures within
seconds; a node that is down does not hold a checkpoint back; `provider proof` and `ledger
check-proof` accept a head only with a quorum of valid cosignatures by known node keys."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from coordinator import witnesses as witnesses_module
from coordinator.cluster_link import NodeEndpoint
from coordinator.server import CoordinatorConfig, RunningCoordinator, start_coordinator
from ledger.cosignature import Cosigner, add_cosignatures, cosign, valid_cosigners
from ledger.signed_note import split_note
from mpcnode.registry import InMemoryRegistry
from mpcnode.server import NodeConfig, RunningNode, start_node
from mutualmind.transport import channel_credentials, open_channel
from mutualmind.vocabulary.signing_keys import generate_signing_key, public_key_bytes
from provider.client import MarketClient
from tests.certs import ClusterCerts, ClusterCertsFactory

NODES = 3
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def certs(cluster_certs: ClusterCertsFactory) -> ClusterCerts:
    return cluster_certs(NODES)


@pytest.fixture
def cluster(tmp_path: Path, certs: ClusterCerts) -> Iterator[tuple[RunningCoordinator, list[RunningNode]]]:
    nodes = [start_node(NodeConfig(node_index=i, data_dir=tmp_path / f"node{i}", certs_dir=certs.folder),
                        InMemoryRegistry()) for i in range(NODES)]
    endpoints = tuple(NodeEndpoint(i, f"node{i}", f"127.0.0.1:{n.public_port}",
                                   f"127.0.0.1:{n.cluster_port}") for i, n in enumerate(nodes))
    coordinator = start_coordinator(CoordinatorConfig(
        certs_dir=certs.folder, data_dir=tmp_path / "coordinator", nodes=endpoints,
        dealer_address="127.0.0.1:1", checkpoint_interval_s=0.2))
    try:
        channel = open_channel(f"127.0.0.1:{coordinator.public_port}",
                               channel_credentials(certs.folder, None), server_name="coordinator")
        try:
            MarketClient(channel=channel, key=generate_signing_key(), provider_id="hospital-a").register()
        finally:
            channel.close()
        yield coordinator, nodes
    finally:
        coordinator.stop(grace=None)
        for node in nodes:
            node.stop(grace=None)


def _witnesses(certs: ClusterCerts) -> list[Cosigner]:
    return [Cosigner(m.name, m.signing_public_key or b"") for m in certs.manifest.nodes]


def _mint(coordinator: RunningCoordinator, amount: int) -> int:
    return coordinator.ledger.append("mint", {"to": "hospital-a", "amount": amount, "memo": "t"}).index


def _cosigned_head(coordinator: RunningCoordinator, certs: ClusterCerts, count: int,
                   timeout: float = 5.0) -> tuple[int, list[str], float]:
    """Wait until the newest checkpoint covers the whole log and carries `count` cosignatures."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        latest = coordinator.ledger.latest_checkpoint()
        if latest is not None and latest[0] == coordinator.ledger.size:
            names = [c.name for c in valid_cosigners(latest[1], _witnesses(certs))]
            if len(names) >= count:
                return latest[0], names, time.monotonic() - began
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint at size {coordinator.ledger.size} with {count} cosignatures "
                         f"within {timeout} s; newest: {coordinator.ledger.latest_checkpoint()}")


def _mutualmind(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mutualmind", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


def test_every_node_cosigns_and_a_down_node_holds_nothing_back(
        cluster: tuple[RunningCoordinator, list[RunningNode]], certs: ClusterCerts) -> None:
    coordinator, nodes = cluster
    _mint(coordinator, 10)
    size, names, _ = _cosigned_head(coordinator, certs, NODES)
    assert names == ["node0", "node1", "node2"]
    # the nodes' own records agree: each last cosigned that size
    assert all(b'"size": %d' % size in (n.config.data_dir / "witness.json").read_bytes() for n in nodes)
    # a stale idea of a node's size (its refusal: witness_size_mismatch) is mended in the
    # same round: the coordinator asks the node's size and sends the right proof
    assert coordinator.witnesses is not None
    coordinator.witnesses._sizes[0] = 1
    _mint(coordinator, 5)
    size, names, _ = _cosigned_head(coordinator, certs, NODES, timeout=3.0)  # < the 5 s backoff
    assert names == ["node0", "node1", "node2"]
    nodes[2].stop(grace=None)
    _mint(coordinator, 11)
    size2, names, waited = _cosigned_head(coordinator, certs, NODES - 1)
    assert size2 == size + 1 and names == ["node0", "node1"]
    assert waited < 3.0  # the signer's interval plus one cosigning round, not a stuck round
    # every stored checkpoint still verifies as the coordinator's (ledger verify reads them all)
    verified = _mutualmind("ledger", "verify", "--db", str(coordinator.ledger.path))
    assert verified.returncode == 0, verified.stderr


def test_a_node_back_from_downtime_catches_up_and_cosigns_again(
        cluster: tuple[RunningCoordinator, list[RunningNode]], certs: ClusterCerts,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(witnesses_module, "FIRST_BACKOFF_S", 0.4)  # keep the test short
    coordinator, nodes = cluster
    _mint(coordinator, 10)
    first, _, _ = _cosigned_head(coordinator, certs, NODES)
    config, port = nodes[2].config, nodes[2].cluster_port
    nodes[2].stop(grace=None)
    _mint(coordinator, 11)
    _cosigned_head(coordinator, certs, NODES - 1)
    _mint(coordinator, 12)
    size, names, _ = _cosigned_head(coordinator, certs, NODES - 1)
    assert "node2" not in names
    # the same node, its witness.json still at `first`, on the port the coordinator knows
    nodes[2] = start_node(replace(config, cluster_address=f"127.0.0.1:{port}"), InMemoryRegistry())
    size_again, names, _ = _cosigned_head(coordinator, certs, NODES)
    assert size_again == size > first and names == ["node0", "node1", "node2"]
    assert b'"size": %d' % size in (config.data_dir / "witness.json").read_bytes()


def test_proofs_demand_a_quorum_of_known_node_cosignatures(
        cluster: tuple[RunningCoordinator, list[RunningNode]], certs: ClusterCerts,
        tmp_path: Path) -> None:
    coordinator, nodes = cluster
    nodes[2].stop(grace=None)  # two of three nodes cosign from now on
    index = _mint(coordinator, 10)
    _cosigned_head(coordinator, certs, 2)
    vkey = coordinator.ledger.verifier_key()
    base = ("provider", "proof", "--coordinator", f"127.0.0.1:{coordinator.public_port}",
            "--certs", str(certs.folder), "--vkey", vkey, "--entry", str(index))
    out = tmp_path / "proof.json"
    done = _mutualmind(*base, "--quorum", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(", cosigned by 2 of 3 nodes")
    short = _mutualmind(*base, "--quorum", "3")
    assert short.returncode != 0 and short.stdout == ""
    assert short.stderr.strip().splitlines() == [
        "mutualmind: error: proof rejected: quorum not met: 2 valid cosignatures by known nodes "
        "(node0, node1), 3 needed"]
    # offline: the witness keys as `cluster witnesses` prints them from the manifest
    keys = _mutualmind("cluster", "witnesses", "--certs", str(certs.folder))
    assert keys.returncode == 0, keys.stderr
    witnesses = tmp_path / "witnesses.txt"
    witnesses.write_text(keys.stdout)
    assert [line.split("+")[0] for line in keys.stdout.splitlines()] == ["node0", "node1", "node2"]
    check = ("ledger", "check-proof", str(out), "--vkey", vkey)
    ok = _mutualmind(*check, "--witnesses", str(witnesses), "--quorum", "2")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().endswith(", cosigned by 2 of 3 known witnesses")
    too_few = _mutualmind(*check, "--witnesses", str(witnesses), "--quorum", "3")
    assert too_few.returncode == 1
    assert too_few.stderr.strip().splitlines() == [
        "proof rejected: quorum not met: 2 valid cosignatures by known nodes (node0, node1), 3 needed"]
    # a line by a key that is not node2's, under node2's name, adds nothing to the count
    document = json.loads(out.read_text())
    text, _ = split_note(document["checkpoint"])
    impostor = cosign(text, "node2", generate_signing_key(), int(time.time()))
    document["checkpoint"] = add_cosignatures(document["checkpoint"], [impostor])
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    padded = _mutualmind("ledger", "check-proof", str(forged), "--vkey", vkey,
                         "--witnesses", str(witnesses), "--quorum", "3")
    assert padded.returncode == 1
    assert padded.stderr.strip().splitlines() == [
        "proof rejected: quorum not met: 2 valid cosignatures by known nodes (node0, node1), 3 needed"]
    # a cosignature counts only under a key the verifier knows: a stranger's key finds none
    stranger = Cosigner("node0", public_key_bytes(generate_signing_key()))
    unknown = _mutualmind(*check, "--witness", stranger.vkey(), "--quorum", "1")
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines() == [
        "proof rejected: quorum not met: 0 valid cosignatures by known nodes (none), 1 needed"]
