"""A node does not take the coordinator's word for a registration: it checks the
provider's signature itself. Here the coordinator is an adversary that alters a
registration it relays; the node must refuse the upload and store nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from mpcnode.coordinator_client import CoordinatorRegistry
from mpcnode.server import NodeConfig, start_node
from mutualmind.errors import IntegrityError, NotFound, PermissionDenied, Unavailable
from mutualmind.transport import (
    build_server,
    channel_credentials,
    open_channel,
    server_credentials,
)
from mutualmind.vocabulary.dataset import TableSchema
from mutualmind.vocabulary.fixed_point import FRAC_BITS
from mutualmind.vocabulary.signed_requests import signed_dataset_registration
from proto import common_pb2, market_pb2, market_pb2_grpc
from provider.client import upload_share
from provider.sharing import Table, share_table

Provider = Any  # the `provider` fixture in conftest.py


class RelayingMarket(market_pb2_grpc.MarketServicer):
    """Answers GetDataset from a dict of (registration, key) - altered or not."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[common_pb2.DatasetRegistration, bytes]] = {}

    def GetDataset(self, request: market_pb2.GetDatasetRequest, context: grpc.ServicerContext) -> market_pb2.GetDatasetReply:
        if request.dataset_id not in self.entries:
            raise NotFound(f"dataset {request.dataset_id!r} is not registered")
        registration, key = self.entries[request.dataset_id]
        return market_pb2.GetDatasetReply(registration=registration, provider_public_key=key, ledger_index=7)


@pytest.fixture
def relay(certs_dir: Path) -> Iterator[tuple[RelayingMarket, int]]:
    servicer = RelayingMarket()
    server = build_server(
        [(market_pb2_grpc.add_MarketServicer_to_server, servicer)],
        credentials=server_credentials(certs_dir, "coordinator", require_client_cert=False),
        service_names=[market_pb2.DESCRIPTOR.services_by_name["Market"].full_name],
    )
    yield servicer, server.port
    server.stop(None).wait()


def test_node_refuses_a_registration_altered_by_the_coordinator(
    relay: tuple[RelayingMarket, int], certs_dir: Path, tmp_path: Path, provider: Provider
) -> None:
    servicer, port = relay
    shared = share_table(Table(np.ones((10, 2)), TableSchema(("x", "y"), ("x",), "y")), 3)
    genuine = signed_dataset_registration(
        provider.key, dataset_id="d", provider_id=provider.provider_id, rows=10, cols=2, frac_bits=FRAC_BITS,
        schema=shared.schema, share_commitments=list(shared.commitments),
    )
    forged_share = share_table(Table(np.zeros((10, 2)), shared.schema), 3)
    altered = common_pb2.DatasetRegistration()
    altered.CopyFrom(genuine)
    altered.share_commitments[0] = forged_share.commitments[0]  # lets other bytes in
    servicer.entries["d"] = (altered, provider.public_key)
    servicer.entries["ok"] = (signed_dataset_registration(
        provider.key, dataset_id="ok", provider_id=provider.provider_id, rows=10, cols=2, frac_bits=FRAC_BITS,
        schema=shared.schema, share_commitments=list(shared.commitments),
    ), provider.public_key)
    servicer.entries["swapped"] = (genuine, provider.public_key)  # a valid answer to another question

    with open_channel(f"127.0.0.1:{port}", channel_credentials(certs_dir, "node0")) as coordinator:
        registry = CoordinatorRegistry(coordinator)
        assert registry.get("ok").share_commitments == tuple(shared.commitments)
        with pytest.raises(NotFound, match="'nope' is not registered"):
            registry.get("nope")
        with pytest.raises(IntegrityError, match="answered for dataset 'd' when asked for 'swapped'"):
            registry.get("swapped")
        node = start_node(NodeConfig(node_index=0, data_dir=tmp_path / "n0", certs_dir=certs_dir), registry)
        try:
            with open_channel(f"127.0.0.1:{node.public_port}", channel_credentials(certs_dir, None)) as channel:
                with pytest.raises(PermissionDenied, match="not signed by provider"):
                    upload_share(channel, "d", 0, forged_share.shares[0])
            assert node.store.list() == []
        finally:
            node.stop(grace=None)


def test_unreachable_coordinator_is_unavailable_for_the_uploader(
    certs_dir: Path, tmp_path: Path, provider: Provider
) -> None:
    """The provider learns that the node's coordinator link is down, not that the node is."""
    import socket

    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    shared = share_table(Table(np.ones((4, 2)), TableSchema(("x", "y"), ("x",), "y")), 3)
    with open_channel(f"127.0.0.1:{dead}", channel_credentials(certs_dir, "node0")) as coordinator:
        node = start_node(NodeConfig(node_index=0, data_dir=tmp_path / "n0", certs_dir=certs_dir),
                          CoordinatorRegistry(coordinator, timeout_s=2.0))
        try:
            with open_channel(f"127.0.0.1:{node.public_port}", channel_credentials(certs_dir, None)) as channel:
                with pytest.raises(Unavailable, match="cannot reach the coordinator to look up dataset 'd'"):
                    upload_share(channel, "d", 0, shared.shares[0])
            assert node.store.list() == []
        finally:
            node.stop(grace=None)
