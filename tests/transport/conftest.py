"""Real cluster folders, real TLS servers on 127.0.0.1 and test servicers.

The servicers implement the generated Admin and ShareIntake services: each method does
what a test needs (echo the caller's name and role, raise a chosen error) and counts
calls, so a refused connection can be shown never to have reached a handler.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from mutualmind.transport import (
    RunningServer,
    build_server,
    channel_credentials,
    open_channel,
    peer_name,
    peer_role,
    require_role,
    server_credentials,
)
from proto import admin_pb2, admin_pb2_grpc, node_pb2, node_pb2_grpc
from tests.certs import ClusterCertsFactory

ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name
INTAKE_SERVICE = node_pb2.DESCRIPTOR.services_by_name["ShareIntake"].full_name


class RecordingAdmin(admin_pb2_grpc.AdminServicer):
    """ListNodes echoes the caller; Mint raises `to_raise` or acts on `memo` commands."""

    def __init__(self) -> None:
        self.calls = 0
        self.to_raise: Exception | None = None
        self._lock = threading.Lock()

    def _count(self) -> None:
        with self._lock:
            self.calls += 1

    def ListNodes(self, request: admin_pb2.ListNodesRequest,
                  context: grpc.ServicerContext) -> admin_pb2.ListNodesReply:
        self._count()
        return admin_pb2.ListNodesReply(nodes=[admin_pb2.NodeInfo(
            name=peer_name(context) or "", health=peer_role(context) or "")])

    def Mint(self, request: admin_pb2.MintRequest,
             context: grpc.ServicerContext) -> admin_pb2.MintReply:
        self._count()
        if request.memo == "admin-only":
            require_role(context, "admin")
            return admin_pb2.MintReply(balance=request.amount)
        if request.memo == "abort-itself":
            context.abort(grpc.StatusCode.NOT_FOUND, "no such provider p1")
        if self.to_raise is not None:
            raise self.to_raise
        return admin_pb2.MintReply(ledger_index=1, balance=request.amount)


class RefusingIntake(node_pb2_grpc.ShareIntakeServicer):
    """Reads the whole upload stream, then raises `to_raise` (if set) or gives a receipt."""

    def __init__(self) -> None:
        self.to_raise: Exception | None = None

    def UploadShare(self, request_iterator: Iterator[node_pb2.ShareChunk],
                    context: grpc.ServicerContext) -> node_pb2.UploadReceipt:
        received = sum(len(chunk.data) for chunk in request_iterator)
        if self.to_raise is not None:
            raise self.to_raise
        return node_pb2.UploadReceipt(bytes_received=received,
                                      dataset_id=peer_role(context) or "anonymous")


StartAdmin = Callable[..., tuple[RunningServer, RecordingAdmin]]
AdminClient = Callable[..., admin_pb2_grpc.AdminStub]
OpenChannel = Callable[[int, grpc.ChannelCredentials], grpc.Channel]


@pytest.fixture(scope="session")
def cluster_dir(cluster_certs: ClusterCertsFactory) -> Path:
    return cluster_certs(2).folder


@pytest.fixture(scope="module")
def admin_servicer() -> RecordingAdmin:
    return RecordingAdmin()


@pytest.fixture(scope="module")
def cluster_server(cluster_dir: Path,
                   admin_servicer: RecordingAdmin) -> Iterator[RunningServer]:
    """The coordinator's cluster port: mutual TLS."""
    running = build_server(
        [(admin_pb2_grpc.add_AdminServicer_to_server, admin_servicer)],
        credentials=server_credentials(cluster_dir, "coordinator", require_client_cert=True),
        service_names=[ADMIN_SERVICE], max_workers=4)
    yield running
    running.stop(0).wait()


@pytest.fixture(scope="module")
def intake_servicer() -> RefusingIntake:
    return RefusingIntake()


@pytest.fixture(scope="module")
def public_server(cluster_dir: Path,
                  intake_servicer: RefusingIntake) -> Iterator[RunningServer]:
    """node0's public port: server-side TLS only."""
    running = build_server(
        [(node_pb2_grpc.add_ShareIntakeServicer_to_server, intake_servicer)],
        credentials=server_credentials(cluster_dir, "node0", require_client_cert=False),
        service_names=[INTAKE_SERVICE], max_workers=4)
    yield running
    running.stop(0).wait()


@pytest.fixture
def start_admin() -> Iterator[StartAdmin]:
    """Start an extra Admin server: start(certs_dir, name, require_client_cert, address)."""
    started: list[RunningServer] = []

    def start(certs_dir: Path, name: str, require_client_cert: bool,
              address: str = "127.0.0.1:0") -> tuple[RunningServer, RecordingAdmin]:
        admin = RecordingAdmin()
        running = build_server(
            [(admin_pb2_grpc.add_AdminServicer_to_server, admin)], address=address,
            credentials=server_credentials(certs_dir, name,
                                           require_client_cert=require_client_cert),
            service_names=[ADMIN_SERVICE], max_workers=2)
        started.append(running)
        return running, admin

    yield start
    for running in started:
        running.stop(0).wait()


@pytest.fixture
def open_local() -> Iterator[OpenChannel]:
    """open(port, credentials) -> a channel to 127.0.0.1:port, closed after the test."""
    channels: list[grpc.Channel] = []

    def open_(port: int, credentials: grpc.ChannelCredentials) -> grpc.Channel:
        channel = open_channel(f"127.0.0.1:{port}", credentials)
        channels.append(channel)
        return channel

    yield open_
    for channel in channels:
        channel.close()


@pytest.fixture
def admin_client(cluster_dir: Path, open_local: OpenChannel) -> AdminClient:
    """client(port, name="admin") -> an Admin stub presenting member `name`'s cert."""

    def client(port: int, name: str | None = "admin") -> admin_pb2_grpc.AdminStub:
        return admin_pb2_grpc.AdminStub(
            open_local(port, channel_credentials(cluster_dir, name)))

    return client
