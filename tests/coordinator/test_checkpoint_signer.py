"""The coordinator signs a checkpoint seconds after its ledger grows, and on request: a real
coordinator (TLS gRPC on loopback, SQLite ledger), the real `mutualmind ledger` CLI."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from coordinator.cluster_link import NodeEndpoint
from coordinator.server import CoordinatorConfig, RunningCoordinator, start_coordinator
from ledger.checkpoint import open_checkpoint
from mutualmind.errors import InvalidInput
from mutualmind.transport import channel_credentials, open_channel
from mutualmind.vocabulary.signing_keys import generate_signing_key
from provider.client import MarketClient, fetch_inclusion_proof
from tests.certs import ClusterCertsFactory
from tests.provider.conftest import NoJobsLink

NODES = 3
ROOT = Path(__file__).resolve().parents[2]
Start = Callable[[float], RunningCoordinator]


@pytest.fixture
def start(tmp_path: Path, cluster_certs: ClusterCertsFactory) -> Iterator[Start]:
    running: list[RunningCoordinator] = []
    endpoints = tuple(NodeEndpoint(index=i, name=f"node{i}", public_address="127.0.0.1:1",
                                   cluster_address="127.0.0.1:1") for i in range(NODES))

    def _start(interval_s: float) -> RunningCoordinator:
        coordinator = start_coordinator(
            CoordinatorConfig(certs_dir=cluster_certs(NODES).folder, data_dir=tmp_path / "coordinator",
                              nodes=endpoints, dealer_address="127.0.0.1:1",
                              checkpoint_interval_s=interval_s),
            link=NoJobsLink(endpoints))
        running.append(coordinator)
        return coordinator

    yield _start
    for coordinator in running:
        coordinator.stop(grace=None)


def _mint(coordinator: RunningCoordinator, count: int, certs: Path) -> None:
    """Register a provider over the Market API (a self-signed entry), then mint to it."""
    channel = open_channel(f"127.0.0.1:{coordinator.public_port}", channel_credentials(certs, None),
                           server_name="coordinator")
    try:
        MarketClient(channel=channel, key=generate_signing_key(), provider_id="hospital-a").register()
    finally:
        channel.close()
    for i in range(count):
        coordinator.ledger.append("mint", {"to": "hospital-a", "amount": 10 + i, "memo": "test"})


def _mutualmind(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mutualmind", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


def test_a_grown_log_is_covered_by_a_checkpoint_within_seconds(
        start: Start, tmp_path: Path, cluster_certs: ClusterCertsFactory) -> None:
    coordinator = start(0.2)
    ledger = coordinator.ledger
    _mint(coordinator, 5, cluster_certs(NODES).folder)
    newest = ledger.size - 1
    deadline = time.monotonic() + 3
    while ledger.checkpointed_size < ledger.size and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ledger.checkpointed_size == ledger.size
    assert ledger.checkpoints()[-1][0] == ledger.size  # stored through the writer, not only in memory
    # the ledger CLI, reading the file while the coordinator runs, proves the newest entry
    out = tmp_path / "proof.json"
    made = _mutualmind("ledger", "proof", "--db", str(ledger.path), "--index", str(newest), "--out", str(out))
    assert made.returncode == 0, made.stderr
    checked = _mutualmind("ledger", "check-proof", str(out), "--vkey", ledger.verifier_key())
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"ok: entry {newest} (mint) is in {ledger.origin} at tree size {ledger.size}"
    # an idle log gets no more heads
    count = len(ledger.checkpoints())
    time.sleep(0.5)
    assert len(ledger.checkpoints()) == count


def test_inclusion_proof_rpc_signs_a_head_when_none_covers_the_entry(
        start: Start, cluster_certs: ClusterCertsFactory) -> None:
    coordinator = start(3600.0)  # the thread never ticks during the test: only the request signs
    ledger = coordinator.ledger
    _mint(coordinator, 3, cluster_certs(NODES).folder)
    newest = ledger.size - 1
    assert ledger.checkpointed_size <= newest
    channel = open_channel(f"127.0.0.1:{coordinator.public_port}",
                           channel_credentials(cluster_certs(NODES).folder, None), server_name="coordinator")
    try:
        reply = fetch_inclusion_proof(channel, newest)
        again = fetch_inclusion_proof(channel, 1)
        with pytest.raises(InvalidInput, match="does not exist"):
            fetch_inclusion_proof(channel, ledger.size + 5)
    finally:
        channel.close()
    head = open_checkpoint(reply.checkpoint_note, ledger.verifier_key())
    assert (reply.tree_size, head.size) == (ledger.size, ledger.size)
    assert '"kind": "mint"' in reply.entry_json
    assert again.checkpoint_note == reply.checkpoint_note  # a covering head is reused, not re-signed
    assert ledger.checkpoints()[-1] == (ledger.size, reply.checkpoint_note)


def test_the_signer_thread_stops_with_the_coordinator(start: Start) -> None:
    coordinator = start(0.1)
    assert any(t.name == "checkpoint-signer" for t in threading.enumerate())
    coordinator.stop(grace=None)
    assert not any(t.name == "checkpoint-signer" for t in threading.enumerate())
