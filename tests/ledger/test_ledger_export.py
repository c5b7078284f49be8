"""`mutualmind ledger export`: a copy taken while the coordinator holds the ledger open is
complete (a plain file copy is not: the newest entries sit in the write-ahead log)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger, verify_ledger
from ledger.workload import realistic_mix
from mutualmind.errors import InvalidInput

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mutualmind", "ledger", *args], check=False, capture_output=True, text=True,
        cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)}, timeout=60,
    )


def test_export_of_an_open_ledger_is_whole_while_a_plain_copy_is_not(
    tmp_path: Path, coordinator_key: Ed25519PrivateKey
) -> None:
    db = tmp_path / "ledger.db"
    ledger = Ledger.create(db, coordinator_key, params={"nodes": 3})
    try:
        ledger.append_many(list(realistic_mix(200, seed=3, providers=5)))
        size, root = ledger.size, ledger.root_hash()
        # What a user gets from `cp ledger.db` while the coordinator runs: the WAL is not in it.
        shutil.copyfile(db, tmp_path / "plain-copy.db")
        run = _cli("export", "--db", str(db), "--out", str(tmp_path / "export.db"))
        assert run.returncode == 0, run.stderr
        assert f"exported {size} entries" in run.stdout
    finally:
        ledger.close()
    with pytest.raises(InvalidInput):  # the failure export fixes: the plain copy is empty
        verify_ledger(tmp_path / "plain-copy.db")
    out = tmp_path / "export.db"
    assert not Path(f"{out}-wal").exists()  # one self-contained file
    report = verify_ledger(out)
    assert report.ok and report.entries == size and report.root == root
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".export")) == []


def test_export_refuses_to_overwrite_and_leaves_the_old_file(filled_ledger: Path, tmp_path: Path) -> None:
    out = tmp_path / "kept.db"
    out.write_bytes(b"an earlier export")
    run = _cli("export", "--db", str(filled_ledger), "--out", str(out))
    assert run.returncode != 0
    assert "exists" in run.stderr and "--force" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert out.read_bytes() == b"an earlier export"
    forced = _cli("export", "--db", str(filled_ledger), "--out", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert verify_ledger(out).ok


def test_export_of_a_missing_ledger_or_into_a_missing_folder_says_so(filled_ledger: Path, tmp_path: Path) -> None:
    missing = _cli("export", "--db", str(tmp_path / "nope.db"), "--out", str(tmp_path / "x.db"))
    assert missing.returncode != 0 and "no ledger file" in missing.stderr
    nofolder = _cli("export", "--db", str(filled_ledger), "--out", str(tmp_path / "no" / "x.db"))
    assert nofolder.returncode != 0 and "does not exist" in nofolder.stderr
    assert not (tmp_path / "x.db").exists()
