"""The `DatasetRegistry` contract (mpcnode/registry.py), run against every implementation.

`InMemoryRegistry` is handed registrations directly; `CoordinatorRegistry` asks a real
coordinator (its ledger on SQLite, its Market API over TLS on loopback) with which the
provider registered itself and its dataset. Both must hand out exactly the registration
the provider signed, a `NotFound` for an id nobody registered, and never a registration
whose provider signature does not verify.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.cluster_link import NodeEndpoint
from coordinator.server import CoordinatorConfig, start_coordinator
from mpcnode.coordinator_client import CoordinatorRegistry
from mpcnode.registry import DatasetRegistry, InMemoryRegistry
from mutualmind.errors import InvalidInput, MutualMindError, NotFound
from mutualmind.transport import channel_credentials, open_channel, raise_from_rpc_error
from mutualmind.vocabulary.dataset import TableSchema
from mutualmind.vocabulary.signed_requests import (
    signed_dataset_registration,
    signed_register_provider,
)
from mutualmind.vocabulary.signing_keys import generate_signing_key, public_key_bytes
from proto import common_pb2, market_pb2_grpc
from tests.certs import ClusterCertsFactory

NODES = 3
SCHEMA = TableSchema(("x0", "x1", "y"), ("x0", "x1"), "y")


@dataclass
class Registries:
    """One implementation, and how a provider gets a registration to where it looks."""

    registry: DatasetRegistry
    publish: Callable[[Ed25519PrivateKey, common_pb2.DatasetRegistration], None]


def _registration(key: Ed25519PrivateKey, provider_id: str, dataset_id: str,
                  purpose: str = "training") -> common_pb2.DatasetRegistration:
    return signed_dataset_registration(
        key, dataset_id=dataset_id, provider_id=provider_id, rows=25, cols=3, frac_bits=16,
        schema=SCHEMA, share_commitments=[bytes([i + 1]) * 32 for i in range(NODES)],
        purpose=purpose)


@pytest.fixture(params=["in_memory", "coordinator"])
def registries(request: pytest.FixtureRequest, tmp_path: Path,
               cluster_certs: ClusterCertsFactory) -> Iterator[Registries]:
    if request.param == "in_memory":
        memory = InMemoryRegistry()

        def hand_over(key: Ed25519PrivateKey, reg: common_pb2.DatasetRegistration) -> None:
            memory.add(reg, public_key_bytes(key))

        yield Registries(memory, hand_over)
        return
    certs = cluster_certs(NODES).folder
    endpoints = tuple(NodeEndpoint(i, f"node{i}", "127.0.0.1:1", "127.0.0.1:1") for i in range(NODES))
    coordinator = start_coordinator(CoordinatorConfig(
        certs_dir=certs, data_dir=tmp_path / "coordinator", nodes=endpoints,
        dealer_address="127.0.0.1:1"))
    channel = open_channel(f"127.0.0.1:{coordinator.public_port}", channel_credentials(certs, "node0"))
    market = market_pb2_grpc.MarketStub(channel)
    registered: set[str] = set()

    def publish(key: Ed25519PrivateKey, reg: common_pb2.DatasetRegistration) -> None:
        try:
            if reg.provider_id not in registered:
                market.RegisterProvider(signed_register_provider(key, reg.provider_id), timeout=10)
                registered.add(reg.provider_id)
            market.RegisterDataset(reg, timeout=10)
        except grpc.RpcError as err:
            raise_from_rpc_error(err)

    try:
        yield Registries(CoordinatorRegistry(channel), publish)
    finally:
        channel.close()
        coordinator.stop(grace=None)


def test_a_registered_dataset_comes_back_as_the_provider_signed_it(registries: Registries) -> None:
    key = generate_signing_key()
    registration = _registration(key, "clinic-a", "clinic-a-visits")
    registries.publish(key, registration)
    found = registries.registry.get("clinic-a-visits")
    assert (found.dataset_id, found.provider_id, found.rows, found.cols, found.frac_bits,
            found.purpose) == ("clinic-a-visits", "clinic-a", 25, 3, 16, "training")
    assert found.provider_public_key == public_key_bytes(key)
    assert found.schema == SCHEMA
    assert found.share_commitments == tuple(registration.share_commitments)
    assert [found.spec_for(i).commitment for i in range(NODES)] == list(registration.share_commitments)
    with pytest.raises(InvalidInput, match="no share for node 3"):
        found.spec_for(NODES)
    assert registries.registry.get("clinic-a-visits") == found   # asking again: the same


def test_datasets_of_different_providers_are_told_apart(registries: Registries) -> None:
    a, b = generate_signing_key(), generate_signing_key()
    registries.publish(a, _registration(a, "clinic-a", "a-rows"))
    registries.publish(b, _registration(b, "clinic-b", "b-rows", purpose="validation"))
    first, second = registries.registry.get("a-rows"), registries.registry.get("b-rows")
    assert (first.provider_id, first.provider_public_key, first.purpose) == (
        "clinic-a", public_key_bytes(a), "training")
    assert (second.provider_id, second.provider_public_key, second.purpose) == (
        "clinic-b", public_key_bytes(b), "validation")


def test_an_unknown_dataset_is_not_found(registries: Registries) -> None:
    with pytest.raises(NotFound, match="never-registered"):
        registries.registry.get("never-registered")


def test_a_registration_whose_signature_fails_is_never_handed_out(registries: Registries) -> None:
    key = generate_signing_key()
    forged = _registration(key, "clinic-a", "forged-rows")
    forged.rows = 26   # changed after signing
    with pytest.raises(MutualMindError):
        registries.publish(key, forged)
    with pytest.raises(NotFound):
        registries.registry.get("forged-rows")
