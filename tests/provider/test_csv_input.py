"""`provider share --csv` with the files people really have: Latin-1 exports, a folder
given by mistake, Excel's UTF-8 byte-order mark. Real CLI subprocesses against a real
coordinator and nodes (the `market` fixture)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.provider.test_provider_cli import mutualmind

Market = Any  # the `market` fixture in conftest.py


def _share(market: Market, key: Path, dataset_id: str, csv_path: Path) -> Any:
    common = ["--key", str(key), "--coordinator", market.coordinator_address, "--certs", str(market.certs)]
    nodes = [arg for address in market.node_addresses for arg in ("--node", address)]
    return mutualmind("provider", "share", *common, "--dataset-id", dataset_id, "--csv", str(csv_path),
                      "--label", "outcome", *nodes)


def _one_clear_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_latin1_file_and_directory_give_one_line_and_exit_2(market: Market, tmp_path: Path) -> None:
    key = tmp_path / "p.key"
    assert mutualmind("provider", "keygen", "--key", str(key), "--id", "clinic-l").returncode == 0
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("âge,outcome\n1.5,0\n2.5,1\n".encode("latin-1"))
    run = _share(market, key, "latin", latin1)
    assert run.returncode == 2
    line = _one_clear_line(run.stderr)
    assert "is not UTF-8 text (byte 0xe2 at offset 0)" in line and "save it as UTF-8" in line

    folder = tmp_path / "a-folder.csv"
    folder.mkdir()
    run = _share(market, key, "folder", folder)
    assert run.returncode == 2
    assert "is a directory; give the path of a CSV file" in _one_clear_line(run.stderr)
    assert market.coordinator.ledger.state.datasets == {}
    assert all(n.store.list() == [] for n in market.nodes)


def test_utf8_bom_never_reaches_a_column_name(market: Market, tmp_path: Path) -> None:
    key = tmp_path / "p.key"
    assert mutualmind("provider", "keygen", "--key", str(key), "--id", "clinic-b").returncode == 0
    common = ["--key", str(key), "--coordinator", market.coordinator_address, "--certs", str(market.certs)]
    assert mutualmind("provider", "register", *common).returncode == 0
    bom = tmp_path / "excel.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + b"age,bmi,outcome\n1,2,0\n3,4,1\n5,6,0\n")
    run = _share(market, key, "excel", bom)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["cols"] == 3
    schema = market.coordinator.ledger.state.datasets["excel"]["schema"]
    assert schema["columns"] == ["age", "bmi", "outcome"]
    assert schema["feature_columns"] == ["age", "bmi"]
