"""The public directory (ListNodes, ListDatasets, GetProviderHistory) and the `provider`
commands that use it: a provider with only the coordinator's address and the CA."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mpcnode.share_store import ShareStore
from mutualmind.errors import NotFound
from mutualmind.transport import channel_credentials, open_channel
from mutualmind.transport.pki import COORDINATOR_NAME
from provider.client import list_datasets, list_nodes, provider_history

Market = Any  # the `market` fixture in conftest.py
ROOT = Path(__file__).resolve().parents[2]


def mutualmind(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mutualmind", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def _csv(path: Path, rows: int = 40) -> None:
    path.write_text("age,bmi,outcome\n" + "".join(f"{20 + i % 50},{18 + i % 9}.5,{i % 2}\n"
                                                  for i in range(rows)), encoding="utf-8")


def test_list_nodes_gives_addresses_names_and_keys_in_index_order(market: Market) -> None:
    channel = open_channel(market.coordinator_address, channel_credentials(market.certs, None),
                           server_name=COORDINATOR_NAME)
    try:
        nodes = list_nodes(channel)
        assert [n.index for n in nodes] == [0, 1, 2]
        assert [n.public_address for n in nodes] == market.node_addresses
        assert [n.name for n in nodes] == [m.name for m in market.manifest.nodes]
        assert [bytes(n.signing_key) for n in nodes] == market.node_public_keys
        assert list_datasets(channel) == []
        with pytest.raises(NotFound):
            provider_history(channel, "nobody")
    finally:
        channel.close()


def test_a_provider_with_only_coordinator_and_ca_shares_and_reads_catalog_and_history(
        market: Market, tmp_path: Path) -> None:
    ca_only = tmp_path / "ca"
    ca_only.mkdir()
    shutil.copy(market.certs / "ca.pem", ca_only / "ca.pem")  # no manifest, no --node
    key = tmp_path / "p.key"
    assert mutualmind("provider", "keygen", "--key", str(key), "--id", "far-away").returncode == 0
    common = ["--key", str(key), "--coordinator", market.coordinator_address, "--certs", str(ca_only)]
    assert mutualmind("provider", "register", *common).returncode == 0
    csv_path = tmp_path / "t.csv"
    _csv(csv_path)
    run = mutualmind("provider", "share", *common, "--dataset-id", "far-1", "--csv", str(csv_path),
                     "--features", "age,bmi", "--label", "outcome")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["stored_bytes"] == [40 * 3 * 8] * 3
    assert all(ShareStore(n.config.data_dir).load("far-1").meta.rows == 40 for n in market.nodes)

    market.mint("far-away", 100)
    assert mutualmind("provider", "stake", *common, "--dataset-id", "far-1", "--amount", "30").returncode == 0
    run = mutualmind("provider", "unstake", *common, "--dataset-id", "far-1", "--amount", "5")
    assert run.returncode == 0, run.stderr

    run = mutualmind("provider", "catalog", "--coordinator", market.coordinator_address,
                     "--certs", str(ca_only), "--json")
    assert run.returncode == 0, run.stderr
    (row,) = [json.loads(line) for line in run.stdout.splitlines()]
    staked = market.coordinator.ledger.state.stakes["far-1"]
    assert (row["dataset_id"], row["provider_id"], row["rows"], row["cols"], row["staked"]) == (
        "far-1", "far-away", 40, 3, 25)
    assert staked == 25
    assert row["schema"]["label_column"] == "outcome" and "min_datasets" in row["terms"]
    table = mutualmind("provider", "catalog", "--coordinator", market.coordinator_address,
                       "--certs", str(ca_only))
    assert table.returncode == 0 and "far-1" in table.stdout

    run = mutualmind("provider", "history", *common, "--json")
    assert run.returncode == 0, run.stderr
    history = [json.loads(line) for line in run.stdout.splitlines()]
    expected = [e for e in market.coordinator.ledger.entries_for_party("far-away", limit=None)
                if e.kind in ("stake", "unstake", "payout", "slash")]
    assert [(h["index"], h["kind"]) for h in history] == [(e.index, e.kind) for e in expected]
    assert [(h["kind"], h["amount"]) for h in history] == [("stake", 30), ("unstake", 5)]


def test_share_with_a_node_down_hints_a_resume_that_asks_the_directory(market: Market, tmp_path: Path) -> None:
    """Nodes from the directory: the resume hint repeats no node list, and resume finds the
    nodes (in the coordinator's order) by itself once node 2 is back at its address."""
    from mpcnode.coordinator_client import CoordinatorRegistry
    from mpcnode.server import NodeConfig, start_node

    key = tmp_path / "p.key"
    mutualmind("provider", "keygen", "--key", str(key), "--id", "far-2")
    common = ["--key", str(key), "--coordinator", market.coordinator_address, "--certs", str(market.certs)]
    assert mutualmind("provider", "register", *common).returncode == 0
    csv_path = tmp_path / "t.csv"
    _csv(csv_path, rows=20)
    market.nodes[2].stop(grace=None)
    run = mutualmind("provider", "share", *common, "--dataset-id", "far-2", "--csv", str(csv_path),
                     "--label", "outcome", "--attempts", "1")  # one try of the down node
    assert run.returncode == 9, run.stderr  # Unavailable
    hint = next(line for line in run.stderr.splitlines() if "mutualmind provider resume" in line)
    assert "--node" not in hint and f"--coordinator {market.coordinator_address}" in hint
    resume = hint.split("run: mutualmind ", 1)[1].split()
    with open_channel(market.coordinator_address, channel_credentials(market.certs, "node2")) as coordinator:
        node2 = start_node(NodeConfig(node_index=2, data_dir=market.nodes[2].config.data_dir,
                                      certs_dir=market.certs, public_address=market.node_addresses[2]),
                           CoordinatorRegistry(coordinator))
        try:
            run = mutualmind(*resume)
        finally:
            node2.stop(grace=None)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"dataset_id": "far-2", "uploaded_to": [2], "already_held_by": [0, 1]}


