"""`mutualmind ledger ...` as a user runs it: real subprocesses on a real ledger file."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger
from ledger.signed_note import verifier_key_string

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mutualmind", "ledger", *args], capture_output=True, text=True,
        cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)}, timeout=60,
    )


def test_verify_ok_prints_summary(filled_ledger: Path) -> None:
    run = _cli("verify", "--db", str(filled_ledger))
    assert run.returncode == 0, run.stderr
    ledger = Ledger.open(filled_ledger)
    try:
        assert f"{ledger.size} entries" in run.stdout
        assert ledger.root_hash().hex() in run.stdout
        assert f"total supply {ledger.state.totals['minted']}" in run.stdout
    finally:
        ledger.close()
    report = json.loads(_cli("verify", "--db", str(filled_ledger), "--json").stdout)
    assert report["ok"] is True and report["first_bad_index"] is None


def test_verify_names_the_first_bad_entry(filled_ledger: Path) -> None:
    conn = sqlite3.connect(filled_ledger, isolation_level=None)
    conn.execute("DROP TRIGGER entries_no_update")
    conn.execute("UPDATE entries SET payload = CAST(replace(CAST(payload AS TEXT), '\"amount\":', '\"amount\":9') AS BLOB) WHERE idx = (SELECT min(idx) FROM entries WHERE idx > 100 AND kind = 'transfer')")
    index = conn.execute("SELECT min(idx) FROM entries WHERE idx > 100 AND kind = 'transfer'").fetchone()[0]
    conn.close()
    run = _cli("verify", "--db", str(filled_ledger))
    assert run.returncode == 1
    assert f"entry {index}: hash" in run.stderr


def test_verify_against_saved_head_catches_truncation(filled_ledger: Path, coordinator_key: Ed25519PrivateKey, tmp_path: Path) -> None:
    head = tmp_path / "head.txt"
    head.write_text(_cli("head", "--db", str(filled_ledger)).stdout)
    size = int(head.read_text().split("\n")[1])  # the latest stored tree head's size
    ledger = Ledger.open(filled_ledger, coordinator_key)
    assert ledger.checkpoints()[-1] == (size, head.read_text())
    ledger.append("mint", {"to": "provider-1", "amount": 5, "memo": ""})
    ledger.checkpoint()
    ledger.close()
    assert _cli("verify", "--db", str(filled_ledger), "--checkpoint", str(head)).returncode == 0
    conn = sqlite3.connect(filled_ledger, isolation_level=None)
    conn.execute("DROP TRIGGER entries_no_delete")
    conn.execute("DELETE FROM entries WHERE idx >= ?", (size - 3,))
    conn.execute("DELETE FROM checkpoints WHERE size > ?", (size - 3,))
    conn.close()
    run = _cli("verify", "--db", str(filled_ledger), "--checkpoint", str(head))
    assert run.returncode == 1 and f"entry {size - 3}: missing entry" in run.stderr


def test_show_filters_by_kind_and_party(filled_ledger: Path) -> None:
    run = _cli("show", "--db", str(filled_ledger), "--kind", "transfer", "--limit", "5", "--json")
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert run.returncode == 0 and len(lines) == 5 and {e["kind"] for e in lines} == {"transfer"}
    assert lines == sorted(lines, key=lambda e: e["index"])
    run = _cli("show", "--db", str(filled_ledger), "--party", "provider-2", "--limit", "1000", "--json")
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert lines and all("provider-2" in json.dumps(e["payload"]) for e in lines)
    table = _cli("show", "--db", str(filled_ledger), "--limit", "3")
    assert table.returncode == 0 and len(table.stdout.splitlines()) == 1 + 3  # header + 3 entries


def test_proof_round_trip_and_forgery(filled_ledger: Path, coordinator_key: Ed25519PrivateKey, tmp_path: Path) -> None:
    proof_path = tmp_path / "proof.json"
    run = _cli("proof", "--db", str(filled_ledger), "--index", "57", "--out", str(proof_path))
    assert run.returncode == 0, run.stderr
    vkey = verifier_key_string("mutualmind.example/ledger", coordinator_key)
    assert _cli("head", "--db", str(filled_ledger), "--vkey-only").stdout.strip() == vkey
    ok = _cli("check-proof", str(proof_path), "--vkey", vkey)
    assert ok.returncode == 0 and "entry 57" in ok.stdout
    document = json.loads(proof_path.read_text())
    document["proof"][0] = "00" * 32
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    bad = _cli("check-proof", str(forged), "--vkey", vkey)
    assert bad.returncode == 1 and "root mismatch" in bad.stderr
    other = verifier_key_string("mutualmind.example/ledger", Ed25519PrivateKey.generate())
    assert _cli("check-proof", str(proof_path), "--vkey", other).returncode == 1


def test_consistency_proof_since_a_saved_head(filled_ledger: Path, coordinator_key: Ed25519PrivateKey, tmp_path: Path) -> None:
    old_head = tmp_path / "old.txt"
    old_head.write_text(_cli("head", "--db", str(filled_ledger)).stdout)
    ledger = Ledger.open(filled_ledger, coordinator_key)
    for _ in range(3):
        ledger.append("mint", {"to": "provider-1", "amount": 5, "memo": ""})
        ledger.checkpoint()
    ledger.close()
    proof_path = tmp_path / "consistency.json"
    assert _cli("proof", "--db", str(filled_ledger), "--since", str(old_head), "--out", str(proof_path)).returncode == 0
    vkey = verifier_key_string("mutualmind.example/ledger", coordinator_key)
    ok = _cli("check-proof", str(proof_path), "--vkey", vkey)
    assert ok.returncode == 0 and "extends the head" in ok.stdout, ok.stderr
    document = json.loads(proof_path.read_text())
    document["proof"][-1] = "11" * 32
    proof_path.write_text(json.dumps(document))
    bad = _cli("check-proof", str(proof_path), "--vkey", vkey)
    assert bad.returncode == 1 and "proof rejected" in bad.stderr


def test_missing_file_is_a_typed_error(tmp_path: Path) -> None:
    run = _cli("verify", "--db", str(tmp_path / "nope.db"))
    assert run.returncode == 3 and "no ledger file" in run.stderr
    assert not (tmp_path / "nope.db").exists()


def test_ledger_commands_find_the_cluster_ledger_through_the_data_dir(filled_ledger: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "cluster"
    (data_dir / "coordinator").mkdir(parents=True)
    Path(data_dir / "coordinator" / "ledger.db").symlink_to(filled_ledger)
    env = os.environ | {"PYTHONPATH": str(REPO), "MUTUALMIND_DATA_DIR": str(data_dir)}
    run = subprocess.run([sys.executable, "-m", "mutualmind", "ledger", "verify"], check=False,
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("ok: ")
    bare = os.environ | {"PYTHONPATH": str(REPO)}
    bare.pop("MUTUALMIND_DATA_DIR", None)
    missing = subprocess.run([sys.executable, "-m", "mutualmind", "ledger", "show"], check=False,
                             capture_output=True, text=True, cwd=REPO, env=bare, timeout=60)
    assert missing.returncode != 0
    assert "--db" in missing.stderr and "MUTUALMIND_DATA_DIR" in missing.stderr


def test_show_has_a_header_and_refuses_an_unknown_kind(filled_ledger: Path) -> None:
    run = _cli("show", "--db", str(filled_ledger), "--limit", "3")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["index", "kind", "payload"] and len(lines) == 4
    unknown = _cli("show", "--db", str(filled_ledger), "--kind", "payouts")
    assert unknown.returncode != 0
    assert "unknown entry kind 'payouts'" in unknown.stderr and "payout" in unknown.stderr


def test_check_proof_of_a_directory_or_binary_file_is_one_line(tmp_path: Path) -> None:
    binary = tmp_path / "proof.bin"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    for target, says in ((tmp_path, "is a directory"), (binary, "not a UTF-8 text file")):
        run = _cli("check-proof", str(target))
        assert run.returncode != 0
        assert says in run.stderr and "Traceback" not in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1


def test_a_reader_that_stops_early_gets_no_traceback(filled_ledger: Path) -> None:
    """`mutualmind ledger show --json | head -1`: the reader closes the pipe; the command
    stops quietly with SIGPIPE's exit status, as `cat` does."""
    for args in (["show", "--json"], ["verify"]):
        run = subprocess.Popen([sys.executable, "-m", "mutualmind", "ledger", *args, "--db",
                                str(filled_ledger)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert run.stdout is not None and run.stderr is not None
        run.stdout.close()                   # before the command has written anything
        err = run.stderr.read().decode()
        assert run.wait(timeout=60) == 141, err
        assert err == "", err
