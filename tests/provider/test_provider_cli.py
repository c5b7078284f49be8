"""`mutualmind provider ...` and `mutualmind node serve` as real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mpcnode.share_store import ShareStore
from mutualmind.transport import channel_credentials, open_channel
from mutualmind.vocabulary.dataset import TableSchema
from mutualmind.vocabulary.signing_keys import generate_signing_key
from provider.client import MarketClient, upload_share
from provider.sharing import (
    Table,
    encode_fixed_point,
    load_csv,
    prescale,
    recombine,
    share_table,
)

Market = Any  # the `market` fixture in conftest.py
ROOT = Path(__file__).resolve().parents[2]


def mutualmind(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mutualmind", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def test_keygen_writes_a_private_key_and_refuses_to_overwrite(tmp_path: Path) -> None:
    key = tmp_path / "provider.key"
    run = mutualmind("provider", "keygen", "--key", str(key), "--id", "hospital-a")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["provider_id"] == "hospital-a" and len(out["public_key"]) == 64
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (tmp_path / "provider.key.id").read_text().strip() == "hospital-a"
    before = key.read_bytes()
    again = mutualmind("provider", "keygen", "--key", str(key), "--id", "hospital-a")
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr
    assert key.read_bytes() == before
    bad = mutualmind("provider", "keygen", "--key", str(tmp_path / "k2"), "--id", "no spaces")
    assert bad.returncode == 2 and "--id" in bad.stderr and not (tmp_path / "k2").exists()


def _write_csv(path: Path, rows: int = 200, bad_cell: tuple[int, str] | None = None) -> None:
    rng = np.random.default_rng(7)
    lines = ["age,bmi,noise,outcome"]
    for r in range(rows):
        cells = [f"{rng.normal(50, 10):.3f}", f"{rng.normal(25, 4):.3f}", f"{rng.normal():.5f}", str(r % 2)]
        if bad_cell is not None and bad_cell[0] == r:
            cells[1] = bad_cell[1]
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")


def test_provider_cli_register_share_stake_balance(market: Market, tmp_path: Path) -> None:
    key = tmp_path / "p.key"
    assert mutualmind("provider", "keygen", "--key", str(key), "--id", "clinic-1").returncode == 0
    common = ["--key", str(key), "--coordinator", market.coordinator_address, "--certs", str(market.certs)]
    run = mutualmind("provider", "register", *common)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["provider_id"] == "clinic-1"

    csv_path = tmp_path / "clinic.csv"
    _write_csv(csv_path)
    nodes = [arg for address in market.node_addresses for arg in ("--node", address)]
    run = mutualmind("provider", "share", *common, "--dataset-id", "clinic-1-2026", "--csv", str(csv_path),
                     "--features", "age,bmi", "--label", "outcome", *nodes)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert (out["rows"], out["cols"]) == (200, 3) and out["stored_bytes"] == [4800] * 3
    assert not (tmp_path / "p.key.pending").exists()  # a successful share leaves no empty folder
    table = load_csv(csv_path, feature_columns=["age", "bmi"], label_column="outcome")
    stored = [ShareStore(n.config.data_dir).load("clinic-1-2026") for n in market.nodes]
    # every column was divided by its public power of two (signed, kept in the node's meta)
    exponents = stored[0].meta.exponents
    assert exponents[-1] == 0  # the 0/1 label is never scaled
    scaled = np.abs(prescale(table.values, exponents)).max(axis=0)
    assert np.all(scaled[:-1] <= 1.0) and np.all(scaled[:-1] > 0.5)  # the smallest power of two
    assert np.array_equal(recombine([s.data for s in stored]), encode_fixed_point(prescale(table.values, exponents)))
    assert stored[0].meta.schema.columns == ("age", "bmi", "outcome")

    market.mint("clinic-1", 50)
    run = mutualmind("provider", "stake", *common, "--dataset-id", "clinic-1-2026", "--amount", "20")
    assert run.returncode == 0, run.stderr
    staked = json.loads(run.stdout)
    assert (staked["staked"], staked["balance"]) == (20, 30) and staked["ledger_index"] > 0
    run = mutualmind("provider", "balance", *common)
    assert json.loads(run.stdout) == {"provider_id": "clinic-1", "balance": 30, "staked": 20,
                                      "stakes": {"clinic-1-2026": 20}}
    run = mutualmind("provider", "stake", *common, "--dataset-id", "clinic-1-2026", "--amount", "31")
    assert run.returncode == 6 and "balance" in run.stderr


def test_share_refuses_a_bad_table_before_anything_leaves(market: Market, tmp_path: Path) -> None:
    key = tmp_path / "p.key"
    mutualmind("provider", "keygen", "--key", str(key), "--id", "clinic-2")
    common = ["--key", str(key), "--coordinator", market.coordinator_address, "--certs", str(market.certs)]
    csv_path = tmp_path / "bad.csv"
    _write_csv(csv_path, rows=20, bad_cell=(11, "n/a"))
    nodes = [arg for address in market.node_addresses for arg in ("--node", address)]
    run = mutualmind("provider", "share", *common, "--dataset-id", "bad", "--csv", str(csv_path),
                     "--label", "outcome", *nodes)
    assert run.returncode == 2
    assert "column 'bmi' data row 12: 'n/a' is not a number" in run.stderr
    assert all(n.store.list() == [] for n in market.nodes)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"columns": ["age", "outcome"], "feature_columns": ["age"],
                                  "label_column": "outcome"}))
    _write_csv(csv_path, rows=20)
    run = mutualmind("provider", "share", *common, "--dataset-id", "bad", "--csv", str(csv_path),
                     "--label", "outcome", "--schema", str(schema), *nodes)
    assert run.returncode == 2 and "does not match the round's schema" in run.stderr
    # labels 0/1000 for a binary model: refused on the provider's machine, row named
    coded = csv_path.read_text().splitlines()
    coded[3] = ",".join([*coded[3].split(",")[:-1], "1000"])
    csv_path.write_text("\n".join(coded) + "\n")
    run = mutualmind("provider", "share", *common, "--dataset-id", "bad", "--csv", str(csv_path),
                     "--label", "outcome", *nodes)
    assert run.returncode == 2
    assert "label column 'outcome' data row 3: 1000 is not one of binary labels 0/1" in run.stderr
    assert all(n.store.list() == [] for n in market.nodes)


def test_node_serve_subprocess_accepts_a_share_and_stops_on_sigterm(market: Market, tmp_path: Path) -> None:
    """`mutualmind node serve` for node 1 of the cluster, next to the in-process nodes."""
    data_dir = tmp_path / "node1-cli"
    process = subprocess.Popen(
        [sys.executable, "-m", "mutualmind", "node", "serve", "--index", "1", "--certs", str(market.certs),
         "--data-dir", str(data_dir), "--coordinator", market.coordinator_address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("node1 public_port="), process.stderr.read() if not line else line  # type: ignore[union-attr]
        port = int(line.split()[1].split("=")[1])
        client = MarketClient(channel=open_channel(market.coordinator_address, channel_credentials(market.certs, None)),
                              key=generate_signing_key(), provider_id="clinic-3")
        client.register()
        values = np.random.default_rng(1).normal(size=(50, 2))
        shared = share_table(Table(values, TableSchema(("x", "y"), ("x",), "y")), 3)
        client.register_dataset("clinic-3-a", shared)
        with open_channel(f"127.0.0.1:{port}", channel_credentials(market.certs, None)) as channel:
            receipt = upload_share(channel, "clinic-3-a", 1, shared.shares[1])
        client.channel.close()
        assert receipt.commitment == shared.commitments[1]
        assert np.array_equal(ShareStore(data_dir).load("clinic-3-a").data, shared.shares[1])
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert "node1 stopped" in process.stderr.read()  # type: ignore[union-attr]
    assert os.listdir(data_dir / "shares") == ["clinic-3-a"]


def test_share_with_a_node_down_keeps_the_shares_and_resume_finishes(market: Market, tmp_path: Path) -> None:
    from mpcnode.coordinator_client import CoordinatorRegistry
    from mpcnode.server import NodeConfig, start_node

    key = tmp_path / "p.key"
    mutualmind("provider", "keygen", "--key", str(key), "--id", "clinic-4")
    common = ["--key", str(key), "--coordinator", market.coordinator_address, "--certs", str(market.certs)]
    assert mutualmind("provider", "register", *common).returncode == 0
    csv_path = tmp_path / "c.csv"
    _write_csv(csv_path, rows=30)
    market.nodes[2].stop(grace=None)
    nodes = [arg for address in market.node_addresses for arg in ("--node", address)]
    # one try: each try of the down node waits out the channel's retries (~3 s)
    run = mutualmind("provider", "share", *common, "--dataset-id", "c4", "--csv", str(csv_path),
                     "--label", "outcome", "--attempts", "1", *nodes)
    assert run.returncode == 9, run.stderr  # Unavailable
    assert "mutualmind provider resume" in run.stderr
    pending = tmp_path / "p.key.pending" / "c4"
    assert sorted(p.name for p in pending.iterdir()) == ["meta.json", "share0.bin", "share1.bin", "share2.bin"]
    assert market.nodes[0].store.has("c4") and market.nodes[1].store.has("c4")

    with open_channel(market.coordinator_address, channel_credentials(market.certs, "node2")) as coordinator:
        node2 = start_node(NodeConfig(node_index=2, data_dir=market.nodes[2].config.data_dir,
                                      certs_dir=market.certs), CoordinatorRegistry(coordinator))
        try:
            addresses = market.node_addresses[:2] + [f"127.0.0.1:{node2.public_port}"]
            run = mutualmind("provider", "resume", "--key", str(key), "--certs", str(market.certs),
                             "--dataset-id", "c4", *[a for address in addresses for a in ("--node", address)])
        finally:
            node2.stop(grace=None)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"dataset_id": "c4", "uploaded_to": [2], "already_held_by": [0, 1]}
    assert not pending.exists() and not pending.parent.exists()  # no empty `.pending/` left
    table = load_csv(csv_path, label_column="outcome")
    loaded = [ShareStore(n.config.data_dir).load("c4") for n in market.nodes]
    exponents = loaded[0].meta.exponents
    assert all(s.meta.exponents == exponents for s in loaded)
    assert np.array_equal(recombine([s.data for s in loaded]), encode_fixed_point(prescale(table.values, exponents)))
