"""The `ClusterLink` contract (coordinator/cluster_link.py), run against every implementation.

`GrpcClusterLink` is the product's implementation: here it drives two real nodes and a
real dealer over mutual TLS on loopback. What `rounds.py` relies on, beyond running a
job (the round tests do that on real MPC workers): the nodes in index order, a health
word per node, `NotFound` for a job nobody started, and a malformed job order refused
before anything starts. Stand-ins used by other
tests (tests/coordinator/admin/settled_round.py, tests/provider/conftest.py) are not
implementations and are not listed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from coordinator.cluster_link import ClusterLink, JobOrder, NodeEndpoint
from coordinator.cluster_link_client import GrpcClusterLink
from mpcnode.dealer_server import start_dealer
from mpcnode.registry import InMemoryRegistry
from mpcnode.server import NodeConfig, start_node
from mutualmind.errors import InvalidInput, NotFound
from tests.certs import ClusterCertsFactory

NODES = 2
ORDER = JobOrder(job_id="contract-job", round_id="r-contract", world_size=NODES,
                 master_addr="127.0.0.1", master_port=1, dataset_ids=("a",),
                 validation_dataset_id="v", model_spec_json="{}", job_digest="00" * 32,
                 deadline_s=30.0)


@pytest.fixture(scope="module", params=["grpc"])
def link(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         cluster_certs: ClusterCertsFactory) -> Iterator[ClusterLink]:
    certs = cluster_certs(NODES).folder
    root = tmp_path_factory.mktemp("cluster-link")
    nodes = [start_node(NodeConfig(i, root / f"node{i}", certs), InMemoryRegistry())
             for i in range(NODES)]
    dealer = start_dealer(certs, "127.0.0.1:0", root / "dealer")
    endpoints = [NodeEndpoint(n.config.node_index, f"node{n.config.node_index}",
                              f"127.0.0.1:{n.public_port}", f"127.0.0.1:{n.cluster_port}")
                 for n in reversed(nodes)]   # given out of order on purpose
    grpc_link = GrpcClusterLink(endpoints, f"127.0.0.1:{dealer.port}", certs)
    try:
        yield grpc_link
    finally:
        grpc_link.close()
        dealer.stop()
        for node in nodes:
            node.stop()


def test_nodes_come_in_index_order(link: ClusterLink) -> None:
    assert [n.index for n in link.nodes] == list(range(NODES))
    assert [n.name for n in link.nodes] == [f"node{i}" for i in range(NODES)]


def test_every_running_node_reports_serving(link: ClusterLink) -> None:
    assert [link.node_health(n.index) for n in link.nodes] == ["SERVING"] * NODES


def test_a_job_nobody_started_is_not_found(link: ClusterLink) -> None:
    for node in link.nodes:
        with pytest.raises(NotFound, match="never-started"):
            link.job_report(node.index, "never-started")
        with pytest.raises(NotFound, match="never-started"):
            link.cancel_job(node.index, "never-started")
    with pytest.raises(NotFound, match="never-started"):
        link.stop_dealer("never-started")


def test_a_malformed_order_is_refused_and_starts_nothing(link: ClusterLink) -> None:
    bad = dataclasses.replace(ORDER, job_id="bad-digest", job_digest="00" * 8)
    with pytest.raises(InvalidInput, match="32-byte"):
        link.start_job(0, bad)
    with pytest.raises(NotFound):
        link.job_report(0, "bad-digest")
