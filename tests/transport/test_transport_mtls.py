"""mTLS on the cluster port, server TLS on the public port: who gets in and who does not.

Every server here is a real grpc server on 127.0.0.1 with certificates from a real
cluster folder; every refused caller is shown not to have reached the servicer.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from mutualmind.errors import IdentityMismatch, PermissionDenied, Unavailable
from mutualmind.transport import (
    RunningServer,
    channel_credentials,
    error_from_rpc_error,
    open_channel,
    probe_health,
    wait_until_serving,
)
from mutualmind.transport.pki import create_ca, issue_certificate, load_ca
from proto import admin_pb2, admin_pb2_grpc, node_pb2, node_pb2_grpc

ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name
INTAKE_SERVICE = node_pb2.DESCRIPTOR.services_by_name["ShareIntake"].full_name
HEALTH_SERVICE = "grpc.health.v1.Health"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def call_error(call: Callable[..., Any], request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=10)
    return info.value


def client_folder(tmp_path: Path, cluster_dir: Path, cert_pem: bytes,
                  key_pem: bytes) -> Path:
    """A folder trusting the real cluster CA but holding a given client cert as `intruder`."""
    folder = tmp_path / "client"
    folder.mkdir()
    shutil.copy(cluster_dir / "ca.pem", folder / "ca.pem")
    (folder / "intruder.pem").write_bytes(cert_pem)
    (folder / "intruder.key").write_bytes(key_pem)
    return folder


def assert_refused(channel: grpc.Channel, admin: Any) -> None:
    before = admin.calls
    err = call_error(admin_pb2_grpc.AdminStub(channel).ListNodes,
                     admin_pb2.ListNodesRequest())
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert isinstance(error_from_rpc_error(err), Unavailable)
    assert admin.calls == before, "a refused caller reached the servicer"


def test_health_answers_over_mtls(cluster_server: RunningServer, open_local: Any,
                                  cluster_dir: Path) -> None:
    channel = open_local(cluster_server.port, channel_credentials(cluster_dir, "admin"))
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", ADMIN_SERVICE, HEALTH_SERVICE):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == SERVING, service
    err = call_error(health.Check, health_pb2.HealthCheckRequest(service="no.Such"))
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_services_over_mtls(cluster_server: RunningServer,
                                             open_local: Any, cluster_dir: Path) -> None:
    channel = open_local(cluster_server.port, channel_credentials(cluster_dir, "node0"))
    database = ProtoReflectionDescriptorDatabase(channel)
    assert {ADMIN_SERVICE, HEALTH_SERVICE} <= set(database.get_services())
    assert database.FindFileContainingSymbol(ADMIN_SERVICE).name == "proto/admin.proto"


def test_member_certificates_get_in_and_roles_are_read(cluster_server: RunningServer,
                                                       admin_client: Any) -> None:
    for name, role in (("admin", "admin"), ("node1", "node"), ("dealer", "dealer"),
                       ("coordinator", "coordinator")):
        reply = admin_client(cluster_server.port, name).ListNodes(
            admin_pb2.ListNodesRequest(), timeout=10)
        assert (reply.nodes[0].name, reply.nodes[0].health) == (name, role)


def test_servicer_refuses_wrong_role(cluster_server: RunningServer,
                                     admin_client: Any) -> None:
    request = admin_pb2.MintRequest(provider_id="p", amount=5, memo="admin-only")
    assert admin_client(cluster_server.port, "admin").Mint(request, timeout=10).balance == 5
    err = call_error(admin_client(cluster_server.port, "node0").Mint, request)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    typed = error_from_rpc_error(err)
    assert isinstance(typed, PermissionDenied)
    assert "role admin" in typed.message and "role node" in typed.message


def test_no_client_certificate_refused(cluster_server: RunningServer, admin_servicer: Any,
                                       open_local: Any, cluster_dir: Path) -> None:
    channel = open_local(cluster_server.port, channel_credentials(cluster_dir, None))
    assert_refused(channel, admin_servicer)


def test_certificate_from_another_ca_refused(tmp_path: Path, cluster_dir: Path,
                                             cluster_server: RunningServer,
                                             admin_servicer: Any, open_local: Any) -> None:
    other_ca = create_ca("MutualMind cluster CA")  # same name as the real CA, other key
    issued = issue_certificate(other_ca, "admin", "admin")
    folder = client_folder(tmp_path, cluster_dir, issued.cert_pem, issued.key_pem)
    channel = open_local(cluster_server.port, channel_credentials(folder, "intruder"))
    assert_refused(channel, admin_servicer)


def test_expired_certificate_refused(tmp_path: Path, cluster_dir: Path,
                                     cluster_server: RunningServer, admin_servicer: Any,
                                     open_local: Any) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    issued = issue_certificate(load_ca(cluster_dir), "admin", "admin",
                               not_before=now - dt.timedelta(days=30),
                               not_after=now - dt.timedelta(days=1))
    folder = client_folder(tmp_path, cluster_dir, issued.cert_pem, issued.key_pem)
    channel = open_local(cluster_server.port, channel_credentials(folder, "intruder"))
    assert_refused(channel, admin_servicer)


def test_same_ca_fresh_certificate_accepted(tmp_path: Path, cluster_dir: Path,
                                            cluster_server: RunningServer,
                                            open_local: Any) -> None:
    """Control for the two tests above: the same path with a valid cert does get in."""
    issued = issue_certificate(load_ca(cluster_dir), "admin", "admin")
    folder = client_folder(tmp_path, cluster_dir, issued.cert_pem, issued.key_pem)
    channel = open_local(cluster_server.port, channel_credentials(folder, "intruder"))
    reply = admin_pb2_grpc.AdminStub(channel).ListNodes(admin_pb2.ListNodesRequest(),
                                                        timeout=10)
    assert reply.nodes[0].health == "admin"


def test_plaintext_channel_refused(cluster_server: RunningServer,
                                   admin_servicer: Any) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{cluster_server.port}") as channel:
        assert_refused(channel, admin_servicer)


def test_client_refuses_server_from_another_ca(tmp_path: Path, start_admin: Any,
                                               open_local: Any, cluster_dir: Path) -> None:
    """Server authentication: a server with a foreign certificate is not trusted."""
    issued = issue_certificate(create_ca(), "coordinator", "coordinator")
    folder = tmp_path / "impostor"
    folder.mkdir()
    (folder / "coordinator.pem").write_bytes(issued.cert_pem)
    (folder / "coordinator.key").write_bytes(issued.key_pem)
    running, impostor = start_admin(folder, "coordinator", False)
    channel = open_local(running.port, channel_credentials(cluster_dir, "admin"))
    assert_refused(channel, impostor)


def test_public_port_accepts_client_without_certificate(
        public_server: RunningServer, open_local: Any, cluster_dir: Path) -> None:
    channel = open_local(public_server.port, channel_credentials(cluster_dir, None))
    chunks = [node_pb2.ShareChunk(header=node_pb2.ShareHeader(dataset_id="d")),
              node_pb2.ShareChunk(data=b"\x00" * 64)]
    receipt = node_pb2_grpc.ShareIntakeStub(channel).UploadShare(iter(chunks), timeout=10)
    assert receipt.bytes_received == 64
    assert receipt.dataset_id == "anonymous"  # no certificate, so no role
    reply = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=INTAKE_SERVICE), timeout=10)
    assert reply.status == SERVING


def test_public_port_never_grants_a_role(public_server: RunningServer, open_local: Any,
                                         cluster_dir: Path) -> None:
    """A member certificate offered on the public port is not requested: still no role."""
    channel = open_local(public_server.port, channel_credentials(cluster_dir, "admin"))
    receipt = node_pb2_grpc.ShareIntakeStub(channel).UploadShare(
        iter([node_pb2.ShareChunk(data=b"\x01")]), timeout=10)
    assert receipt.dataset_id == "anonymous"


def test_public_port_refuses_plaintext(public_server: RunningServer) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{public_server.port}") as channel:
        err = call_error(health_pb2_grpc.HealthStub(channel).Check,
                         health_pb2.HealthCheckRequest())
    assert err.code() == grpc.StatusCode.UNAVAILABLE


def test_health_turns_not_serving_on_stop(start_admin: Any, open_local: Any,
                                          cluster_dir: Path) -> None:
    running, _ = start_admin(cluster_dir, "coordinator", True)
    health = health_pb2_grpc.HealthStub(
        open_local(running.port, channel_credentials(cluster_dir, "admin")))
    running.set_serving(False)
    reply = health.Check(health_pb2.HealthCheckRequest(service=ADMIN_SERVICE), timeout=10)
    assert reply.status == NOT_SERVING
    running.set_serving(True)
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == SERVING
    stopped = running.stop(grace=5)
    # Health flips before the server is gone (checked in-process: the port is closing).
    local = running.health.Check(health_pb2.HealthCheckRequest(service=""), None)
    assert local.status == NOT_SERVING
    assert stopped.wait(10)


def test_port_in_use_is_a_typed_error(cluster_server: RunningServer, start_admin: Any,
                                      cluster_dir: Path) -> None:
    with pytest.raises(Unavailable, match="in use"):
        start_admin(cluster_dir, "coordinator", True, f"127.0.0.1:{cluster_server.port}")


def test_health_watch_streams_through_the_interceptor(start_admin: Any, open_local: Any,
                                                      cluster_dir: Path) -> None:
    """Watch is server-streaming: it exercises the interceptor's streaming wrapper."""
    running, _ = start_admin(cluster_dir, "coordinator", True)
    health = health_pb2_grpc.HealthStub(
        open_local(running.port, channel_credentials(cluster_dir, "admin")))
    updates = health.Watch(health_pb2.HealthCheckRequest(service=ADMIN_SERVICE), timeout=10)
    assert next(updates).status == SERVING
    running.set_serving(False)
    assert next(updates).status == NOT_SERVING
    updates.cancel()


