"""Populate a running cluster the way real providers do: keys, registration, shares, stakes.

Uses the provider's own client API (`provider.client`, `provider.sharing`) against the
cluster's real Market and node ports; minting goes through `mutualmind admin mint`'s
Admin call by the caller. The data is scikit-learn's breast-cancer table (standardised,
a few features), split by rows into providers' tables and a validation table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mutualmind.transport import channel_credentials, open_channel
from mutualmind.transport.cluster_state import ClusterState
from mutualmind.vocabulary.dataset import TableSchema
from mutualmind.vocabulary.signing_keys import generate_signing_key, save_private_key
from provider.client import MarketClient, upload_shares
from provider.sharing import Table, share_table

FEATURES = 4


@dataclass
class ProviderIdentity:
    provider_id: str
    key: Ed25519PrivateKey
    key_file: Path


def provider_identity(folder: Path, provider_id: str) -> ProviderIdentity:
    """A key file (and `<key>.id`) as `mutualmind provider keygen` writes them."""
    key = generate_signing_key()
    key_file = folder / f"{provider_id}.key"
    save_private_key(key, key_file)
    key_file.with_name(key_file.name + ".id").write_text(provider_id + "\n", encoding="utf-8")
    return ProviderIdentity(provider_id, key, key_file)


def breast_cancer_tables(parts: int, *, rows_each: int = 60) -> list[Table]:
    """`parts` disjoint row slices of the standardised breast-cancer table (label last)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    x = np.asarray(data.data[:, :FEATURES], dtype=np.float64)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    values = np.column_stack([x, np.asarray(data.target, dtype=np.float64)])
    columns = tuple(f"x{i}" for i in range(FEATURES)) + ("label",)
    schema = TableSchema(columns, columns[:-1], "label")
    return [Table(np.ascontiguousarray(values[i * rows_each:(i + 1) * rows_each]), schema)
            for i in range(parts)]


def register_and_share(state: ClusterState, who: ProviderIdentity, dataset_id: str,
                       table: Table, *, purpose: str = "training",
                       register: bool = True) -> None:
    """Register the provider (once), register the dataset, upload share i to node i."""
    credentials = channel_credentials(state.certs_dir, None)
    market = open_channel(state.market_address, credentials)
    nodes = [open_channel(a, credentials) for a in state.node_public_addresses]
    try:
        client = MarketClient(channel=market, key=who.key, provider_id=who.provider_id)
        if register:
            client.register()
        shared = share_table(table, state.nodes)
        client.register_dataset(dataset_id, shared, purpose=purpose)
        upload_shares(nodes, dataset_id, shared)
    finally:
        for channel in (market, *nodes):
            channel.close()


def stake(state: ClusterState, who: ProviderIdentity, dataset_id: str, amount: int) -> None:
    channel = open_channel(state.market_address, channel_credentials(state.certs_dir, None))
    try:
        MarketClient(channel=channel, key=who.key, provider_id=who.provider_id).stake(
            dataset_id, amount)
    finally:
        channel.close()
