"""`mutualmind admin ...` as a real subprocess against a real local cluster.

One cluster (dealer, coordinator, three nodes as detached processes with fresh
certificates) serves the whole module; providers register, share and stake through the
provider's own client API, exactly as on a real deployment. Every refusal must be one
line on stderr with the error's exit code, and must leave the ledger as it was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from market_setup import (  # noqa: E402
    ProviderIdentity,
    breast_cancer_tables,
    provider_identity,
    register_and_share,
    stake,
)

from mutualmind.cluster.local import LocalCluster  # noqa: E402
from mutualmind.transport import channel_credentials, open_channel  # noqa: E402
from mutualmind.transport.cluster_state import ClusterState  # noqa: E402
from mutualmind.transport.pki import load_manifest  # noqa: E402
from provider.client import MarketClient  # noqa: E402
from tests.certs import ClusterCertsFactory  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def admin(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mutualmind", "admin", *args],
                          capture_output=True, text=True, timeout=timeout)


def admin_json(*args: str) -> Any:
    result = admin(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def refused(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The one error line of a refused command (which must exit with `code`)."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mutualmind: error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterState]:
    local = LocalCluster(tmp_path_factory.mktemp("admin") / "cluster", nodes=3)
    state = local.up()
    try:
        yield state
    finally:
        local.down()


@pytest.fixture(scope="module")
def people(cluster: ClusterState,
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, ProviderIdentity]:
    """Three data providers with a staked training set each, and a sponsor with the
    validation set; everyone holds 1000 minted tokens."""
    folder = tmp_path_factory.mktemp("keys")
    who = {name: provider_identity(folder, name)
           for name in ("hospital-a", "hospital-b", "hospital-c", "sponsor")}
    tables = breast_cancer_tables(4)
    register_and_share(cluster, who["hospital-a"], "a-1", tables[0])
    register_and_share(cluster, who["hospital-b"], "b-1", tables[1])
    register_and_share(cluster, who["hospital-c"], "c-1", tables[2])
    register_and_share(cluster, who["sponsor"], "val-1", tables[3], purpose="validation")
    from coordinator.admin_cli.coordinator_client import CoordinatorClient
    from coordinator.admin_cli.target import AdminTarget
    from proto import admin_pb2

    target = AdminTarget(cluster.admin_address, cluster.market_address, cluster.certs_dir)
    with CoordinatorClient(target) as client:        # the Admin API call `admin mint` makes
        for name in who:
            client.call(client.admin, "Mint", admin_pb2.MintRequest(provider_id=name,
                                                                    amount=1000))
    stake(cluster, who["hospital-a"], "a-1", 100)
    stake(cluster, who["hospital-b"], "b-1", 200)
    stake(cluster, who["hospital-c"], "c-1", 50)
    return who


def ledger_entries(cluster: ClusterState) -> int:
    report = admin_json("ledger", "verify", "--data-dir", str(cluster.data_dir))
    assert report["ok"] is True
    return int(report["entries"])


def test_nodes_are_listed_serving_with_their_manifest_keys(cluster: ClusterState) -> None:
    nodes = admin_json("nodes", "--data-dir", str(cluster.data_dir))
    manifest = load_manifest(cluster.certs_dir)
    assert [n["index"] for n in nodes] == [0, 1, 2]
    assert all(n["health"] == "SERVING" for n in nodes)
    assert [n["signing_public_key"] for n in nodes] == [
        (m.signing_public_key or b"").hex() for m in manifest.nodes]
    assert [n["public_address"] for n in nodes] == cluster.node_public_addresses
    # the same through explicit addresses instead of the state file, as a table
    table = admin("nodes", "--coordinator", cluster.admin_address, "--certs",
                  str(cluster.certs_dir))
    assert table.returncode == 0, table.stderr
    assert table.stdout.count("SERVING") == 3 and "node2" in table.stdout


def test_mint_then_providers_and_balances(cluster: ClusterState,
                                          people: dict[str, ProviderIdentity],
                                          tmp_path: Path) -> None:
    data = str(cluster.data_dir)
    newcomer = provider_identity(tmp_path, "clinic-m")
    channel = open_channel(cluster.market_address, channel_credentials(cluster.certs_dir, None))
    try:
        MarketClient(channel=channel, key=newcomer.key, provider_id="clinic-m").register()
    finally:
        channel.close()
    first = admin_json("mint", "--data-dir", data, "--to", "clinic-m", "--amount", "250",
                       "--memo", "welcome")
    assert first["balance"] == 250
    second = admin("mint", "--data-dir", data, "--to", "clinic-m", "--amount", "50")
    assert second.returncode == 0 and "balance now 300" in second.stdout

    providers = {p["provider_id"]: p for p in admin_json("providers", "--data-dir", data)}
    assert set(providers) >= {"hospital-a", "hospital-b", "sponsor", "clinic-m"}
    assert providers["clinic-m"]["balance"] == 300
    from mutualmind.vocabulary.signing_keys import public_key_bytes
    assert providers["clinic-m"]["public_key"] == public_key_bytes(newcomer.key).hex()
    assert providers["hospital-a"]["staked"] == 100

    balances = admin_json("balances", "--data-dir", data)
    rows = {r["provider_id"]: r for r in balances["providers"]}
    assert rows["hospital-b"] == {"provider_id": "hospital-b", "balance": 800, "staked": 200}
    assert balances["total_balance"] == sum(r["balance"] for r in rows.values())
    supply = admin_json("ledger", "verify", "--data-dir", data)["total_supply"]
    assert balances["total"] == supply                   # balances + stakes + pools = minted
    one = admin_json("balances", "--data-dir", data, "--provider", "hospital-a")
    assert one["stakes"] == {"a-1": 100} and one["balance"] == 900
    table = admin("balances", "--data-dir", data)
    assert table.returncode == 0 and "total" in table.stdout and "clinic-m" in table.stdout


def test_refusals_are_one_line_with_their_exit_code_and_change_nothing(
        cluster: ClusterState, people: dict[str, ProviderIdentity],
        cluster_certs: ClusterCertsFactory) -> None:
    data = str(cluster.data_dir)
    before = ledger_entries(cluster)
    assert "whole number" in refused(admin("mint", "--data-dir", data, "--to", "sponsor",
                                           "--amount", "5x"), 2)
    assert "between 1" in refused(admin("mint", "--data-dir", data, "--to", "sponsor",
                                        "--amount", "0"), 2)
    assert "unknown_provider" in refused(admin("mint", "--data-dir", data, "--to", "nobody",
                                               "--amount", "5"), 6)
    assert "--data-dir" in refused(admin("nodes"), 2)
    assert "HOST:PORT" in refused(admin("nodes", "--coordinator", "no-port", "--certs",
                                        str(cluster.certs_dir)), 2)
    assert "no round 'nope'" in refused(admin("round", "show", "nope", "--data-dir", data), 3)
    assert "nope" in refused(admin("round", "run", "nope", "--data-dir", data), 3)
    # certificates from another cluster's CA: the TLS handshake fails, nothing is called
    other = cluster_certs(3).folder
    stranger = admin("mint", "--coordinator", cluster.admin_address, "--certs", str(other),
                     "--to", "sponsor", "--amount", "5")
    assert "same cluster CA" in refused(stranger, 9)
    assert ledger_entries(cluster) == before


def test_round_open_show_list_report(cluster: ClusterState,
                                     people: dict[str, ProviderIdentity],
                                     tmp_path: Path) -> None:
    data = str(cluster.data_dir)
    sponsor_key = str(people["sponsor"].key_file)
    before = ledger_entries(cluster)
    common = ["--data-dir", data, "--sponsor-key", sponsor_key, "--pool", "300",
              "--validation-dataset", "val-1", "--dataset", "a-1", "--dataset", "b-1",
              "--dataset", "c-1"]
    bad_spec = admin("round", "open", "--round-id", "r-bad", *common,
                     "--model-spec", '{"kind": "forest"}')
    assert "kind" in refused(bad_spec, 2)
    imposter = admin("round", "open", "--round-id", "r-imp", *common[:2],
                     "--sponsor-key", str(people["hospital-a"].key_file), "--sponsor", "sponsor",
                     *common[4:])
    refused(imposter, 5)                                  # signed with the wrong key
    assert ledger_entries(cluster) == before

    opened = admin_json("round", "open", "--round-id", "r1", *common,
                        "--model-spec", '{"kind": "logistic", "lr": 0.5, "epochs": 5}')
    assert opened["round_id"] == "r1"
    assert "round_exists" in refused(admin("round", "open", "--round-id", "r1", *common), 6)

    view = admin_json("round", "show", "r1", "--data-dir", data)
    assert view["status"] == "open" and view["pool"] == 300 and view["sponsor"] == "sponsor"
    assert [(p["dataset_id"], p["provider_id"], p["stake"], p["rows"])
            for p in view["participants"]] == [("a-1", "hospital-a", 100, 60),
                                               ("b-1", "hospital-b", 200, 60),
                                               ("c-1", "hospital-c", 50, 60)]
    assert view["model_spec"]["lr"] == 0.5 and view["model_spec"]["epochs"] == 5
    table = admin("round", "show", "r1", "--data-dir", data)
    assert table.returncode == 0 and "hospital-b" in table.stdout and "status open" in table.stdout
    assert [r["round_id"] for r in admin_json("round", "list", "--data-dir", data)] == ["r1"]
    balances = admin_json("balances", "--data-dir", data, "--provider", "sponsor")
    assert balances["balance"] == 700                     # the pool is locked

    png = tmp_path / "r1.png"
    report = admin("round", "report", "r1", "--data-dir", data, "--png", str(png))
    assert report.returncode == 0, report.stderr
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000
    assert "closed" in refused(admin("round", "verify", "r1", "--data-dir", data), 2)
