"""The `MarketView` contract (mpcnode/market_view.py), run against every implementation.

`CoordinatorMarket` is the one implementation in the product: it asks a real coordinator
(SQLite ledger, Market API over TLS on loopback) where a sponsor opened a round with its
own signature. A new implementation joins the `params` list and must pass the same
tests: the round's terms exactly as the sponsor signed them, the coordinator's status
kept apart, the provider's registered key, and `NotFound` for unknown names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.cluster_link import NodeEndpoint
from coordinator.server import CoordinatorConfig, start_coordinator
from mpcnode.coordinator_client import CoordinatorMarket
from mpcnode.market_view import MarketView
from mutualmind.errors import NotFound
from mutualmind.transport import channel_credentials, open_channel
from mutualmind.vocabulary.dataset import TableSchema
from mutualmind.vocabulary.round_open import (
    RoundTerms,
    checked_model_spec,
    signed_open_round,
)
from mutualmind.vocabulary.signed_requests import (
    signed_dataset_registration,
    signed_register_provider,
    signed_stake,
)
from mutualmind.vocabulary.signing_keys import generate_signing_key, public_key_bytes
from proto import market_pb2_grpc
from tests.certs import ClusterCertsFactory

NODES = 3
SCHEMA = TableSchema(("x0", "x1", "y"), ("x0", "x1"), "y")


@dataclass
class World:
    view: MarketView
    keys: dict[str, Ed25519PrivateKey]
    opened: dict[str, object]   # the round_opened payload the sponsor signed


def _open_round_on(market: market_pb2_grpc.MarketStub,
                   mint: Callable[[str], object]) -> dict[str, Ed25519PrivateKey]:
    """Providers, datasets, stakes and a sponsor-signed round, all over the Market API."""
    keys = {who: generate_signing_key() for who in ("clinic-a", "clinic-b", "clinic-c", "sponsor")}
    for who, key in keys.items():
        market.RegisterProvider(signed_register_provider(key, who), timeout=10)
        mint(who)
    for dataset_id, owner, purpose in (("a-1", "clinic-a", "training"), ("b-1", "clinic-b", "training"),
                                       ("c-1", "clinic-c", "training"),
                                       ("val-1", "sponsor", "validation")):
        market.RegisterDataset(signed_dataset_registration(
            keys[owner], dataset_id=dataset_id, provider_id=owner, rows=30, cols=3, frac_bits=16,
            schema=SCHEMA, share_commitments=[bytes([i + 7]) * 32 for i in range(NODES)],
            purpose=purpose), timeout=10)
    for dataset_id, owner in (("a-1", "clinic-a"), ("b-1", "clinic-b"), ("c-1", "clinic-c")):
        market.Stake(signed_stake(keys[owner], owner, dataset_id, 50), timeout=10)
    terms = RoundTerms(round_id="r-contract", sponsor="sponsor", pool=200,
                       model_spec=checked_model_spec({"kind": "logistic", "lr": 0.5}),
                       validation_dataset="val-1", datasets=("a-1", "b-1", "c-1"))
    request = signed_open_round(keys["sponsor"], terms)
    market.OpenRound(request, timeout=10)
    return keys


@pytest.fixture(scope="module", params=["coordinator"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          cluster_certs: ClusterCertsFactory) -> Iterator[World]:
    certs = cluster_certs(NODES).folder
    endpoints = tuple(NodeEndpoint(i, f"node{i}", "127.0.0.1:1", "127.0.0.1:1") for i in range(NODES))
    coordinator = start_coordinator(CoordinatorConfig(
        certs_dir=certs, data_dir=tmp_path_factory.mktemp("market-view") / "coordinator",
        nodes=endpoints, dealer_address="127.0.0.1:1"))
    channel = open_channel(f"127.0.0.1:{coordinator.public_port}", channel_credentials(certs, "node0"))
    try:
        keys = _open_round_on(market_pb2_grpc.MarketStub(channel), lambda who: coordinator.ledger.append(
            "mint", {"to": who, "amount": 1000, "memo": "contract"}))
        opened = coordinator.ledger.round_opened("r-contract").payload
        yield World(CoordinatorMarket(channel), keys, opened)
    finally:
        channel.close()
        coordinator.stop(grace=None)


def test_a_round_comes_with_the_terms_its_sponsor_signed(world: World) -> None:
    facts = world.view.round("r-contract")
    assert facts.round_id == "r-contract" and facts.sponsor == "sponsor"
    assert facts.opened == world.opened
    assert json.loads(json.dumps(facts.opened))["datasets"] == ["a-1", "b-1", "c-1"]
    assert facts.opened["pool"] == 200
    assert (facts.status, facts.job_digest, facts.metrics_micro) == ("open", "", ())


def test_a_provider_key_is_the_one_it_registered(world: World) -> None:
    for who, key in world.keys.items():
        assert world.view.provider_key(who) == public_key_bytes(key)


def test_unknown_rounds_and_providers_are_not_found(world: World) -> None:
    with pytest.raises(NotFound, match="no-such-round"):
        world.view.round("no-such-round")
    with pytest.raises(NotFound, match="nobody"):
        world.view.provider_key("nobody")

