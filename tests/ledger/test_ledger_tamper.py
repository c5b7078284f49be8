"""Tampering with the file: `verify` finds every change and names the right entry."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger, verify_ledger
from ledger.signed_note import verifier_key_string
from mutualmind.vocabulary.signing_keys import generate_signing_key

FIELDS = ("idx", "time_ms", "kind", "payload", "prev_hash", "hash", "signature", "provider_signature")


def _edit(path: Path) -> sqlite3.Connection:
    """Open the file as an attacker would: drop the append-only triggers first."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS entries_no_update")
    conn.execute("DROP TRIGGER IF EXISTS entries_no_delete")
    return conn


def _flip_int(value: int, rng: random.Random) -> int:
    raw = bytearray(value.to_bytes(8, "big", signed=True))
    raw[rng.randrange(8)] ^= 1 << rng.randrange(8)
    return int.from_bytes(raw, "big", signed=True)


def _flip_byte(path: Path, rng: random.Random, field: str) -> int:
    """Flip one bit of one byte of `field` of a random entry; return the entry's index."""
    conn = _edit(path)
    try:
        count = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
        while True:
            index = rng.randrange(count)
            value = conn.execute(f"SELECT {field} FROM entries WHERE idx = ?", (index,)).fetchone()[0]
            if value is None:
                continue  # no provider signature on this entry: pick again
            if isinstance(value, int):
                new: object = _flip_int(value, rng)
                if field == "idx" and conn.execute("SELECT 1 FROM entries WHERE idx = ?", (new,)).fetchone():
                    continue
            else:
                raw = bytearray(value.encode() if isinstance(value, str) else value)
                raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
                new = bytes(raw)
                if isinstance(value, str):
                    try:
                        new = bytes(raw).decode("utf-8")
                    except UnicodeDecodeError:
                        pass  # stored as a blob: still a byte flip of that field
            conn.execute(f"UPDATE entries SET {field} = ? WHERE idx = ?", (new, index))
            return index
    finally:
        conn.close()


def test_untouched_ledger_verifies(filled_ledger: Path, coordinator_key: Ed25519PrivateKey) -> None:
    report = verify_ledger(filled_ledger, vkey=verifier_key_string("mutualmind.example/ledger", coordinator_key))
    assert report.ok, report.error
    assert report.entries == report.tree_size > 250 and report.checkpoints >= 1
    assert report.total_supply > 0


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("field", FIELDS)
def test_single_byte_flip_is_found_at_its_index(filled_ledger: Path, field: str, seed: int) -> None:
    index = _flip_byte(filled_ledger, random.Random(seed), field)
    report = verify_ledger(filled_ledger)
    assert not report.ok, f"flip of {field} at {index} went unnoticed"
    assert report.first_bad_index == index, (field, report.problem, report.error)


@pytest.mark.parametrize("assignment", [
    "payload = 1000000000000",            # an integer where bytes belong
    "kind = CAST(x'6d69ff6e74' AS TEXT)",  # text that is not UTF-8
    "time_ms = 'yesterday'",
    "prev_hash = 12345",
])
def test_fields_of_the_wrong_type_are_found_not_crashed_on(filled_ledger: Path, assignment: str) -> None:
    conn = _edit(filled_ledger)
    conn.execute(f"UPDATE entries SET {assignment} WHERE idx = 77")
    conn.close()
    report = verify_ledger(filled_ledger)
    assert (report.ok, report.first_bad_index) == (False, 77)


def test_deleted_entry_is_found(filled_ledger: Path) -> None:
    conn = _edit(filled_ledger)
    conn.execute("DELETE FROM entries WHERE idx = 123")
    conn.close()
    report = verify_ledger(filled_ledger)
    assert (report.ok, report.first_bad_index, report.problem) == (False, 123, "missing entry")


def test_swapped_entries_are_found_at_the_first(filled_ledger: Path) -> None:
    conn = _edit(filled_ledger)
    columns = ", ".join(FIELDS[1:])
    a = conn.execute(f"SELECT {columns} FROM entries WHERE idx = 40").fetchone()
    b = conn.execute(f"SELECT {columns} FROM entries WHERE idx = 200").fetchone()
    assignments = ", ".join(f"{name} = ?" for name in FIELDS[1:])
    conn.execute(f"UPDATE entries SET {assignments} WHERE idx = 40", (*b,))
    conn.execute(f"UPDATE entries SET {assignments} WHERE idx = 200", (*a,))
    conn.close()
    report = verify_ledger(filled_ledger)
    assert not report.ok and report.first_bad_index == 40