def test_probe_health_reports_like_list_nodes(start_admin: Any, cluster_dir: Path) -> None:
    running, _ = start_admin(cluster_dir, "coordinator", True)
    address = f"127.0.0.1:{running.port}"
    member = channel_credentials(cluster_dir, "admin")
    wait_until_serving(address, member, service=ADMIN_SERVICE, timeout=10)
    assert probe_health(address, member) == "SERVING"
    assert probe_health(address, member, service="no.Such") == "NOT_SERVING"
    # Without a client certificate the cluster port does not even answer health.
    assert probe_health(address, channel_credentials(cluster_dir, None)) == "UNREACHABLE"
    running.set_serving(False)
    assert probe_health(address, member) == "NOT_SERVING"
    with pytest.raises(Unavailable, match="still NOT_SERVING"):
        wait_until_serving(address, member, timeout=0.5)
    running.stop(0).wait()
    assert probe_health(address, member, timeout=1) == "UNREACHABLE"


@pytest.mark.parametrize("expected,presented", [
    ("coordinator", "node0"),   # node -> coordinator, admin -> coordinator
    ("node0", "node1"),         # provider / coordinator -> node 0
    ("dealer", "coordinator"),  # coordinator -> dealer
])
def test_a_channel_opened_for_one_member_refuses_another_members_server(
        start_admin: Any, cluster_dir: Path, expected: str, presented: str) -> None:
    """Same CA, valid certificate, wrong member: the handshake fails, no call is made."""
    running, admin = start_admin(cluster_dir, presented, True)
    address = f"127.0.0.1:{running.port}"
    with open_channel(address, channel_credentials(cluster_dir, "admin"),
                      server_name=expected) as channel:
        err = call_error(admin_pb2_grpc.AdminStub(channel).ListNodes,
                         admin_pb2.ListNodesRequest())
    typed = error_from_rpc_error(err)
    assert isinstance(typed, IdentityMismatch) and "identity mismatch" in typed.message
    assert admin.calls == 0
    assert probe_health(address, channel_credentials(cluster_dir, "admin"),
                        server_name=expected) == "UNREACHABLE"
    # control: the same server, asked for the member it is, answers
    with open_channel(address, channel_credentials(cluster_dir, "admin"),
                      server_name=presented) as channel:
        reply = admin_pb2_grpc.AdminStub(channel).ListNodes(admin_pb2.ListNodesRequest(),
                                                            timeout=10)
    assert reply.nodes[0].health == "admin" and admin.calls == 1
