"""The node's cluster port: mutual TLS from the cluster CA, role checks, dataset listing."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import grpc
import numpy as np
import pytest

from mpcnode.server import RunningNode
from mpcnode.share_store import ShareSpec
from mutualmind.errors import NotFound, PermissionDenied, Unavailable
from mutualmind.transport import channel_credentials, error_from_rpc_error, open_channel
from mutualmind.transport.pki import create_ca, issue_certificate, load_ca
from mutualmind.vocabulary.dataset import TableSchema
from proto import node_pb2, node_pb2_grpc


def _client(tmp_path: Path, certs_dir: Path, cert_pem: bytes, key_pem: bytes) -> Path:
    """A client folder that trusts the real cluster CA and presents the given certificate."""
    folder = tmp_path / "client"
    folder.mkdir()
    shutil.copy(certs_dir / "ca.pem", folder / "ca.pem")
    (folder / "caller.pem").write_bytes(cert_pem)
    (folder / "caller.key").write_bytes(key_pem)
    return folder


def _list(node: RunningNode, credentials: grpc.ChannelCredentials) -> node_pb2.ListDatasetsReply:
    with open_channel(f"127.0.0.1:{node.cluster_port}", credentials) as channel:
        return node_pb2_grpc.NodeControlStub(channel).ListDatasets(node_pb2.ListDatasetsRequest(), timeout=10)


def _refused(node: RunningNode, credentials: grpc.ChannelCredentials) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        _list(node, credentials)
    return caught.value


@pytest.fixture
def node(start) -> RunningNode:  # type: ignore[no-untyped-def]
    node = start(0)
    data = np.arange(12, dtype=np.int64).reshape(4, 3)
    schema = TableSchema(("a", "b", "y"), ("a", "b"), "y")
    node.store.put_array(ShareSpec.of_array("heart", 0, data, provider_id="prov-x", schema=schema), data)
    return node


def test_coordinator_lists_and_describes(node: RunningNode, certs_dir: Path) -> None:
    reply = _list(node, channel_credentials(certs_dir, "coordinator"))
    assert [d.dataset_id for d in reply.datasets] == ["heart"]
    stored = reply.datasets[0]
    assert (stored.rows, stored.cols, stored.frac_bits, stored.size_bytes) == (4, 3, 16, 96)
    assert list(stored.schema.feature_columns) == ["a", "b"] and stored.schema.label_column == "y"
    assert stored.commitment == node.store.describe("heart").commitment
    with open_channel(f"127.0.0.1:{node.cluster_port}", channel_credentials(certs_dir, "admin")) as channel:
        stub = node_pb2_grpc.NodeControlStub(channel)
        assert stub.DescribeDataset(node_pb2.DescribeDatasetRequest(dataset_id="heart"), timeout=10) == stored
        with pytest.raises(grpc.RpcError) as caught:
            stub.DescribeDataset(node_pb2.DescribeDatasetRequest(dataset_id="nope"), timeout=10)
        assert isinstance(error_from_rpc_error(caught.value), NotFound)
        with pytest.raises(grpc.RpcError) as caught:
            stub.StartJob(node_pb2.JobSpec(job_id="j"), timeout=10)
        # jobs are wired in (mpcnode.jobs): an empty spec is refused as invalid input
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "world size 0" in (caught.value.details() or "")


def test_no_client_certificate_is_refused(node: RunningNode, certs_dir: Path) -> None:
    err = _refused(node, channel_credentials(certs_dir, None))
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert isinstance(error_from_rpc_error(err), Unavailable)


def test_certificate_from_another_ca_is_refused(node: RunningNode, certs_dir: Path, tmp_path: Path) -> None:
    other = issue_certificate(create_ca("Rogue CA"), "coordinator", "coordinator")
    folder = _client(tmp_path, certs_dir, other.cert_pem, other.key_pem)
    assert _refused(node, channel_credentials(folder, "caller")).code() == grpc.StatusCode.UNAVAILABLE


def test_expired_certificate_is_refused(node: RunningNode, certs_dir: Path, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    expired = issue_certificate(
        load_ca(certs_dir), "coordinator", "coordinator",
        not_before=now - dt.timedelta(days=10), not_after=now - dt.timedelta(days=1),
    )
    folder = _client(tmp_path, certs_dir, expired.cert_pem, expired.key_pem)
    assert _refused(node, channel_credentials(folder, "caller")).code() == grpc.StatusCode.UNAVAILABLE


def test_valid_certificate_with_wrong_role_is_denied(node: RunningNode, certs_dir: Path) -> None:
    err = _refused(node, channel_credentials(certs_dir, "dealer"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    refusal = error_from_rpc_error(err)
    assert isinstance(refusal, PermissionDenied) and "role coordinator or admin or node" in refusal.message


def test_public_port_needs_the_cluster_ca(node: RunningNode, tmp_path: Path) -> None:
    """A provider that trusts some other CA cannot be fooled into uploading to an impostor,
    and here: does not complete the handshake with the real node."""
    rogue = tmp_path / "rogue"
    rogue.mkdir()
    (rogue / "ca.pem").write_bytes(create_ca("Rogue CA").cert_pem)
    with open_channel(f"127.0.0.1:{node.public_port}", channel_credentials(rogue, None)) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            node_pb2_grpc.ShareIntakeStub(channel).UploadShare(iter(()), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