def test_truncated_tail_is_found_against_an_earlier_tree_head(
    filled_ledger: Path, coordinator_key: Ed25519PrivateKey
) -> None:
    ledger = Ledger.open(filled_ledger, coordinator_key)
    head = ledger.checkpoint()
    size = ledger.size
    ledger.close()
    conn = _edit(filled_ledger)
    conn.execute("DELETE FROM entries WHERE idx >= ?", (size - 17,))
    conn.execute("DELETE FROM checkpoints WHERE size > ?", (size - 17,))
    conn.close()
    assert verify_ledger(filled_ledger).ok  # alone, a clean cut cannot be seen...
    report = verify_ledger(filled_ledger, trusted_checkpoints=[head])  # ...against a saved head it can
    assert (report.ok, report.first_bad_index) == (False, size - 17)
    assert "truncated" in (report.error or "")


def test_truncation_leaving_stored_checkpoints_is_found(filled_ledger: Path) -> None:
    conn = _edit(filled_ledger)
    last = conn.execute("SELECT max(size) FROM checkpoints").fetchone()[0]
    conn.execute("DELETE FROM entries WHERE idx >= ?", (last - 5,))
    conn.close()
    report = verify_ledger(filled_ledger)
    assert (report.ok, report.first_bad_index) == (False, last - 5)


def test_rewritten_history_under_another_key_fails_a_pinned_key(tmp_path: Path, fill_ledger, coordinator_key: Ed25519PrivateKey) -> None:  # type: ignore[no-untyped-def]
    forged = tmp_path / "forged.db"
    fill_ledger(forged, generate_signing_key(), 50)
    pinned = verifier_key_string("mutualmind.example/ledger", coordinator_key)
    report = verify_ledger(forged, vkey=pinned)
    assert (report.ok, report.first_bad_index) == (False, 0)


def test_parallel_verify_finds_flip_in_a_later_chunk(tmp_path: Path, fill_ledger, coordinator_key: Ed25519PrivateKey) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "big.db"
    fill_ledger(path, coordinator_key, 4600, seed=3)
    assert verify_ledger(path, workers=2).ok
    conn = _edit(path)
    conn.execute("UPDATE entries SET signature = zeroblob(64) WHERE idx IN (3900, 4400)")
    conn.close()
    report = verify_ledger(path, workers=2)
    assert (report.ok, report.first_bad_index, report.problem) == (False, 3900, "coordinator signature")


def test_opening_a_tampered_ledger_is_refused(filled_ledger: Path, coordinator_key: Ed25519PrivateKey) -> None:
    from mutualmind.errors import IntegrityError

    conn = _edit(filled_ledger)
    index = conn.execute("SELECT min(idx) FROM entries WHERE idx >= 150 AND kind = 'mint'").fetchone()[0]
    conn.execute("UPDATE entries SET payload = CAST(replace(CAST(payload AS TEXT), '\"amount\":', '\"amount\":1') AS BLOB) WHERE idx = ?", (index,))
    conn.close()
    with pytest.raises(IntegrityError, match=f"entry {index}"):
        Ledger.open(filled_ledger, coordinator_key)


def _forge(path: Path, key: Ed25519PrivateKey, kind: str, payload: dict, provider_signature: bytes | None = None) -> int:
    """Append an entry the way a cheating coordinator would: correctly hashed and signed by
    the coordinator key, but without the ledger's rule and signature checks."""
    from ledger.entries import entry_hash
    from mutualmind.vocabulary.canonical_json import canonical_json

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        index, time_ms, prev = conn.execute("SELECT idx, time_ms, hash FROM entries ORDER BY idx DESC LIMIT 1").fetchone()
        index += 1
        payload_json = canonical_json(payload)
        digest = entry_hash(index, time_ms, kind, prev, provider_signature, payload_json)
        conn.execute("INSERT INTO entries VALUES (?,?,?,?,?,?,?,?)",
                     (index, time_ms, kind, payload_json, prev, digest, key.sign(digest), provider_signature))
    finally:
        conn.close()
    return index


def test_transfer_signed_by_a_stranger_is_a_provider_signature_failure(filled_ledger: Path, coordinator_key: Ed25519PrivateKey) -> None:
    from mutualmind.vocabulary.payloads import request_message

    ledger = Ledger.open(filled_ledger)
    state = ledger.state
    rich = max(state.balances, key=state.balances.get)
    poor = min(state.balances, key=state.balances.get)
    ledger.close()
    # a transfer "authorised" by a key that is not the sender's
    overspend = {"from": poor, "to": rich, "amount": state.balances[poor] + 1, "nonce": "n" * 16}
    stranger = generate_signing_key()
    index = _forge(filled_ledger, coordinator_key, "transfer", overspend, stranger.sign(request_message("transfer", overspend)))
    report = verify_ledger(filled_ledger)
    assert (report.first_bad_index, report.problem) == (index, "provider signature")


