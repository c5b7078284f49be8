"""Bad keys and missing flags on `mutualmind provider ...`: one line, its exit code, no
traceback, and a message that says what to do (real subprocesses)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.provider.test_provider_cli import _write_csv, mutualmind

Market = Any  # the `market` fixture in conftest.py


def one_line(run: subprocess.CompletedProcess[str], code: int) -> str:
    assert run.returncode == code, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    return run.stderr.strip()


def test_bad_key_files_are_refused_in_one_line(tmp_path: Path) -> None:
    where = ["--coordinator", "127.0.0.1:1", "--certs", str(tmp_path)]
    folder = tmp_path / "keys"
    folder.mkdir()
    line = one_line(mutualmind("provider", "balance", "--key", str(folder), *where), 2)
    assert f"{folder} is a directory; give the path of a key file" in line
    missing = tmp_path / "missing.key"
    assert f"key file {missing} does not exist" in one_line(
        mutualmind("provider", "balance", "--key", str(missing), *where), 3)
    text = tmp_path / "notes.key"
    text.write_text("not a key\n")
    (tmp_path / "notes.key.id").write_text("clinic\n")
    line = one_line(mutualmind("provider", "balance", "--key", str(text), *where), 2)
    assert f"{text} is not an unencrypted PEM private key" in line and "cryptography.io" not in line


def test_a_csv_without_label_asks_for_label(tmp_path: Path) -> None:
    key = tmp_path / "p.key"
    assert mutualmind("provider", "keygen", "--key", str(key), "--id", "clinic").returncode == 0
    csv_path = tmp_path / "c.csv"
    _write_csv(csv_path, rows=10)
    line = one_line(mutualmind("provider", "share", "--key", str(key), "--coordinator", "127.0.0.1:1",
                               "--certs", str(tmp_path), "--node", "127.0.0.1:1", "--dataset-id", "c1",
                               "--csv", str(csv_path)), 2)
    assert "give --label COL for a CSV" in line
    assert not (tmp_path / "p.key.pending").exists()


def test_a_bad_csv_is_named_before_the_directory_is_asked(tmp_path: Path) -> None:
    """Without --node the nodes come from the coordinator's directory; a folder given as
    --csv, or a CSV without --label, is named first (the coordinator here is not even up)."""
    key = tmp_path / "p.key"
    assert mutualmind("provider", "keygen", "--key", str(key), "--id", "clinic").returncode == 0
    csv_path = tmp_path / "c.csv"
    _write_csv(csv_path, rows=10)
    share = ["provider", "share", "--key", str(key), "--coordinator", "127.0.0.1:1",
             "--certs", str(tmp_path), "--dataset-id", "c1"]
    line = one_line(mutualmind(*share, "--csv", str(tmp_path), "--label", "outcome"), 2)
    assert f"{tmp_path} is a directory; give the path of a CSV file" in line
    assert "give --label COL for a CSV" in one_line(mutualmind(*share, "--csv", str(csv_path)), 2)
    assert not (tmp_path / "p.key.pending").exists()


def test_a_key_that_is_not_the_registered_one_is_named_as_such(market: Market, tmp_path: Path) -> None:
    key, other = tmp_path / "a.key", tmp_path / "b.key"
    for k in (key, other):
        assert mutualmind("provider", "keygen", "--key", str(k), "--id", "clinic").returncode == 0
    common = ["--coordinator", market.coordinator_address, "--certs", str(market.certs)]
    assert mutualmind("provider", "register", "--key", str(key), *common).returncode == 0
    csv_path = tmp_path / "c.csv"
    _write_csv(csv_path, rows=10)
    nodes = [arg for address in market.node_addresses for arg in ("--node", address)]
    line = one_line(mutualmind("provider", "share", "--key", str(other), *common, "--dataset-id", "c1",
                               "--csv", str(csv_path), "--label", "outcome", *nodes), 5)
    assert "does not match the key registered for provider id 'clinic'" in line
    assert "request_message" not in line
    assert all(n.store.list() == [] for n in market.nodes)


def test_a_missing_sponsor_key_is_named_not_its_id_file(tmp_path: Path) -> None:
    missing = tmp_path / "sponsor.key"
    line = one_line(mutualmind("admin", "round", "open", "--round-id", "r1", "--sponsor-key", str(missing),
                               "--pool", "5", "--validation-dataset", "v", "--dataset", "a",
                               "--coordinator", "127.0.0.1:1", "--certs", str(tmp_path)), 3)
    assert f"key file {missing} does not exist" in line and ".id" not in line


def test_attempts_below_one_is_refused_by_the_parser(tmp_path: Path) -> None:
    run = mutualmind("provider", "resume", "--key", str(tmp_path / "p.key"), "--certs",
                     str(tmp_path), "--dataset-id", "c1", "--node", "127.0.0.1:1", "--attempts", "0")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "argument --attempts: '0' is not a whole number from 1" in run.stderr