def test_the_directory_lists_advertised_addresses(tmp_path: Path, cluster_certs: Any) -> None:
    """`coordinator serve --advertise-node`: providers elsewhere get the addresses they can
    reach (compose: the published ports), not the cluster-internal names."""
    from coordinator.cluster_link import NodeEndpoint
    from coordinator.server import CoordinatorConfig, start_coordinator
    from tests.provider.conftest import NoJobsLink

    certs = cluster_certs(3).folder
    endpoints = tuple(NodeEndpoint(index=i, name=f"node{i}", public_address=f"node{i}:7101",
                                   cluster_address=f"node{i}:7201") for i in range(3))
    coordinator = start_coordinator(
        CoordinatorConfig(certs_dir=certs, data_dir=tmp_path / "c", nodes=endpoints, dealer_address="x:1",
                          advertised=("127.0.0.1:7110", "127.0.0.1:7111", "127.0.0.1:7112")),
        link=NoJobsLink(endpoints))
    try:
        with open_channel(f"127.0.0.1:{coordinator.public_port}", channel_credentials(certs, None),
                          server_name=COORDINATOR_NAME) as channel:
            assert [n.public_address for n in list_nodes(channel)] == [
                "127.0.0.1:7110", "127.0.0.1:7111", "127.0.0.1:7112"]
    finally:
        coordinator.stop(grace=None)


def test_the_catalog_comes_in_pages_and_filters_by_provider(market: Market, monkeypatch: Any) -> None:
    """Three datasets over pages of two: every dataset once, in ledger order."""
    import coordinator.market
    from mutualmind.vocabulary.signing_keys import generate_signing_key
    from provider.client import MarketClient
    from provider.sharing import load_sklearn, share_table

    monkeypatch.setattr(coordinator.market, "MAX_DIRECTORY", 2)
    channel = open_channel(market.coordinator_address, channel_credentials(market.certs, None),
                           server_name=COORDINATOR_NAME)
    try:
        a = MarketClient(channel=channel, key=generate_signing_key(), provider_id="a")
        b = MarketClient(channel=channel, key=generate_signing_key(), provider_id="b")
        a.register()
        b.register()
        for client, dataset in ((a, "a-1"), (b, "b-1"), (a, "a-2")):
            client.register_dataset(dataset, share_table(load_sklearn("iris"), 3))
        assert [d.dataset_id for d in list_datasets(channel)] == ["a-1", "b-1", "a-2"]
        assert [d.dataset_id for d in list_datasets(channel, "a")] == ["a-1", "a-2"]
        assert all(d.rows == 150 and d.staked == 0 for d in list_datasets(channel))
        with pytest.raises(NotFound):
            list_datasets(channel, "nobody")
    finally:
        channel.close()


def test_rounds_come_in_pages_and_a_bad_status_is_refused(market: Market, monkeypatch: Any) -> None:
    """ListRounds pages like the catalog; an unknown status is INVALID_ARGUMENT naming the choices."""
    import coordinator.rounds
    from mutualmind.errors import InvalidInput
    from provider.client import list_rounds

    monkeypatch.setattr(coordinator.rounds, "ROUNDS_PAGE", 1)
    channel = open_channel(market.coordinator_address, channel_credentials(market.certs, None),
                           server_name=COORDINATOR_NAME)
    try:
        assert list_rounds(channel) == []
        with pytest.raises(InvalidInput, match="not one of"):
            list_rounds(channel, "finished")
    finally:
        channel.close()


def test_a_providers_history_comes_in_pages(market: Market, monkeypatch: Any) -> None:
    """Five stakes and unstakes over pages of two: every one once, oldest first; a limit
    stops early."""
    import coordinator.market
    from mutualmind.vocabulary.signing_keys import generate_signing_key
    from provider.client import MarketClient
    from provider.sharing import load_sklearn, share_table

    monkeypatch.setattr(coordinator.market, "MAX_DIRECTORY", 2)
    channel = open_channel(market.coordinator_address, channel_credentials(market.certs, None),
                           server_name=COORDINATOR_NAME)
    try:
        client = MarketClient(channel=channel, key=generate_signing_key(), provider_id="pager")
        client.register()
        client.register_dataset("pager-1", share_table(load_sklearn("iris"), 3))
        market.mint("pager", 100)
        for amount in (10, 11, 12):
            client.stake("pager-1", amount)
        client.unstake("pager-1", 5)
        client.stake("pager-1", 13)
        history = provider_history(channel, "pager")
        assert [(e.kind, json.loads(e.payload_json)["amount"]) for e in history] == [
            ("stake", 10), ("stake", 11), ("stake", 12), ("unstake", 5), ("stake", 13)]
        assert [e.index for e in history] == sorted(e.index for e in history)
        assert [e.index for e in provider_history(channel, "pager", limit=3)] == [e.index for e in history[:3]]
    finally:
        channel.close()
