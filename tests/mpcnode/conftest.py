"""Real node servers on loopback with real TLS, from the session's cluster folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mpcnode.registry import InMemoryRegistry
from mpcnode.server import NodeConfig, RunningNode, start_node
from mpcnode.upload_guard import StallPolicy, StreamLimits
from mutualmind.transport import channel_credentials, open_channel
from mutualmind.transport.pki import ClusterManifest
from mutualmind.vocabulary.quotas import StorageQuota
from mutualmind.vocabulary.signing_keys import generate_signing_key, public_key_bytes
from tests.certs import ClusterCertsFactory

NODES = 3


@pytest.fixture(scope="session")
def cluster(cluster_certs: ClusterCertsFactory) -> tuple[Path, ClusterManifest]:
    ready = cluster_certs(NODES)
    return ready.folder, ready.manifest


@pytest.fixture(scope="session")
def certs_dir(cluster: tuple[Path, ClusterManifest]) -> Path:
    return cluster[0]


@pytest.fixture(scope="session")
def node_public_keys(cluster: tuple[Path, ClusterManifest]) -> list[bytes]:
    return [m.signing_public_key or b"" for m in cluster[1].nodes]


@dataclass
class Provider:
    key: Ed25519PrivateKey
    provider_id: str

    @property
    def public_key(self) -> bytes:
        return public_key_bytes(self.key)


@pytest.fixture
def provider() -> Provider:
    key = generate_signing_key()
    return Provider(key=key, provider_id="hospital-a")


@pytest.fixture
def registry() -> InMemoryRegistry:
    return InMemoryRegistry()


@pytest.fixture
def start(
    tmp_path: Path, certs_dir: Path, registry: InMemoryRegistry
) -> Iterator[Callable[..., RunningNode]]:
    """Start node i with its own data dir (and an optional quota); stopped after the test."""
    running: list[RunningNode] = []

    def _start(index: int, *, quota: StorageQuota = StorageQuota(), stall: StallPolicy = StallPolicy(),
               streams: StreamLimits = StreamLimits()) -> RunningNode:
        config = NodeConfig(
            node_index=index,
            data_dir=tmp_path / f"node{index}-{len(running)}",
            certs_dir=certs_dir,
            quota=quota,
            stall=stall,
            streams=streams,
        )
        node = start_node(config, registry)
        running.append(node)
        return node

    yield _start
    for node in running:
        node.stop(grace=None)


@pytest.fixture
def nodes(start: Callable[..., RunningNode]) -> list[RunningNode]:
    return [start(i) for i in range(NODES)]


@pytest.fixture
def public_channels(nodes: list[RunningNode], certs_dir: Path) -> Iterator[list[grpc.Channel]]:
    """What a provider opens: server-side TLS trusting the cluster CA, no client cert."""
    credentials = channel_credentials(certs_dir, None)
    channels = [open_channel(f"127.0.0.1:{n.public_port}", credentials) for n in nodes]
    yield channels
    for channel in channels:
        channel.close()
