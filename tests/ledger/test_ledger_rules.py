"""Appending: every rule refuses with a typed error naming it, and writes nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger, verify_ledger
from ledger.workload import Market
from mutualmind.errors import InvalidInput, PermissionDenied, RuleViolation, Unavailable
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.payloads import request_message
from mutualmind.vocabulary.signing_keys import generate_signing_key


@pytest.fixture
def world(tmp_path: Path, coordinator_key: Ed25519PrivateKey):  # type: ignore[no-untyped-def]
    """A ledger with 2 nodes, providers alice/bob/carol, 3 datasets, stakes and an open round."""
    ledger = Ledger.create(tmp_path / "ledger.db", coordinator_key, params={"nodes": 2})
    market = Market()
    ledger.append_many([market.register_node(0), market.register_node(1)])
    for name in ("alice", "bob", "carol"):
        ledger.append(*market.register_provider(name))
        ledger.append(*market.mint(name, 10_000))
    ledger.append_many([
        market.register_dataset("ds-a", "alice"), market.stake("alice", "ds-a", 1000),
        market.register_dataset("ds-b", "bob"), market.stake("bob", "ds-b", 1000),
        market.register_dataset("ds-c", "alice"), market.stake("alice", "ds-c", 1000),
        market.register_dataset("val", "carol", "validation"),
        market.open_round("r1", "carol", 3000, "val", ["ds-a", "ds-b", "ds-c"]),
    ])
    yield ledger, market
    ledger.close()


def _count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT count(*) FROM entries").fetchone()[0]
    finally:
        conn.close()


def _refused(ledger: Ledger, error: type[Exception], request: tuple[str, dict[str, Any], Any], rule: str | None = None) -> Exception:
    size, root, balances = ledger.size, ledger.root_hash(), dict(ledger.state.balances)
    stakes, nonces = dict(ledger.state.stakes), dict(ledger.state.used_nonces)
    with pytest.raises(error) as caught:
        ledger.append(*request)
    if rule is not None:
        assert caught.value.rule == rule  # type: ignore[attr-defined]
    assert ledger.size == size and ledger.root_hash() == root
    assert ledger.state.balances == balances and ledger.state.stakes == stakes
    assert ledger.state.used_nonces == nonces
    assert _count(ledger.path) == size
    return caught.value


def test_state_after_setup(world) -> None:  # type: ignore[no-untyped-def]
    ledger, _ = world
    assert ledger.state.balances == {"alice": 8000, "bob": 9000, "carol": 7000}
    assert ledger.state.stakes == {"ds-a": 1000, "ds-b": 1000, "ds-c": 1000}
    assert ledger.state.pools == {"r1": 3000}
    assert ledger.state.rounds["r1"].status == "open"
    assert ledger.state.recount_supply() == {"minted": 30000, "balances": 24000, "stakes": 3000, "pools": 3000}


@pytest.mark.parametrize("build, error, rule", [
    (lambda m: m.transfer("alice", "bob", 9001), RuleViolation, "insufficient_balance"),
    (lambda m: m.stake("alice", "ds-a", 9001), RuleViolation, "insufficient_balance"),
    (lambda m: m.mint("mallory", 5), RuleViolation, "unknown_provider"),
    (lambda m: ("mint", {"to": "alice", "amount": 0, "memo": ""}, None), RuleViolation, "amount_not_positive"),
    (lambda m: ("mint", {"to": "alice", "amount": -5, "memo": ""}, None), RuleViolation, "amount_not_positive"),
    (lambda m: m.stake("bob", "ds-a", 10), RuleViolation, "not_owner"),
    (lambda m: m.stake("alice", "ds-a", 10, kind="unstake"), RuleViolation, "stake_locked"),
    (lambda m: m.register_provider("alice"), RuleViolation, "provider_exists"),
    (lambda m: ("payout", {"round_id": "r1", "to": "alice", "amount": 1}, None), RuleViolation, "round_state"),
    (lambda m: ("round_closed", {"round_id": "r9"}, None), RuleViolation, "unknown_round"),
    (lambda m: m.open_round("r2", "carol", 99_999, "val", ["ds-a", "ds-b", "ds-c"]), RuleViolation, "insufficient_balance"),
    (lambda m: ("genesis", {"coordinator_key": "00" * 32, "origin": "x", "params": {}}, None), RuleViolation, "genesis_first"),
])
def test_rule_refusals_name_the_rule_and_write_nothing(world, build: Callable, error: type, rule: str) -> None:  # type: ignore[no-untyped-def]
    ledger, market = world
    _refused(ledger, error, build(market), rule)


def test_reused_nonce_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market = world
    kind, payload, signature = market.transfer("alice", "bob", 5)
    ledger.append(kind, payload, signature)
    _refused(ledger, RuleViolation, (kind, payload, signature), "nonce_reused")


def test_bad_or_missing_provider_signature_is_permission_denied(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market = world
    kind, payload, _ = market.transfer("alice", "bob", 5)
    forged = generate_signing_key().sign(request_message(kind, payload))
    err = _refused(ledger, PermissionDenied, (kind, payload, forged))
    assert "alice" in str(err)
    _refused(ledger, PermissionDenied, (kind, payload, None))
    # a signature over a stake cannot be replayed as an unstake: the kind is signed too
    ledger.append("round_aborted", {"round_id": "r1", "reason": "test"}, None)  # unlocks stakes
    stake_kind, stake_payload, stake_sig = market.stake("alice", "ds-a", 5)
    _refused(ledger, PermissionDenied, ("unstake", stake_payload, stake_sig))
    ledger.append(stake_kind, stake_payload, stake_sig)


def test_malformed_payloads_are_invalid_input(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market = world
    _refused(ledger, InvalidInput, ("mint", {"to": "alice", "amount": 1.5, "memo": ""}, None))
    _refused(ledger, InvalidInput, ("mint", {"to": "alice", "amount": 5}, None))
    _refused(ledger, InvalidInput, ("mint", {"to": "alice", "amount": 5, "memo": "", "x": 1}, None))
    _refused(ledger, InvalidInput, ("teleport", {}, None))
    _refused(ledger, InvalidInput, ("mint", {"to": "alice", "amount": 5, "memo": ""}, b"\x01" * 64))
    kind, payload, signature = market.transfer("alice", "bob", 5)
    _refused(ledger, InvalidInput, (kind, payload, signature.hex()))
    _refused(ledger, PermissionDenied, (kind, payload, signature + b"\x00"))


def test_round_lifecycle_slash_payout_close(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market = world
    ledger.append(*market.round_result("r1", [900_000, 850_000, 910_000, 900_000]))  # ds-b hurt
    _refused(ledger, RuleViolation, ("slash", {"round_id": "r1", "dataset_id": "ds-a", "provider_id": "alice", "amount": 10}, None), "slash_unwarranted")
    _refused(ledger, RuleViolation, ("slash", {"round_id": "r1", "dataset_id": "ds-b", "provider_id": "bob", "amount": 101}, None), "slash_too_large")
    ledger.append("slash", {"round_id": "r1", "dataset_id": "ds-b", "provider_id": "bob", "amount": 100}, None)
    assert ledger.state.pools["r1"] == 3100 and ledger.state.stakes["ds-b"] == 900
    ledger.append("payout", {"round_id": "r1", "to": "alice", "amount": 3000}, None)
    _refused(ledger, RuleViolation, ("round_closed", {"round_id": "r1"}, None), "pool_not_empty")
    _refused(ledger, RuleViolation, ("payout", {"round_id": "r1", "to": "alice", "amount": 101}, None), "pool_exhausted")
    ledger.append("payout", {"round_id": "r1", "to": "carol", "amount": 100}, None)
    before = len(ledger.checkpoints())
    ledger.append("round_closed", {"round_id": "r1"}, None)
    assert len(ledger.checkpoints()) == before + 1 and ledger.checkpoints()[-1][0] == ledger.size
    ledger.append(*market.stake("alice", "ds-a", 1000, kind="unstake"))  # unlocked after close
    assert ledger.state.balances["alice"] == 12_000
    report = verify_ledger(ledger.path)
    assert report.ok, report.error
    assert report.total_supply == 30_000


def _verified(ledger: Ledger, verdict: str, diff: int,
              contributions: int = 3) -> tuple[str, dict[str, Any], None]:
    return ("round_verified", {"round_id": "r1", "job_digest": ledger.state.rounds["r1"].job_digest,
                               "recomputed_micro": [10] * contributions, "max_abs_diff_micro": diff,
                               "tolerance_micro": 10_000, "verdict": verdict}, None)


def test_round_verified_records_a_rerun_of_a_closed_round_only(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market = world
    _refused(ledger, RuleViolation, _verified(ledger, "agrees", 5), "round_state")     # still open
    ledger.append(*market.round_result("r1", [900_000, 890_000, 880_000, 900_000]))
    ledger.append("payout", {"round_id": "r1", "to": "alice", "amount": 3000}, None)
    ledger.append("round_closed", {"round_id": "r1"}, None)
    balances = dict(ledger.state.balances)
    _refused(ledger, RuleViolation, _verified(ledger, "agrees", 20_000), "verdict_mismatch")
    _refused(ledger, RuleViolation, _verified(ledger, "disagrees", 5), "verdict_mismatch")
    _refused(ledger, RuleViolation, _verified(ledger, "agrees", 5, contributions=2), "verification_shape")
    ledger.append(*_verified(ledger, "disagrees", 20_000))
    ledger.append(*_verified(ledger, "agrees", 5))
    assert ledger.state.balances == balances                                  # moves nothing
    assert verify_ledger(ledger.path).ok


def test_round_verified_disagrees_on_a_contribution_that_changed_sides(world) -> None:  # type: ignore[no-untyped-def]
    """Paid in one run and slashed in the other, beyond the band, disagrees within any
    tolerance; a change of side inside the recorded band (honest noise near zero) does not;
    an entry without a band (written before it was recorded) counts flips beyond epsilon."""
    ledger, market = world
    ledger.append(*market.round_result("r1", [900_000, 890_000, 880_000, 898_999]))
    ledger.append("payout", {"round_id": "r1", "to": "alice", "amount": 3000}, None)
    ledger.append("round_closed", {"round_id": "r1"}, None)
    record = ledger.state.rounds["r1"]
    assert record.contributions == (10_000, 20_000, 1_001) and record.epsilon_micro == 1_000

    def verified(recomputed: list[int], verdict: str, **extra: int) -> tuple[str, dict[str, Any], None]:
        diff = max(abs(a - b) for a, b in zip(record.contributions, recomputed, strict=True))
        return ("round_verified", {"round_id": "r1", "job_digest": record.job_digest, "recomputed_micro": recomputed,
                                   "max_abs_diff_micro": diff, "tolerance_micro": 100_000, "verdict": verdict,
                                   **extra}, None)
    clear = [10_000, -20_000, 1_001]      # 40,000 apart: within the tolerance, a clear flip
    _refused(ledger, RuleViolation, verified(clear, "agrees", flip_band_micro=2_500), "verdict_mismatch")
    ledger.append(*verified(clear, "disagrees", flip_band_micro=2_500))
    near = [10_000, 20_000, -1_001]       # just past epsilon each way, inside a 2,500 band
    _refused(ledger, RuleViolation, verified(near, "disagrees", flip_band_micro=2_500), "verdict_mismatch")
    ledger.append(*verified(near, "agrees", flip_band_micro=2_500))
    _refused(ledger, RuleViolation, verified(near, "agrees"), "verdict_mismatch")   # no band: epsilon
    ledger.append(*verified(near, "disagrees"))
    assert verify_ledger(ledger.path).ok


def test_a_result_for_another_job_digest_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    """Attestations must name the digest of this round's model spec and input commitments."""
    ledger, market = world
    kind, payload, _ = market.round_result("r1", [900_000, 850_000, 910_000, 900_000])
    assert payload["job_digest"] == ledger.state.rounds["r1"].job_digest
    market.rounds["r1"] = dict(market.rounds["r1"], model_spec={"model": "mlp"})
    _refused(ledger, RuleViolation, market.round_result("r1", [900_000, 850_000, 910_000, 900_000]),
             "job_digest")


