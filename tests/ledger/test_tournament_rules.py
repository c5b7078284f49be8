"""The model market on a real SQLite ledger: every refusal typed and writing nothing, and a
whole tournament that settles in one group commit, replays and verifies."""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import Ledger, verify_ledger
from ledger.workload import Market
from mutualmind.errors import MutualMindError, PermissionDenied, RuleViolation
from mutualmind.vocabulary.ownership import (
    UNITS_PER_MODEL,
    units_for_earnings,
    units_transfer_payload,
)
from mutualmind.vocabulary.payloads import request_message
from mutualmind.vocabulary.tournament import (
    ModelSubmission,
    TournamentTerms,
    freeze_attestation_message,
    freeze_digest,
    resolution_digest,
    result_attestation_message,
    signed_model_submit,
    signed_tournament_open,
)
from mutualmind.vocabulary.tournament_settlement import ModelPart, abort_entries

Request = tuple[str, dict[str, Any], Any]
START = 1_800_000_000_000
DEADLINE = START + 60_000
RECIPE = {"kind": "logistic", "metric": "accuracy", "epochs": 3}


class Clock:
    """The ledger's clock (entry times), moved by the test instead of by waiting."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    found = Clock()
    monkeypatch.setattr("ledger.ledger._now_ms", found)
    return found


def open_request(market: Market, tid: str = "t1", **changes: Any) -> Request:
    terms = TournamentTerms(**{
        "tournament_id": tid, "sponsor": "spon", "label_kind": "binary", "metric": "accuracy",
        "pool": 5000, "threshold_micro": 600_000, "deadline_ms": DEADLINE,
        "datasets": ("ds-a", "ds-b", "ds-c", "ds-d", "ds-u", "ds-0"), **changes})
    payload, signature = signed_tournament_open(market.provider_keys[terms.sponsor], terms)
    return "tournament_opened", payload, signature


def submit(market: Market, mid: str, modeler: str, datasets: list[str], stake: int = 1000,
           kept: int = 2000, recipe: dict[str, Any] = RECIPE, tid: str = "t1") -> Request:
    sub = ModelSubmission(tid, mid, modeler, recipe, tuple(datasets), stake, kept)
    payload, signature = signed_model_submit(market.provider_keys[modeler], sub)
    return "model_submitted", payload, signature


def freeze(ledger: Ledger, market: Market, tid: str = "t1") -> Request:
    record = ledger.state.tournament(tid)
    assert record is not None
    submissions = [e.payload for e in ledger.entries(kind="model_submitted", limit=None)
                   if e.payload["tournament_id"] == tid]
    digest = freeze_digest(record.opened, submissions, market.datasets)
    commitments = [hashlib.sha256(f"{tid}/{s['model_id']}".encode()).hexdigest() for s in submissions]
    message = freeze_attestation_message(tid, digest, commitments)
    return "models_frozen", {"tournament_id": tid, "job_digest": digest, "model_commitments": commitments,
                             "attestations": _attest(market, message)}, None


def resolve(market: Market, publisher: str = "spon", signer: str | None = None,
            dataset: str = "res", tid: str = "t1") -> Request:
    payload = {"tournament_id": tid, "publisher": publisher, "dataset_id": dataset, "nonce": market.nonce()}
    key = market.provider_keys[signer or publisher]
    return "resolution_committed", payload, key.sign(request_message("resolution_committed", payload))


def result(ledger: Ledger, market: Market, metric: int, contributions: list[int],
           per_dataset: list[list[int]], tid: str = "t1", lie: bool = False) -> Request:
    record = ledger.state.tournament(tid)
    assert record is not None
    stakes = [ledger.state.model_stakes[f"{tid}/{m}"] for m in record.models]
    digest = resolution_digest(record.freeze_digest, record.commitments, stakes,
                               record.opened["weight_cap_ppm"], record.resolution_dataset,
                               market.datasets[record.resolution_dataset])
    message = result_attestation_message(tid, digest, metric, contributions, per_dataset)
    attestations = _attest(market, message)
    if lie:  # node 1 revealed other numbers and signed those
        other = result_attestation_message(tid, digest, metric + 1, contributions, per_dataset)
        attestations[1]["signature"] = market.node_keys[1].sign(other).hex()
    return "tournament_result", {"tournament_id": tid, "job_digest": digest, "metamodel_metric_micro": metric,
                                 "contributions_micro": contributions,
                                 "dataset_contributions_micro": per_dataset,
                                 "attestations": attestations}, None


def _attest(market: Market, message: bytes) -> list[dict[str, Any]]:
    return [{"node_index": i, "signature": key.sign(message).hex()} for i, key in enumerate(market.node_keys)]


def build_world(path: Path, key: Ed25519PrivateKey, clock: Clock) -> tuple[Ledger, Market]:
    """2 nodes; data providers alice/bob/carol/dave, sponsor spon, modelers m1/m2, eve;
    staked ds-a..ds-d, ds-u (its terms allow only MLPs), ds-0 (never staked), ds-x (eve's, not
    eligible); tournament t1 open with a pool of 5000."""
    clock.now = START
    ledger = Ledger.create(path, key, params={"nodes": 2})
    market = Market()
    ledger.append_many([market.register_node(0), market.register_node(1)])
    for name in ("alice", "bob", "carol", "dave", "spon", "m1", "m2", "eve"):
        ledger.append_many([market.register_provider(name), market.mint(name, 10_000)])
    for dataset, owner in (("ds-a", "alice"), ("ds-b", "bob"), ("ds-c", "carol"), ("ds-d", "dave"),
                           ("ds-u", "dave"), ("ds-x", "eve")):
        ledger.append_many([market.register_dataset(dataset, owner), market.stake(owner, dataset, 1000)])
    ledger.append(*market.register_dataset("ds-0", "alice"))
    only_mlp = {"min_datasets": 3, "model_kinds": ["mlp"], "max_slash_rate_ppm": 500_000,
                "min_pool_per_row": 0, "sponsors": []}
    ledger.append(*market.signed("dataset_terms_updated", {"dataset_id": "ds-u", "provider_id": "dave",
                                                           "terms": only_mlp, "nonce": market.nonce()}, "dave"))
    ledger.append(*open_request(market))
    return ledger, market


@pytest.fixture
def world(tmp_path: Path, coordinator_key: Ed25519PrivateKey, clock: Clock):  # type: ignore[no-untyped-def]
    """`build_world` in a fresh directory."""
    ledger, market = build_world(tmp_path / "ledger.db", coordinator_key, clock)
    yield ledger, market, clock
    ledger.close()


def _count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])
    finally:
        conn.close()


def refused(ledger: Ledger, error: type[MutualMindError], requests: list[Request], rule: str | None = None) -> None:
    """The batch is refused with `error` (and `rule`), and nothing of it is written or kept."""
    size, root = ledger.size, ledger.root_hash()
    balances, stakes = dict(ledger.state.balances), dict(ledger.state.stakes)
    model_stakes, pools = dict(ledger.state.model_stakes), dict(ledger.state.tournament_pools)
    nonces, record = dict(ledger.state.used_nonces), ledger.state.tournament("t1")
    with pytest.raises(error) as caught:
        ledger.append_many(requests)
    if rule is not None:
        assert getattr(caught.value, "rule", None) == rule, caught.value
    assert (ledger.size, ledger.root_hash(), _count(ledger.path)) == (size, root, size)
    assert dict(ledger.state.balances) == balances and dict(ledger.state.stakes) == stakes
    assert dict(ledger.state.model_stakes) == model_stakes and dict(ledger.state.tournament_pools) == pools
    assert dict(ledger.state.used_nonces) == nonces and ledger.state.tournament("t1") == record


def to_resolution(ledger: Ledger, market: Market, clock: Clock) -> None:
    """m1 submits a good model on a/b/c, m2 a model on b/c/d; freeze; spon commits `res`."""
    ledger.append_many([submit(market, "good", "m1", ["ds-a", "ds-b", "ds-c"], stake=2000, kept=2000),
                        submit(market, "noisy", "m2", ["ds-b", "ds-c", "ds-d"], stake=3000, kept=5000)])
    clock.now = DEADLINE
    ledger.append(*freeze(ledger, market))
    ledger.append_many([market.register_dataset("res", "spon", "validation"), resolve(market)])


def test_opening_locks_the_pool(world) -> None:  # type: ignore[no-untyped-def]
    ledger, _, _ = world
    assert ledger.state.tournament_pools == {"t1": 5000}
    assert ledger.state.balance("spon") == 5000
    assert ledger.state.supply_holds()
    assert ledger.state.recount_supply()["pools"] == 5000


@pytest.mark.parametrize("build, error, rule", [
    (lambda m: submit(m, "x", "m1", ["ds-a", "ds-b", "ds-x"]), RuleViolation, "not_eligible"),
    (lambda m: submit(m, "x", "m1", ["ds-a", "ds-b", "ds-zz"]), RuleViolation, "not_eligible"),
    (lambda m: submit(m, "x", "m1", ["ds-a", "ds-b", "ds-u"]), RuleViolation, "terms_model_kinds"),
    (lambda m: submit(m, "x", "m1", ["ds-a", "ds-b", "ds-0"]), RuleViolation, "not_staked"),
    (lambda m: submit(m, "x", "m1", ["ds-a", "ds-b"]), RuleViolation, "terms_min_datasets"),
    (lambda m: submit(m, "x", "m1", ["ds-a", "ds-b", "ds-c"], stake=10_001), RuleViolation, "insufficient_balance"),
    (lambda m: submit(m, "x", "m1", ["ds-a", "ds-b", "ds-c"], recipe={"kind": "logistic"}), RuleViolation, "task_mismatch"),
    (lambda m: submit(m, "x", "m1", ["ds-a", "ds-b", "ds-c"], tid="t9"), RuleViolation, "unknown_tournament"),
    (lambda m: resolve(m), RuleViolation, "tournament_state"),  # before the models are frozen
    (lambda m: open_request(m, "t2", datasets=("ds-a", "ds-zz")), RuleViolation, "unknown_dataset"),
    (lambda m: open_request(m, "t2", pool=5001), RuleViolation, "insufficient_balance"),
    (lambda m: open_request(m, "t2", deadline_ms=START - 1), RuleViolation, "deadline_passed"),
    (lambda m: open_request(m, "t2", label_kind="regression", metric="mse"), RuleViolation, "task_mismatch"),
])
def test_a_bad_request_is_refused_and_writes_nothing(world, build, error, rule) -> None:  # type: ignore[no-untyped-def]
    ledger, market, _ = world
    refused(ledger, error, [build(market)], rule)


def test_a_submission_signed_by_another_key_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market, _ = world
    kind, payload, _ = submit(market, "x", "m1", ["ds-a", "ds-b", "ds-c"])
    forged = market.provider_keys["eve"].sign(request_message(kind, payload))
    refused(ledger, PermissionDenied, [(kind, payload, forged)])


def test_deadline_splits_submissions_from_freezing(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market, clock = world
    ledger.append(*submit(market, "good", "m1", ["ds-a", "ds-b", "ds-c"]))
    clock.now = DEADLINE - 1
    refused(ledger, RuleViolation, [freeze(ledger, market)], "before_deadline")
    clock.now = DEADLINE
    refused(ledger, RuleViolation, [submit(market, "late", "m2", ["ds-a", "ds-b", "ds-c"])], "deadline_passed")
    ledger.append(*freeze(ledger, market))
    assert ledger.state.tournament("t1").status == "frozen"  # type: ignore[union-attr]


def test_frozen_models_need_every_node_and_the_right_digest(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market, clock = world
    ledger.append(*submit(market, "good", "m1", ["ds-a", "ds-b", "ds-c"]))
    clock.now = DEADLINE
    kind, payload, _ = freeze(ledger, market)
    refused(ledger, RuleViolation, [(kind, {**payload, "attestations": payload["attestations"][:1]}, None)],
            "attestations")
    refused(ledger, RuleViolation, [(kind, {**payload, "job_digest": "00" * 32}, None)], "job_digest")
    refused(ledger, RuleViolation, [(kind, {**payload, "model_commitments": []}, None)], "freeze_shape")


def test_a_locked_dataset_cannot_be_unstaked_while_the_tournament_runs(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market, _ = world
    ledger.append(*submit(market, "good", "m1", ["ds-a", "ds-b", "ds-c"]))
    refused(ledger, RuleViolation, [market.stake("alice", "ds-a", 1, kind="unstake")], "stake_locked")


def test_resolution_only_from_the_publisher_key(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market, clock = world
    ledger.append(*submit(market, "good", "m1", ["ds-a", "ds-b", "ds-c"]))
    clock.now = DEADLINE
    ledger.append(*freeze(ledger, market))
    ledger.append_many([market.register_dataset("res", "spon", "validation"),
                        market.register_dataset("res-eve", "eve", "validation")])
    refused(ledger, RuleViolation, [resolve(market, publisher="eve", dataset="res-eve")], "not_publisher")
    refused(ledger, PermissionDenied, [resolve(market, signer="eve")])  # names spon, signed by eve
    refused(ledger, RuleViolation, [resolve(market, dataset="ds-a")], "unknown_dataset")
    ledger.append(*resolve(market))
    assert ledger.state.tournament("t1").status == "resolving"  # type: ignore[union-attr]


def test_a_result_needs_agreeing_nodes_and_the_right_shape(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market, clock = world
    to_resolution(ledger, market, clock)
    good = [[10_000, 5_000, 2_000], [2_000, 3_000, -9_000]]
    refused(ledger, PermissionDenied, [result(ledger, market, 700_000, [20_000, -8_000], good, lie=True)])
    refused(ledger, RuleViolation, [result(ledger, market, 700_000, [20_000], good[:1])], "result_shape")
    refused(ledger, RuleViolation, [result(ledger, market, 700_000, [20_000, -8_000], [[1, 2, 3], [1, 2]])],
            "result_shape")
    kind, payload, _ = result(ledger, market, 700_000, [20_000, -8_000], good)
    refused(ledger, RuleViolation, [(kind, {**payload, "attestations": payload["attestations"][1:]}, None)],
            "attestations")
    ledger.append(kind, payload, None)
    assert ledger.state.tournament("t1").status == "result"  # type: ignore[union-attr]


def _settle(ledger: Ledger) -> list[Request]:
    return [(kind, payload, None) for kind, payload in ledger.state.settlement_plan("t1")]


def test_a_settlement_entry_off_the_plan_refuses_the_whole_batch(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market, clock = world
    to_resolution(ledger, market, clock)
    ledger.append(*result(ledger, market, 700_000, [20_000, -8_000], [[10_000, 5_000, 2_000], [2_000, 3_000, -9_000]]))
    plan = _settle(ledger)
    payout = next(i for i, (kind, _, _) in enumerate(plan) if kind == "model_payout")
    greedy = plan[:payout] + [(plan[payout][0], {**plan[payout][1], "amount": plan[payout][1]["amount"] + 1}, None)]
    refused(ledger, RuleViolation, greedy + plan[payout + 1:], "settlement_mismatch")
    refused(ledger, RuleViolation, plan[:-2] + plan[-1:], "settlement_mismatch")  # a stake kept back
    refused(ledger, RuleViolation, [("model_payout", {"tournament_id": "t1", "model_id": "good", "to": "eve",
                                                      "amount": 1}, None)], "settlement_mismatch")


@pytest.mark.parametrize("metric, bounty", [(700_000, True), (500_000, False)])
def test_a_whole_tournament_settles_replays_and_verifies(world, metric: int, bounty: bool) -> None:  # type: ignore[no-untyped-def]
    ledger, market, clock = world
    to_resolution(ledger, market, clock)
    minted = ledger.state.totals["minted"]
    before = dict(ledger.state.balances)
    # good helps (its data a, b help); noisy hurts, and inside it ds-d hurt it
    ledger.append(*result(ledger, market, metric, [20_000, -8_000], [[10_000, 5_000, 2_000], [2_000, 3_000, -9_000]]))
    ledger.append_many(_settle(ledger))  # one group commit
    state = ledger.state
    assert state.tournament("t1").status == "closed"  # type: ignore[union-attr]
    assert state.recount_supply() == dict(state.totals) and state.totals["minted"] == minted
    assert state.tournament_pools["t1"] == 0 and set(state.model_stakes.values()) == {0}
    # noisy: S = 3000 * 10% = 300; m2 keeps half, so 150 fall on ds-d (cap 100), 200 on its stake
    assert state.stakes["ds-d"] == 900
    assert state.balance("m2") - before["m2"] == 3000 - 200
    # good takes the whole level 1: the pool if the bounty is paid, and the 300 slashed
    reward = (5000 if bounty else 0) + 300
    assert state.balance("spon") - before["spon"] == (0 if bounty else 5000)
    kept = reward * 2000 // 10_000
    assert state.balance("m1") - before["m1"] == 2000 + kept
    paid = {p: state.balance(p) - before[p] for p in ("alice", "bob", "carol")}
    assert sum(paid.values()) == reward - kept and paid["alice"] > paid["bob"] > paid["carol"] > 0
    assert all(count == 0 for count in state.active_rounds.values())  # every lock released
    ledger.append(*market.stake("dave", "ds-d", 900, kind="unstake"))
    path, size, root, balances = ledger.path, ledger.size, ledger.root_hash(), dict(state.balances)
    ledger.close()
    report = verify_ledger(path)
    assert report.ok, report
    with Ledger.open(path) as replayed:
        assert (replayed.size, replayed.root_hash(), dict(replayed.state.balances)) == (size, root, balances)


DATA = ["ds-a", "ds-b", "ds-c", "ds-d"]
micro = st.integers(min_value=-30_000, max_value=30_000)


@st.composite
def random_tournaments(draw: st.DrawFn) -> dict[str, Any]:
    models = []
    for _ in range(draw(st.integers(1, 3))):
        chosen = draw(st.lists(st.sampled_from(DATA), min_size=3, max_size=4, unique=True))
        models.append({"modeler": draw(st.sampled_from(["m1", "m2", "alice"])), "datasets": chosen,
                       "stake": draw(st.integers(1, 3000)), "kept": draw(st.integers(0, 10_000)),
                       "contribution": draw(micro), "per_dataset": [draw(micro) for _ in chosen]})
    return {"models": models, "metric": draw(st.integers(400_000, 800_000))}


@settings(max_examples=12, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(random_tournaments())
def test_random_tournaments_replay_and_conserve_supply(coordinator_key: Ed25519PrivateKey, clock: Clock,
                                                       drawn: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ledger, market = build_world(Path(tmp) / "ledger.db", coordinator_key, clock)
        try:
            minted = ledger.state.totals["minted"]
            ledger.append_many([submit(market, f"model-{i}", m["modeler"], m["datasets"], m["stake"], m["kept"])
                                for i, m in enumerate(drawn["models"])])
            clock.now = DEADLINE
            ledger.append(*freeze(ledger, market))
            ledger.append_many([market.register_dataset("res", "spon", "validation"), resolve(market)])
            ledger.append(*result(ledger, market, drawn["metric"], [m["contribution"] for m in drawn["models"]],
                                  [m["per_dataset"] for m in drawn["models"]]))
            ledger.append_many(_settle(ledger))
            state = ledger.state
            assert state.tournament("t1").status == "closed"  # type: ignore[union-attr]
            assert state.recount_supply() == dict(state.totals) and state.totals["minted"] == minted
            assert min(state.balances.values()) >= 0 and min(state.stakes.values()) >= 0
            path, root, balances, stakes = ledger.path, ledger.root_hash(), dict(state.balances), dict(state.stakes)
        finally:
            ledger.close()
        with Ledger.open(path) as replayed:
            assert replayed.root_hash() == root
            assert (dict(replayed.state.balances), dict(replayed.state.stakes)) == (balances, stakes)


def _abort_batch(ledger: Ledger, tid: str = "t1") -> list[Request]:
    """`tournament_aborted` and the entries that must follow it, for one group commit."""
    record = ledger.state.tournament(tid)
    assert record is not None
    subs = {e.payload["model_id"]: e.payload for e in ledger.entries(kind="model_submitted", limit=None)}
    parts = [ModelPart(m, subs[m]["modeler"], ledger.state.model_stakes[f"{tid}/{m}"], 0, 0, ())
             for m in record.models]
    follow = abort_entries(tid, record.sponsor, ledger.state.tournament_pools[tid], parts)
    return [("tournament_aborted", {"tournament_id": tid, "reason": "the training job failed"}, None),
            *((kind, payload, None) for kind, payload in follow)]


@pytest.mark.parametrize("phase", ["open", "resolving"])
def test_an_abort_before_the_result_gives_everything_back(world, phase: str) -> None:  # type: ignore[no-untyped-def]
    ledger, market, clock = world
    before = dict(ledger.state.balances)
    if phase == "open":
        ledger.append(*submit(market, "good", "m1", ["ds-a", "ds-b", "ds-c"], stake=2000))
    else:
        to_resolution(ledger, market, clock)
    batch = _abort_batch(ledger)
    refused(ledger, RuleViolation, batch[:1] + batch[2:], "settlement_mismatch")  # the refund left out
    ledger.append_many(batch)
    state = ledger.state
    assert state.tournament("t1").status == "aborted"  # type: ignore[union-attr]
    # the pool (locked before `before`) and every stake are back
    assert {p: state.balance(p) for p in before} == {**before, "spon": before["spon"] + 5000}
    assert all(count == 0 for count in state.active_rounds.values())
    assert state.recount_supply() == dict(state.totals)
    ledger.append(*market.stake("alice", "ds-a", 1000, kind="unstake"))
    path = ledger.path
    ledger.close()
    assert verify_ledger(path).ok


def test_no_abort_once_the_result_is_known(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market, clock = world
    to_resolution(ledger, market, clock)
    ledger.append(*result(ledger, market, 700_000, [20_000, -8_000], [[10_000, 5_000, 2_000], [2_000, 3_000, -9_000]]))
    refused(ledger, RuleViolation, _abort_batch(ledger)[:1], "tournament_state")


def test_a_copy_earns_nothing_and_the_replay_rechecks_it(world) -> None:  # type: ignore[no-untyped-def]
    """m2 submits m1's recipe on the same datasets (in another order): a copy. The group's
    contribution goes to the original; a plan that pays the copy fails the replay."""
    ledger, market, clock = world
    ledger.append_many([submit(market, "orig", "m1", ["ds-a", "ds-b", "ds-c"], stake=2000),
                        submit(market, "copy", "m2", ["ds-c", "ds-a", "ds-b"], stake=2000)])
    clock.now = DEADLINE
    ledger.append(*freeze(ledger, market))
    ledger.append_many([market.register_dataset("res", "spon", "validation"), resolve(market)])
    before = dict(ledger.state.balances)
    per_dataset = [[10_000, 5_000, 2_000], [2_000, 10_000, 5_000]]
    ledger.append(*result(ledger, market, 700_000, [20_000, 20_000], per_dataset))
    plan = _settle(ledger)
    rewarded = [p["model_id"] for kind, p, _ in plan if kind == "model_rewarded"]
    assert rewarded == ["orig"]
    # the old rule (both paid by contribution) is off the plan: the copy's half refused
    kind, payload, _ = next(r for r in plan if r[0] == "model_rewarded")
    halves = [(kind, {**payload, "amount": 2500}, None), (kind, {**payload, "model_id": "copy", "amount": 2500}, None)]
    at = plan.index(next(r for r in plan if r[0] == "model_rewarded"))
    refused(ledger, RuleViolation, plan[:at] + halves, "settlement_mismatch")
    ledger.append_many(plan)
    assert ledger.state.balance("m2") - before["m2"] == 2000  # its stake back, nothing more
    assert ledger.state.balance("m1") - before["m1"] == 2000 + 5000 * 2000 // 10_000
    path = ledger.path
    ledger.close()
    assert verify_ledger(path).ok


def test_a_verification_is_recorded_only_with_the_verdict_its_numbers_give(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market, clock = world
    to_resolution(ledger, market, clock)
    numbers = {"metamodel_metric_micro": 700_000, "contributions_micro": [20_000, -8_000],
               "dataset_contributions_micro": [[10_000, 5_000, 2_000], [2_000, 3_000, -9_000]]}
    record = ledger.state.tournament("t1")
    assert record is not None

    def verified(**changes: Any) -> Request:
        rerun = {"metamodel_metric_micro": 701_500, "contributions_micro": [19_000, -7_000],
                 "dataset_contributions_micro": [[9_000, 5_000, 2_000], [2_000, 3_000, -9_000]]}
        payload = {"tournament_id": "t1", "job_digest": record.job_digest, **rerun,
                   "max_abs_diff_micro": 1_500, "tolerance_micro": 5_000, "verdict": "agrees", **changes}
        return "tournament_verified", payload, None

    refused(ledger, RuleViolation, [verified()], "tournament_state")      # before the result
    ledger.append(*result(ledger, market, numbers["metamodel_metric_micro"], numbers["contributions_micro"],
                          numbers["dataset_contributions_micro"]))
    refused(ledger, RuleViolation, [verified(verdict="disagrees")], "verdict_mismatch")
    refused(ledger, RuleViolation, [verified(max_abs_diff_micro=0)], "verdict_mismatch")
    refused(ledger, RuleViolation, [verified(tolerance_micro=1_000)], "verdict_mismatch")   # 1,500 > 1,000
    refused(ledger, RuleViolation, [verified(job_digest="00" * 32)], "job_digest")
    refused(ledger, RuleViolation, [verified(dataset_contributions_micro=[[1, 2], [1, 2, 3]])],
            "verification_shape")
    # a contribution paid in one run and slashed in the other disagrees, within any tolerance
    refused(ledger, RuleViolation, [verified(contributions_micro=[20_000, 8_000], max_abs_diff_micro=16_000,
                                             tolerance_micro=100_000)], "verdict_mismatch")
    # a dataset at +2,000 re-run at -1,500 (3,500 apart, within the noise): flipped beyond
    # epsilon (1,000), not beyond a recorded band of 2,500; an entry without the band (written
    # before it was recorded) replays with epsilon alone
    near_zero = {"dataset_contributions_micro": [[9_000, 5_000, -1_500], [2_000, 3_000, -9_000]],
                 "max_abs_diff_micro": 3_500}
    refused(ledger, RuleViolation, [verified(**near_zero)], "verdict_mismatch")
    refused(ledger, RuleViolation, [verified(**near_zero, flip_band_micro=2_500, verdict="disagrees")],
            "verdict_mismatch")
    ledger.append(*verified(**near_zero, verdict="disagrees"))
    ledger.append(*verified(**near_zero, flip_band_micro=2_500))
    ledger.append_many([verified(), *_settle(ledger)])
    ledger.append(*verified(tolerance_micro=1_000, verdict="disagrees"))   # after the close too
    path = ledger.path
    ledger.close()
    assert verify_ledger(path).ok


# -- the metamodel's ownership units (issue 16) ------------------------------------------

def _units_request(holders: list[dict[str, Any]], model_id: str = "t1") -> Request:
    return ("model_units_issued", {"model_id": model_id, "source_kind": "tournament", "source_id": "t1",
                                   "holders": holders}, None)


def test_the_settlement_issues_the_metamodel_units_to_both_levels(world) -> None:  # type: ignore[no-untyped-def]
    from coordinator.tournaments import settlement_requests

    ledger, market, clock = world
    to_resolution(ledger, market, clock)
    refused(ledger, RuleViolation, [_units_request([{"to": "m1", "units": UNITS_PER_MODEL}])],
            "source_not_settled")
    ledger.append(*result(ledger, market, 700_000, [20_000, -8_000], [[10_000, 5_000, 2_000], [2_000, 3_000, -9_000]]))
    before = dict(ledger.state.balances)
    batch = settlement_requests(ledger, "t1", "spon")
    assert batch[-1][0] == "model_units_issued" and batch[-2][0] == "tournament_closed"
    refused(ledger, RuleViolation, batch[:-1] + [(*batch[-1][:1], {**batch[-1][1], "model_id": "t1-meta"}, None)],
            "model_id")  # a metamodel is named by its tournament: no other name can clash
    ledger.append_many(batch)  # the settlement and the units in one group commit
    state = ledger.state
    earned = {p: state.balance(p) - before[p] for p in ("m1", "alice", "bob", "carol")}
    earned["m1"] -= 2000  # m1's stake came back: no earning
    assert all(v > 0 for v in earned.values())
    units = state.ownership.units("t1")
    assert units == units_for_earnings(earned) and sum(units.values()) == UNITS_PER_MODEL
    assert "spon" not in units and "m2" not in units  # the sponsor and the modeler that hurt earn none
    model = state.ownership.model("t1")
    assert model is not None and (model.source_kind, model.price_per_1000_rows) == ("tournament", 0)
    refused(ledger, RuleViolation, [batch[-1]], "model_exists")
    ledger.append(*market.signed("model_units_transferred", units_transfer_payload(
        "t1", "alice", "dave", units["alice"] // 2, market.nonce()), "alice"))
    path, root, held = ledger.path, ledger.root_hash(), state.ownership.units("t1")
    assert sum(held.values()) == UNITS_PER_MODEL and state.recount_supply() == dict(state.totals)
    ledger.close()
    assert verify_ledger(path).ok
    with Ledger.open(path) as replayed:
        assert (replayed.root_hash(), replayed.state.ownership.units("t1")) == (root, held)


def test_an_aborted_tournament_issues_no_units(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market, clock = world
    to_resolution(ledger, market, clock)
    ledger.append_many(_abort_batch(ledger))
    refused(ledger, RuleViolation, [_units_request([{"to": "m1", "units": UNITS_PER_MODEL}])],
            "source_not_settled")


def test_rounds_and_tournaments_share_one_id_namespace(world) -> None:  # type: ignore[no-untyped-def]
    ledger, market, clock = world
    ledger.append(*market.register_dataset("val", "spon", "validation"))
    refused(ledger, RuleViolation, [market.open_round("t1", "spon", 100, "val", ["ds-a", "ds-b", "ds-c"])], "id_taken")
    ledger.append(*market.open_round("r1", "spon", 100, "val", ["ds-a", "ds-b", "ds-c"]))
    refused(ledger, RuleViolation, [open_request(market, tid="r1")], "id_taken")


MULTICLASS = ("ds-m1", "ds-m2", "ds-m3")


def open_multiclass(ledger: Ledger, market: Market, tid: str = "t3") -> None:
    """A multiclass tournament (log-loss) on three staked datasets labelling 3 classes."""
    for dataset, owner in zip(MULTICLASS, ("alice", "bob", "carol"), strict=True):
        ledger.append_many([market.register_dataset(dataset, owner, label_classes=3),
                            market.stake(owner, dataset, 1000)])
    ledger.append(*open_request(market, tid, label_kind="multiclass", metric="log_loss", pool=1000,
                                datasets=MULTICLASS))


def test_a_multiclass_tournament_takes_softmax_models_of_its_class_count(world) -> None:  # type: ignore[no-untyped-def]
    """The metamodel mixes class-probability vectors, so every model predicts the classes
    the eligible datasets label (here 3), and the resolution rows label no more."""
    ledger, market, clock = world
    open_multiclass(ledger, market)
    chosen = list(MULTICLASS)
    for recipe in ({"kind": "softmax", "classes": 4}, {"kind": "softmax"}, {"kind": "logistic"}):
        refused(ledger, RuleViolation, [submit(market, "x", "m1", chosen, recipe=recipe, tid="t3")], "task_mismatch")
    ledger.append(*submit(market, "soft", "m1", chosen, recipe={"kind": "softmax", "classes": 3, "epochs": 3},
                          tid="t3"))
    clock.now = DEADLINE
    ledger.append(*freeze(ledger, market, "t3"))
    ledger.append_many([market.register_dataset("res5", "spon", "validation", label_classes=5),
                        market.register_dataset("res3", "spon", "validation", label_classes=3)])
    refused(ledger, RuleViolation, [resolve(market, dataset="res5", tid="t3")], "task_mismatch")
    ledger.append(*resolve(market, dataset="res3", tid="t3"))
    assert ledger.state.tournament("t3").status == "resolving"  # type: ignore[union-attr]
