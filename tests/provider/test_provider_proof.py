"""`mutualmind provider proof --entry N` as a real subprocess against a real coordinator
(TLS gRPC on loopback, SQLite ledger): the proof is fetched over the public port and
checked offline against the coordinator's verifier key; a tampered proof or another
coordinator's key is refused with one line and no file."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.cluster_link import NodeEndpoint
from coordinator.server import CoordinatorConfig, RunningCoordinator, start_coordinator
from ledger.signed_note import verifier_key_string
from mutualmind.errors import IntegrityError
from mutualmind.transport import channel_credentials, open_channel
from mutualmind.vocabulary.signing_keys import generate_signing_key
from provider.client import MarketClient, fetch_inclusion_proof
from provider.proof import check_reply
from tests.certs import ClusterCertsFactory
from tests.provider.conftest import NoJobsLink

NODES = 3
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def coordinator(tmp_path: Path, cluster_certs: ClusterCertsFactory) -> Iterator[RunningCoordinator]:
    certs = cluster_certs(NODES).folder
    endpoints = tuple(NodeEndpoint(index=i, name=f"node{i}", public_address="127.0.0.1:1",
                                   cluster_address="127.0.0.1:1") for i in range(NODES))
    running = start_coordinator(
        CoordinatorConfig(certs_dir=certs, data_dir=tmp_path / "coordinator", nodes=endpoints,
                          dealer_address="127.0.0.1:1", checkpoint_interval_s=3600.0),
        link=NoJobsLink(endpoints))
    try:
        channel = open_channel(f"127.0.0.1:{running.public_port}", channel_credentials(certs, None),
                               server_name="coordinator")
        try:
            MarketClient(channel=channel, key=generate_signing_key(), provider_id="hospital-a").register()
        finally:
            channel.close()
        running.ledger.append("mint", {"to": "hospital-a", "amount": 100, "memo": "test"})
        yield running
    finally:
        running.stop(grace=None)


def _proof(coordinator: RunningCoordinator, certs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mutualmind", "provider", "proof", "--coordinator",
         f"127.0.0.1:{coordinator.public_port}", "--certs", str(certs), *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_provider_proof_fetches_and_checks_the_newest_entry(
        coordinator: RunningCoordinator, cluster_certs: ClusterCertsFactory, tmp_path: Path) -> None:
    ledger, certs = coordinator.ledger, cluster_certs(NODES).folder
    newest, vkey, out = ledger.size - 1, ledger.verifier_key(), tmp_path / "proof.json"
    done = _proof(coordinator, certs, "--entry", str(newest), "--vkey", vkey, "--out", str(out))
    assert done.returncode == 0, done.stderr
    # no checkpoint covered the mint before the call (the thread never ticks): one was signed for it
    assert done.stdout == f"ok: entry {newest} (mint) is in {ledger.origin} at tree size {ledger.size}\n"
    checked = subprocess.run([sys.executable, "-m", "mutualmind", "ledger", "check-proof", str(out),
                              "--vkey", vkey], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == done.stdout.strip()
    # the file as saved, with one byte of its entry changed, is refused by the ledger CLI
    document = json.loads(out.read_text())
    document["entry"]["payload_json"] = document["entry"]["payload_json"].replace("100", "900")
    out.write_text(json.dumps(document))
    tampered = subprocess.run([sys.executable, "-m", "mutualmind", "ledger", "check-proof", str(out),
                               "--vkey", vkey], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert tampered.returncode != 0
    assert "proof rejected" in tampered.stderr


def test_another_coordinators_key_is_refused_in_one_line(
        coordinator: RunningCoordinator, cluster_certs: ClusterCertsFactory, tmp_path: Path) -> None:
    other = verifier_key_string(coordinator.ledger.origin, generate_signing_key())
    out = tmp_path / "proof.json"
    done = _proof(coordinator, cluster_certs(NODES).folder, "--entry", "1", "--vkey", other, "--out", str(out))
    assert done.returncode != 0
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert "proof rejected" in done.stderr
    assert not out.exists()  # nothing left behind


def test_an_entry_beyond_the_ledger_is_refused_in_one_line(
        coordinator: RunningCoordinator, cluster_certs: ClusterCertsFactory) -> None:
    size = coordinator.ledger.size
    done = _proof(coordinator, cluster_certs(NODES).folder, "--entry", str(size + 3),
                  "--vkey", coordinator.ledger.verifier_key())
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        f"mutualmind: error: entry {size + 3} does not exist; the ledger holds {size} entries "
        f"(indexes 0..{size - 1})"]


@pytest.mark.parametrize("tamper", ["path", "entry", "head", "other-entry"])
def test_a_tampered_reply_is_rejected(
        coordinator: RunningCoordinator, cluster_certs: ClusterCertsFactory, tamper: str) -> None:
    ledger = coordinator.ledger
    channel = open_channel(f"127.0.0.1:{coordinator.public_port}",
                           channel_credentials(cluster_certs(NODES).folder, None), server_name="coordinator")
    try:
        reply = fetch_inclusion_proof(channel, 1)
    finally:
        channel.close()
    vkey = ledger.verifier_key()
    check_reply(reply, 1, vkey)  # the untouched reply holds up
    asked = 1
    if tamper == "path":
        first = bytearray(reply.proof[0])
        first[0] ^= 1
        reply.proof[0] = bytes(first)
    elif tamper == "entry":
        reply.entry_json = reply.entry_json.replace('"kind": "node_registered"', '"kind": "mint"')
    elif tamper == "head":
        reply.checkpoint_note = reply.checkpoint_note.replace(f"\n{ledger.size}\n", f"\n{ledger.size + 1}\n")
    else:
        asked = 2  # a valid proof, but of another entry than the one asked for
    with pytest.raises(IntegrityError, match="^proof rejected: "):
        check_reply(reply, asked, vkey)
