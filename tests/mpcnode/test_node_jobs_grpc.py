"""MPC jobs through the nodes' real NodeControl API (mutual TLS), with the real dealer.

Three real node servers (`mpcnode.server.start_node`) hold shares of three providers'
rows; the coordinator's certificate starts the job on each over gRPC, the dealer starts
the TTP, all on the gRPC data plane; GetJob returns the revealed metrics, the node's signature over the attestation
bytes and its communication stats. Also: only the coordinator/admin may start jobs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from coordinator.dealer_client import DealerClient
from mpcnode.dealer_server import start_dealer
from mpcnode.registry import InMemoryRegistry
from mpcnode.server import NodeConfig, RunningNode, start_node
from mutualmind.errors import NotFound, PermissionDenied
from mutualmind.transport import channel_credentials, error_from_rpc_error, open_channel
from mutualmind.transport.pki import load_signing_key
from mutualmind.vocabulary.signing_keys import verify_signature
from proto import node_pb2, node_pb2_grpc
from tests.certs import ClusterCertsFactory
from tests.mpcnode.worker.cluster import free_port, job_plane, store_dataset

NODES = 3


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory,
          cluster_certs: ClusterCertsFactory) -> Iterator[tuple[Path, list[RunningNode]]]:
    root = tmp_path_factory.mktemp("grpc-jobs")
    certs = cluster_certs(NODES).folder
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(3).permutation(len(x))
    x, y = x[order], y[order].astype(float)
    dirs = [root / f"node{i}" for i in range(NODES)]
    for p, rows in enumerate(np.array_split(np.arange(450), 3)):
        store_dataset(dirs, f"p{p}", x[rows], y[rows])
    store_dataset(dirs, "val", x[450:], y[450:], purpose="validation")
    running = [start_node(NodeConfig(i, dirs[i], certs), InMemoryRegistry()) for i in range(NODES)]
    yield certs, running
    for node in running:
        node.stop()


def _stub(certs: Path, node: RunningNode, name: str) -> node_pb2_grpc.NodeControlStub:
    channel = open_channel(f"127.0.0.1:{node.cluster_port}", channel_credentials(certs, name), server_name=f"node{node.config.node_index}")
    return node_pb2_grpc.NodeControlStub(channel)


def _spec(rank: int, port: int, job_id: str = "grpc-job", plane: dict | None = None) -> node_pb2.JobSpec:
    plane = plane or job_plane(NODES)
    return node_pb2.JobSpec(
        job_id=job_id, round_id="round-g", world_size=NODES, rank=rank, master_addr="127.0.0.1",
        master_port=port, dataset_ids=["p0", "p1", "p2"], validation_dataset_id="val",
        model_spec_json='{"kind":"logistic","epochs":3}', job_digest=b"\x07" * 32, deadline_s=90.0,
        plane=plane["plane"], plane_addresses=plane["plane_addresses"], plane_members=plane["plane_members"],
    )


def test_a_job_runs_through_node_control_and_returns_signed_metrics(nodes: tuple[Path, list[RunningNode]]) -> None:
    certs, running = nodes
    port, plane = free_port(), job_plane(NODES)
    stubs = [_stub(certs, node, "coordinator") for node in running]
    for rank, stub in enumerate(stubs):
        assert stub.StartJob(_spec(rank, port, plane=plane), timeout=10).job_id == "grpc-job"
    dealer = start_dealer(certs, "127.0.0.1:0", certs.parent / "dealer")
    try:
        with open_channel(f"127.0.0.1:{dealer.port}", channel_credentials(certs, "coordinator"), server_name="dealer") as ch:
            DealerClient(ch).start("grpc-job", world_size=NODES, master_addr="127.0.0.1", master_port=port,
                                   deadline_s=90.0, **plane)  # type: ignore[arg-type]
            end = time.monotonic() + 90
            replies = [stub.GetJob(node_pb2.JobStatusRequest(job_id="grpc-job"), timeout=10) for stub in stubs]
            while any(r.state in ("queued", "running") for r in replies) and time.monotonic() < end:
                time.sleep(0.3)
                replies = [stub.GetJob(node_pb2.JobStatusRequest(job_id="grpc-job"), timeout=10) for stub in stubs]
    finally:
        dealer.stop()
    assert [r.state for r in replies] == ["done"] * NODES, [r.message for r in replies]
    payloads = {r.result.attestation_payload_json for r in replies}
    assert len(payloads) == 1
    body = json.loads(payloads.pop())
    assert body["round_id"] == "round-g" and body["job_digest"] == "07" * 32
    assert len(body["metrics_micro"]) == 4
    for index, reply in enumerate(replies):
        key = load_signing_key(certs, index).public_key()
        assert verify_signature(key, reply.result.attestation_payload_json.encode(), reply.result.attestation)
        assert list(reply.result.metrics) == pytest.approx([m / 1e6 for m in body["metrics_micro"]], abs=1e-6)
        stats = json.loads(reply.result.stats_json)
        assert stats["rounds"] > 0 and stats["rounds_per_step"] > 0 and stats["metric"] == "log_loss"
        assert 0.8 < stats["accuracy_full"] <= 1.0
        assert reply.progress == 1.0


def test_only_the_coordinator_or_admin_drives_jobs(nodes: tuple[Path, list[RunningNode]]) -> None:
    certs, running = nodes
    with pytest.raises(grpc.RpcError) as caught:
        _stub(certs, running[0], "node1").StartJob(_spec(0, free_port(), "from-node"), timeout=10)
    assert isinstance(error_from_rpc_error(caught.value), PermissionDenied)
    admin = _stub(certs, running[0], "admin")
    with pytest.raises(grpc.RpcError) as caught:
        admin.GetJob(node_pb2.JobStatusRequest(job_id="from-node"), timeout=10)
    assert isinstance(error_from_rpc_error(caught.value), NotFound)
    # an admin may cancel: the lone worker waits for peers until cancelled
    admin.StartJob(_spec(0, free_port(), "to-cancel"), timeout=10)
    assert admin.CancelJob(node_pb2.CancelJobRequest(job_id="to-cancel"), timeout=20).state == "cancelled"