def test_overspend_signed_by_its_sender_is_a_broken_rule(tmp_path: Path, coordinator_key: Ed25519PrivateKey) -> None:
    from ledger.workload import Market

    path = tmp_path / "ledger.db"
    market = Market()
    ledger = Ledger.create(path, coordinator_key)
    ledger.append_many([market.register_node(0), market.register_node(1), market.register_provider("a"),
                        market.register_provider("b"), market.mint("a", 100), market.mint("b", 100),
                        market.register_dataset("d", "a"), market.stake("a", "d", 50),
                        market.register_dataset("d2", "b"), market.stake("b", "d2", 1),
                        market.register_dataset("d3", "b"), market.stake("b", "d3", 1),
                        market.register_dataset("v", "b", "validation"),
                        market.open_round("r", "b", 10, "v", ["d", "d2", "d3"])])
    ledger.close()
    # 1) a transfer of more than the balance, properly signed by its sender: rule broken on replay
    kind, payload, signature = market.transfer("a", "b", 51)
    index = _forge(path, coordinator_key, kind, payload, signature)
    report = verify_ledger(path)
    assert (report.first_bad_index, report.problem) == (index, "rule broken on replay")
    assert "insufficient_balance" in (report.error or "")


def test_forged_node_attestation_is_named(tmp_path: Path, coordinator_key: Ed25519PrivateKey) -> None:
    from ledger.workload import Market

    path = tmp_path / "ledger.db"
    market = Market()
    ledger = Ledger.create(path, coordinator_key)
    ledger.append_many([market.register_node(0), market.register_node(1), market.register_provider("a"),
                        market.register_provider("b"), market.mint("a", 100), market.mint("b", 100),
                        market.register_dataset("d", "a"), market.stake("a", "d", 50),
                        market.register_dataset("d2", "b"), market.stake("b", "d2", 1),
                        market.register_dataset("d3", "b"), market.stake("b", "d3", 1),
                        market.register_dataset("v", "b", "validation"),
                        market.open_round("r", "b", 10, "v", ["d", "d2", "d3"])])
    ledger.close()
    kind, payload, _ = market.round_result("r", [500_000, 400_000, 450_000, 480_000])
    payload["metrics_micro"] = [900_000, 100_000, 450_000, 480_000]  # the coordinator rewrites what the nodes attested
    index = _forge(path, coordinator_key, kind, payload)
    report = verify_ledger(path)
    assert (report.first_bad_index, report.problem) == (index, "node attestation")


def _three_dataset_market(path: Path, key: Ed25519PrivateKey, terms: dict | None = None):  # type: ignore[no-untyped-def]
    from ledger.workload import Market

    market = Market()
    ledger = Ledger.create(path, key)
    requests = [market.register_node(0), market.register_node(1), market.register_provider("a"),
                market.register_provider("b"), market.mint("a", 100), market.mint("b", 100)]
    for name in ("d0", "d1", "d2"):
        kind, payload, _ = market.register_dataset(name, "a")
        if terms is not None:
            payload["terms"] = terms
        requests += [market.signed(kind, payload, "a"), market.stake("a", name, 1)]
    requests.append(market.register_dataset("v", "b", "validation"))
    ledger.append_many(requests)
    ledger.close()
    return market


@pytest.mark.parametrize("change, terms, problem", [
    ({"model_spec": {"kind": "evil"}}, None, "evil"),
    ({"model_spec": {"kind": "logistic", "lr": "abc"}}, None, "'lr'"),
    ({"model_spec": {"kind": "logistic", "epochs": 10**9}}, None, "epochs"),
    ({"datasets": ["d0", "d1"]}, None, "terms_min_datasets"),
    ({"slash_rate_ppm": 900_000}, None, "terms_max_slash_rate"),
    ({}, {"min_datasets": 3, "model_kinds": ["mlp"], "max_slash_rate_ppm": 0,
          "min_pool_per_row": 0, "sponsors": []}, "terms_model_kinds"),
    ({}, {"min_datasets": 3, "model_kinds": ["logistic"], "max_slash_rate_ppm": 1_000_000,
          "min_pool_per_row": 0, "sponsors": ["a"]}, "terms_sponsors"),
])
def test_a_round_breaking_spec_or_terms_is_a_broken_rule_on_replay(
        tmp_path: Path, coordinator_key: Ed25519PrivateKey, change: dict, terms: dict | None,
        problem: str) -> None:
    """A cheating coordinator that writes a round the workers cannot run, or that a
    dataset's signed terms forbid, is caught by `verify` (the same rules as on append)."""
    path = tmp_path / "ledger.db"
    market = _three_dataset_market(path, coordinator_key, terms)
    kind, payload, _ = market.open_round("r", "b", 10, "v", ["d0", "d1", "d2"], slash_rate_ppm=0)
    payload.update(change)
    kind, payload, signature = market.signed(kind, payload, "b")
    index = _forge(path, coordinator_key, kind, payload, signature)
    report = verify_ledger(path)
    assert (report.first_bad_index, report.problem) == (index, "rule broken on replay")
    assert problem in (report.error or "")