def test_bad_attestation_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market = world
    kind, payload, _ = market.round_result("r1", [900_000, 850_000, 910_000, 900_000])
    payload["attestations"][1]["signature"] = "00" * 64
    _refused(ledger, PermissionDenied, (kind, payload, None))
    kind, payload, _ = market.round_result("r1", [900_000, 850_000, 910_000, 900_000])
    payload["attestations"] = payload["attestations"][:1]
    _refused(ledger, RuleViolation, (kind, payload, None), "attestations")


def test_abort_returns_pool_to_sponsor(world) -> None:  # type: ignore[no-untyped-def]
    ledger, _ = world
    ledger.append("round_aborted", {"round_id": "r1", "reason": "node down"}, None)
    assert ledger.state.balances["carol"] == 10_000 and ledger.state.pools["r1"] == 0
    assert ledger.state.rounds["r1"].status == "aborted"


def test_batch_is_all_or_nothing(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market = world
    size, balances = ledger.size, dict(ledger.state.balances)
    with pytest.raises(RuleViolation):
        ledger.append_many([market.transfer("alice", "bob", 10), market.mint("alice", 1),
                            market.transfer("bob", "alice", 10**6)])
    assert ledger.size == size and ledger.state.balances == balances and _count(ledger.path) == size
    ledger.append_many([market.transfer("alice", "bob", 10), market.mint("alice", 1)])
    assert ledger.size == size + 2


def test_reopen_replays_same_state_and_one_writer(world, coordinator_key: Ed25519PrivateKey) -> None:  # type: ignore[no-untyped-def]
    ledger, market = world
    with pytest.raises(Unavailable):
        Ledger.open(ledger.path, coordinator_key)
    reader = Ledger.open(ledger.path)
    try:
        assert reader.state.balances == ledger.state.balances
        assert reader.state.rounds == ledger.state.rounds
        assert reader.root_hash() == ledger.root_hash()
        with pytest.raises(PermissionDenied):
            reader.append(*market.mint("alice", 1))
    finally:
        reader.close()
    path = ledger.path
    ledger.close()
    with pytest.raises(PermissionDenied):
        Ledger.open(path, generate_signing_key())
    Ledger.open(path, coordinator_key).close()


def test_canonical_json_refuses_floats_and_sorts_keys() -> None:
    assert canonical_json({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'.encode()
    with pytest.raises(InvalidInput, match="float"):
        canonical_json({"amount": 1.0})
    with pytest.raises(InvalidInput):
        canonical_json({"amount": 2**64})


def test_create_refuses_existing_file(world, coordinator_key: Ed25519PrivateKey, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    other = tmp_path / "other.db"
    other.write_bytes(b"not a ledger")
    with pytest.raises(InvalidInput):
        Ledger.create(other, coordinator_key)
    assert other.read_bytes() == b"not a ledger"


def test_open_of_a_missing_file_leaves_nothing_behind(tmp_path: Path, coordinator_key: Ed25519PrivateKey) -> None:
    from mutualmind.errors import NotFound

    with pytest.raises(NotFound):
        Ledger.open(tmp_path / "absent.db", coordinator_key)
    with pytest.raises(InvalidInput, match="origin"):
        Ledger.create(tmp_path / "bad-origin.db", coordinator_key, origin="has space")
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_at_least_every_thousand_entries(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market = world
    for _ in range(3):
        ledger.append_many([market.mint("alice", 1) for _ in range(700)])
    sizes = [size for size, _ in ledger.checkpoints()]
    gaps = [b - a for a, b in zip([0, *sizes], sizes)]
    assert ledger.size - sizes[-1] < 1000 and max(gaps) <= 1000 and len(sizes) >= 2
    report = verify_ledger(ledger.path)
    assert report.ok and report.checkpoints == len(sizes)


def test_entries_filters_by_kind_and_party(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market = world
    ledger.append(*market.transfer("alice", "bob", 7))
    mints = ledger.entries(kind="mint", limit=None)
    assert [e.payload["to"] for e in mints] == ["alice", "bob", "carol"]
    bobs = ledger.entries(party="bob", limit=None)
    assert {e.kind for e in bobs} == {"provider_registered", "mint", "dataset_registered", "stake", "transfer"}
    assert ledger.entries(start=ledger.size - 1, limit=5)[0].payload["amount"] == 7
    assert ledger.entry(0).kind == "genesis"
    with pytest.raises(InvalidInput):
        ledger.entries(kind="nonsense")


COPY_B = {"counts": [0, 40, 3], "samples": [0, 64, 64]}  # ds-b repeats ds-a's rows: a copy


def test_a_dataset_the_attested_copy_counts_mark_may_be_slashed_whatever_its_contribution(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market = world
    # ds-b helped the model (+50,000 micro) but its rows repeat ds-a's; ds-c's 3 of 64 do not count
    ledger.append(*market.round_result("r1", [900_000, 910_000, 850_000, 900_000], COPY_B))
    assert ledger.state.rounds["r1"].copies == frozenset({"ds-b"})
    _refused(ledger, RuleViolation, ("slash", {"round_id": "r1", "dataset_id": "ds-c", "provider_id": "alice", "amount": 10}, None), "slash_unwarranted")
    _refused(ledger, RuleViolation, ("slash", {"round_id": "r1", "dataset_id": "ds-b", "provider_id": "bob", "amount": 101}, None), "slash_too_large")
    _refused(ledger, RuleViolation, ("payout", {"round_id": "r1", "to": "bob", "amount": 1}, None), "copy_paid")
    ledger.append_many([
        ("slash", {"round_id": "r1", "dataset_id": "ds-b", "provider_id": "bob", "amount": 100}, None),
        ("payout", {"round_id": "r1", "to": "alice", "amount": 3100}, None),
        ("round_closed", {"round_id": "r1"}, None),
    ])
    # a re-run must flag the same datasets for its verdict to agree
    verified = _verified(ledger, "agrees", 5)
    _refused(ledger, RuleViolation, (verified[0], {**verified[1], "recomputed_copies": {"counts": [0, 3, 3], "samples": [0, 64, 64]}}, None), "verdict_mismatch")
    ledger.append(verified[0], {**verified[1], "recomputed_copies": {"counts": [0, 17, 0], "samples": [0, 64, 64]}}, None)
    report = verify_ledger(ledger.path)  # replays the rule and checks the attestations over the counts
    assert report.ok, report.error


def test_copy_counts_are_signed_by_the_nodes_and_shaped_per_dataset(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market = world
    kind, payload, _ = market.round_result("r1", [900_000, 910_000, 850_000, 900_000], COPY_B)
    forged = {**payload, "copies": {"counts": [0, 0, 3], "samples": [0, 64, 64]}}  # the copier's wish
    _refused(ledger, PermissionDenied, (kind, forged, None))
    _refused(ledger, RuleViolation, market.round_result("r1", [900_000, 910_000, 850_000, 900_000],
                                                        {"counts": [0, 40], "samples": [0, 64]}), "result_shape")
    _refused(ledger, InvalidInput, market.round_result("r1", [900_000, 910_000, 850_000, 900_000],
                                                       {"counts": [0, 65, 3], "samples": [0, 64, 64]}))
