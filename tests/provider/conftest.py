"""A real coordinator (ledger on a SQLite file, Market over TLS) and 3 real nodes that
learn registrations from it through `CoordinatorRegistry`.

The coordinator's cluster link (how it drives MPC jobs) is replaced by one that refuses
every job: these tests run no rounds, and the real link needs a dealer.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from coordinator.cluster_link import JobOrder, NodeEndpoint, NodeJobReport
from coordinator.server import CoordinatorConfig, RunningCoordinator, start_coordinator
from mpcnode.coordinator_client import CoordinatorRegistry
from mpcnode.server import NodeConfig, RunningNode, start_node
from mutualmind.errors import Unavailable
from mutualmind.transport import channel_credentials, open_channel
from mutualmind.transport.pki import ClusterManifest
from tests.certs import ClusterCertsFactory

NODES = 3


def free_port() -> int:
    """A loopback port free right now (bound and released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class NoJobsLink:
    """A cluster link for tests that run no MPC job: every job operation is refused."""

    def __init__(self, nodes: tuple[NodeEndpoint, ...]) -> None:
        self._nodes = nodes

    @property
    def nodes(self) -> tuple[NodeEndpoint, ...]:
        return self._nodes

    def _refuse(self, *_: object) -> None:
        raise Unavailable("this test cluster runs no MPC jobs")

    def start_dealer(self, order: JobOrder) -> None:
        self._refuse()

    def stop_dealer(self, job_id: str) -> None:
        self._refuse()

    def start_job(self, node_index: int, order: JobOrder) -> None:
        self._refuse()

    def job_report(self, node_index: int, job_id: str) -> NodeJobReport:
        raise Unavailable("this test cluster runs no MPC jobs")

    def cancel_job(self, node_index: int, job_id: str) -> None:
        self._refuse()

    def node_health(self, node_index: int) -> str:
        return "UNREACHABLE"


@dataclass
class Market:
    """The running coordinator, nodes, and what a provider needs to reach them."""

    certs: Path
    manifest: ClusterManifest
    coordinator: RunningCoordinator
    nodes: list[RunningNode]

    @property
    def coordinator_address(self) -> str:
        return f"127.0.0.1:{self.coordinator.public_port}"

    @property
    def node_addresses(self) -> list[str]:
        return [f"127.0.0.1:{n.public_port}" for n in self.nodes]

    @property
    def node_public_keys(self) -> list[bytes]:
        return [m.signing_public_key or b"" for m in self.manifest.nodes]

    def mint(self, to: str, amount: int) -> None:
        self.coordinator.ledger.append("mint", {"to": to, "amount": amount, "memo": "test"})


@pytest.fixture
def market(tmp_path: Path, cluster_certs: ClusterCertsFactory) -> Iterator[Market]:
    certs, manifest = cluster_certs(NODES).folder, cluster_certs(NODES).manifest
    # the nodes' public ports, picked up front so the coordinator's directory lists them
    publics = [f"127.0.0.1:{free_port()}" for _ in range(NODES)]
    endpoints = tuple(
        NodeEndpoint(index=i, name=f"node{i}", public_address=publics[i], cluster_address="127.0.0.1:1")
        for i in range(NODES)
    )
    coordinator = start_coordinator(
        CoordinatorConfig(certs_dir=certs, data_dir=tmp_path / "coordinator", nodes=endpoints,
                          dealer_address="127.0.0.1:1"),
        link=NoJobsLink(endpoints),
    )
    channels: list[grpc.Channel] = []
    nodes: list[RunningNode] = []
    try:
        for i in range(NODES):
            channel = open_channel(f"127.0.0.1:{coordinator.public_port}", channel_credentials(certs, f"node{i}"))
            channels.append(channel)
            config = NodeConfig(node_index=i, data_dir=tmp_path / f"node{i}", certs_dir=certs,
                                public_address=publics[i])
            nodes.append(start_node(config, CoordinatorRegistry(channel)))
        yield Market(certs=certs, manifest=manifest, coordinator=coordinator, nodes=nodes)
    finally:
        for node in nodes:
            node.stop(grace=None)
        for channel in channels:
            channel.close()
        coordinator.stop(grace=None)
