"""A provider sends share i to node i and to nobody else (issue 11, identities).

The impostor is a real gRPC server on loopback with real TLS that holds node 1's genuine
certificate and key (as a compromised or misconfigured node 1 would) and listens on the
address the provider was given for node 0. It counts every call and byte it receives:
the handshake must fail before the provider sends a single byte of share 0.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from mutualmind.errors import EXIT_CODES, ErrorCode, IdentityMismatch
from mutualmind.transport import RunningServer, build_server, server_credentials
from mutualmind.vocabulary.signing_keys import load_private_key
from proto import node_pb2, node_pb2_grpc
from provider.cli import _node_channels
from provider.client import fetch_model_share

Market = Any  # the `market` fixture in conftest.py
ROOT = Path(__file__).resolve().parents[2]
INTAKE_SERVICE = node_pb2.DESCRIPTOR.services_by_name["ShareIntake"].full_name


class CountingIntake(node_pb2_grpc.ShareIntakeServicer):
    """Takes whatever it is sent and counts it; answers with an empty receipt."""

    def __init__(self) -> None:
        self.calls = 0
        self.bytes = 0
        self._lock = threading.Lock()

    def UploadShare(self, request_iterator: Iterator[node_pb2.ShareChunk],
                    context: grpc.ServicerContext) -> node_pb2.UploadReceipt:
        with self._lock:
            self.calls += 1
        for chunk in request_iterator:
            with self._lock:
                self.bytes += len(chunk.data)
        return node_pb2.UploadReceipt()

    def FetchModelShare(self, request: node_pb2.FetchModelShareRequest,
                        context: grpc.ServicerContext) -> Iterator[node_pb2.ModelShareChunk]:
        with self._lock:
            self.calls += 1
        return iter(())


@pytest.fixture
def impostor(market: Market) -> Iterator[tuple[RunningServer, CountingIntake]]:
    """A share port presenting node 1's certificate (node 1's real key)."""
    intake = CountingIntake()
    running = build_server(
        [(node_pb2_grpc.add_ShareIntakeServicer_to_server, intake)],
        credentials=server_credentials(market.certs, "node1", require_client_cert=False),
        service_names=[INTAKE_SERVICE], max_workers=4)
    yield running, intake
    running.stop(0).wait()


def _mutualmind(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mutualmind", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def test_a_server_with_node1s_certificate_on_node0s_address_gets_no_byte_of_share_0(
        market: Market, impostor: tuple[RunningServer, CountingIntake], tmp_path: Path) -> None:
    server, intake = impostor
    key = tmp_path / "p.key"
    assert _mutualmind("provider", "keygen", "--key", str(key), "--id", "clinic-9").returncode == 0
    common = ["--key", str(key), "--coordinator", market.coordinator_address,
              "--certs", str(market.certs)]
    assert _mutualmind("provider", "register", *common).returncode == 0
    csv_path = tmp_path / "t.csv"
    rng = np.random.default_rng(3)
    csv_path.write_text("a,b,y\n" + "".join(f"{rng.normal():.4f},{rng.normal():.4f},{i % 2}\n"
                                            for i in range(300)))
    nodes = [f"127.0.0.1:{server.port}", *market.node_addresses[1:]]
    run = _mutualmind("provider", "share", *common, "--dataset-id", "clinic-9-a",
                      "--csv", str(csv_path), "--label", "y",
                      *[arg for address in nodes for arg in ("--node", address)])
    assert run.returncode == EXIT_CODES[ErrorCode.PERMISSION_DENIED], run.stderr
    assert "identity mismatch" in run.stderr and "node 0" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert (intake.calls, intake.bytes) == (0, 0), "the impostor received part of share 0"
    assert market.nodes[0].store.list() == []     # nothing went anywhere as "node 0"


def test_model_collection_refuses_a_server_that_is_not_the_node(
        market: Market, impostor: tuple[RunningServer, CountingIntake], tmp_path: Path) -> None:
    """collect-model asks each node for its model share with the same pinning."""
    server, intake = impostor
    key = tmp_path / "s.key"
    assert _mutualmind("provider", "keygen", "--key", str(key), "--id", "sponsor-9").returncode == 0
    nodes = [f"127.0.0.1:{server.port}", *market.node_addresses[1:]]
    channels = _node_channels(argparse.Namespace(certs=market.certs, node=nodes))
    try:
        with pytest.raises(IdentityMismatch, match="not node 0"):
            fetch_model_share(channels[0], load_private_key(key), "sponsor-9", "r-1", 0,
                              node_public_key=market.node_public_keys[0], job_digest="00" * 32)
    finally:
        for channel in channels:
            channel.close()
    assert intake.calls == 0
