"""The provider's whole data path against a real coordinator and 3 real nodes: register,
register a dataset (signed commitments on the ledger), upload shares that each node checks
against the ledger's commitment, stake, balance."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from mpcnode.share_store import ShareStore
from mutualmind.errors import IntegrityError, NotFound, PermissionDenied, RuleViolation
from mutualmind.transport import channel_credentials, open_channel
from mutualmind.vocabulary.signing_keys import generate_signing_key
from provider.client import MarketClient, upload_shares
from provider.sharing import (
    encode_fixed_point,
    load_sklearn,
    prescale,
    recombine,
    share_table,
)

Market = Any  # the `market` fixture in conftest.py


@pytest.fixture
def connect(market: Market) -> Iterator[Any]:
    opened: list[grpc.Channel] = []

    def _open(address: str) -> grpc.Channel:
        channel = open_channel(address, channel_credentials(market.certs, None))
        opened.append(channel)
        return channel

    yield _open
    for channel in opened:
        channel.close()


def test_register_share_stake_balance(market: Market, connect: Any) -> None:
    client = MarketClient(channel=connect(market.coordinator_address), key=generate_signing_key(),
                          provider_id="hospital-a")
    assert client.register().provider_id == "hospital-a"
    table = load_sklearn("iris")
    shared = share_table(table, 3)
    registration, reply = client.register_dataset("iris-a", shared)
    assert reply.ledger_index > 0
    receipts = upload_shares([connect(a) for a in market.node_addresses], "iris-a", shared,
                             node_public_keys=market.node_public_keys)
    assert [r.commitment for r in receipts] == list(registration.share_commitments)
    stored = [ShareStore(n.config.data_dir).load("iris-a").data for n in market.nodes]
    assert list(registration.column_exponents) == list(shared.column_exponents)
    assert registration.label_classes == 3  # iris: labels 0..2
    assert np.array_equal(recombine(stored), encode_fixed_point(prescale(table.values, shared.column_exponents)))

    market.mint("hospital-a", 1000)
    staked = client.stake("iris-a", 300)
    assert (staked.staked, staked.balance) == (300, 700)
    balance = client.balance()
    assert (balance.balance, balance.staked, dict(balance.stakes)) == (700, 300, {"iris-a": 300})
    with pytest.raises(RuleViolation):
        client.stake("iris-a", 701)


def test_node_refuses_share_not_matching_the_ledger(market: Market, connect: Any) -> None:
    client = MarketClient(channel=connect(market.coordinator_address), key=generate_signing_key(),
                          provider_id="hospital-b")
    client.register()
    registered = share_table(load_sklearn("wine"), 3)
    client.register_dataset("wine-b", registered)
    other = share_table(load_sklearn("wine"), 3)  # same table, fresh randomness: other bytes
    channels = [connect(a) for a in market.node_addresses]
    with pytest.raises(IntegrityError, match="does not match its registered commitment"):
        upload_shares(channels, "wine-b", other)
    assert all(not n.store.has("wine-b") for n in market.nodes)
    upload_shares(channels, "wine-b", registered)  # the registered shares still go in
    assert all(n.store.has("wine-b") for n in market.nodes)


def test_unregistered_dataset_is_refused_by_every_node(market: Market, connect: Any) -> None:
    shared = share_table(load_sklearn("iris"), 3)
    with pytest.raises(NotFound):
        upload_shares([connect(a) for a in market.node_addresses], "never-registered", shared)
    assert all(n.store.list() == [] for n in market.nodes)


def test_coordinator_refuses_a_registration_signed_by_another_key(market: Market, connect: Any) -> None:
    channel = connect(market.coordinator_address)
    MarketClient(channel=channel, key=generate_signing_key(), provider_id="hospital-c").register()
    impostor = MarketClient(channel=channel, key=generate_signing_key(), provider_id="hospital-c")
    with pytest.raises(PermissionDenied):
        impostor.register_dataset("stolen", share_table(load_sklearn("iris"), 3))
