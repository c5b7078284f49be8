"""Issue 11: nothing stays locked for ever, and providers consent to how their data is used.

A real coordinator (its Market over TLS and its Admin over mutual TLS on loopback, its
ledger a SQLite file, its cluster link the real gRPC one) serves the module. Its dealer
address has nothing listening, so every run fails for real (the dealer is unreachable)
- which is what the "K failed runs" test needs; no test here needs a run to succeed.
Providers register, register datasets (with their signed terms) and stake through the
provider's own client; the sponsor and the admin abort through the real `mutualmind`
commands. Balances are checked live, by an independent replay of the ledger file, and
with `verify_ledger`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from coordinator.cluster_link import NodeEndpoint
from coordinator.rounds import LifecyclePolicy
from coordinator.server import CoordinatorConfig, RunningCoordinator, start_coordinator
from ledger import Ledger, verify_ledger
from mutualmind.errors import (
    Aborted,
    InvalidInput,
    PermissionDenied,
    RuleViolation,
    Unavailable,
)
from mutualmind.transport import channel_credentials, open_channel, raise_from_rpc_error
from mutualmind.transport.pki import create_cluster
from mutualmind.vocabulary.dataset import TableSchema
from mutualmind.vocabulary.dataset_terms import DEFAULT_TERMS, DatasetTerms
from mutualmind.vocabulary.payloads import request_message
from mutualmind.vocabulary.round_open import (
    RoundTerms,
    round_opened_payload,
    signed_open_round,
)
from mutualmind.vocabulary.signing_keys import (
    generate_signing_key,
    save_private_key,
    sign,
)
from proto import admin_pb2, admin_pb2_grpc, common_pb2, market_pb2
from provider.client import MarketClient
from provider.sharing import Table, share_table

NODES = 3
MINT = 10_000
STAKE = 100
ROWS = 20
SCHEMA = TableSchema(("x0", "x1", "label"), ("x0", "x1"), "label")
SPEC = {"kind": "logistic", "epochs": 2}


@dataclass
class World:
    tmp: Path
    certs: Path
    coordinator: RunningCoordinator
    channel: grpc.Channel
    clients: dict[str, MarketClient]

    @property
    def ledger(self) -> Ledger:
        return self.coordinator.ledger

    @property
    def market_address(self) -> str:
        return f"127.0.0.1:{self.coordinator.public_port}"

    @property
    def admin_address(self) -> str:
        return f"127.0.0.1:{self.coordinator.cluster_port}"

    def key_file(self, name: str) -> Path:
        return self.tmp / f"{name}.key"

    def enrol(self, name: str, *, mint: int = MINT) -> MarketClient:
        key = generate_signing_key()
        save_private_key(key, self.key_file(name))
        self.key_file(name).with_name(f"{name}.key.id").write_text(name + "\n")
        client = MarketClient(channel=self.channel, key=key, provider_id=name)
        client.register()
        if mint:
            self.ledger.append("mint", {"to": name, "amount": mint, "memo": "test"})
        self.clients[name] = client
        return client

    def dataset(self, owner: str, dataset_id: str, *, purpose: str = "training",
                terms: DatasetTerms = DEFAULT_TERMS, stake: int = STAKE, rows: int = ROWS) -> str:
        rng = np.random.default_rng(len(self.ledger.state.datasets))
        values = np.column_stack([rng.normal(size=(rows, 2)), rng.integers(0, 2, rows)])
        shared = share_table(Table(values.astype(np.float64), SCHEMA), NODES)
        client = self.clients[owner]
        client.register_dataset(dataset_id, shared, purpose=purpose, terms=terms)
        if stake and purpose == "training":
            client.stake(dataset_id, stake)
        return dataset_id

    def open(self, round_id: str, datasets: tuple[str, ...], *, sponsor: str = "sponsor",
             pool: int = 100, slash_rate_ppm: int = 100_000, spec: dict[str, Any] | None = None,
             expires_at_ms: int = 0) -> Any:
        terms = RoundTerms(round_id=round_id, sponsor=sponsor, pool=pool,
                           model_spec=dict(spec or SPEC), validation_dataset="validation",
                           datasets=datasets, slash_rate_ppm=slash_rate_ppm,
                           epsilon_micro=1000, expires_at_ms=expires_at_ms)
        request = signed_open_round(self.clients[sponsor].key, terms)
        return market_call(self.channel, "OpenRound", request)

    def admin(self, method: str, request: Any) -> Any:
        channel = open_channel(self.admin_address, channel_credentials(self.certs, "admin"))
        try:
            return getattr(admin_pb2_grpc.AdminStub(channel), method)(request, timeout=30)
        except grpc.RpcError as err:
            raise_from_rpc_error(err)
        finally:
            channel.close()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mutualmind", *args], capture_output=True,
                              text=True, timeout=60, check=False)

    def provider_cli(self, command: str, who: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.cli("provider", command, "--key", str(self.key_file(who)), "--coordinator",
                        self.market_address, "--certs", str(self.certs), *args)


def market_call(channel: grpc.Channel, method: str, request: Any) -> Any:
    from proto import market_pb2_grpc

    try:
        return getattr(market_pb2_grpc.MarketStub(channel), method)(request, timeout=30)
    except grpc.RpcError as err:
        raise_from_rpc_error(err)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("lifecycle")
    certs = tmp / "certs"
    create_cluster(certs, NODES)
    endpoints = tuple(NodeEndpoint(index=i, name=f"node{i}", public_address="127.0.0.1:1",
                                   cluster_address="127.0.0.1:1") for i in range(NODES))
    coordinator = start_coordinator(CoordinatorConfig(
        certs_dir=certs, data_dir=tmp / "coordinator", nodes=endpoints,
        dealer_address="127.0.0.1:1",   # nothing listens: every run fails (dealer unreachable)
        dealer_start_retry_s=0.0,       # at once, not after the product's retry window
        lifecycle=LifecyclePolicy(max_failures=3), sweep_interval_s=0.2))
    channel = open_channel(f"127.0.0.1:{coordinator.public_port}", channel_credentials(certs, None))
    w = World(tmp, certs, coordinator, channel, {})
    try:
        for name in ("p1", "p2", "p3", "p4"):
            w.enrol(name)
            w.dataset(name, f"{name}-data")
        w.enrol("sponsor")
        w.dataset("sponsor", "validation", purpose="validation")
        yield w
    finally:
        channel.close()
        coordinator.stop(grace=None)


FOUR = ("p1-data", "p2-data", "p3-data", "p4-data")
THREE = FOUR[:3]


def _unchanged(world: World, call: Any, error: type[Exception]) -> Exception:
    """`call()` is refused with `error`; nothing is written, no pool or stake moves."""
    size, balances = world.ledger.size, dict(world.ledger.state.balances)
    pools, active = dict(world.ledger.state.pools), dict(world.ledger.state.active_rounds)
    with pytest.raises(error) as caught:
        call()
    assert world.ledger.size == size
    assert world.ledger.state.balances == balances and world.ledger.state.pools == pools
    assert world.ledger.state.active_rounds == active
    return caught.value


def _replayed(world: World) -> Any:
    """An independent replay of the ledger file (read-only), and a full verification."""
    report = verify_ledger(world.ledger.path)
    assert report.ok, report.error
    replay = Ledger.open(world.ledger.path)
    try:
        return replay.state
    finally:
        replay.close()


def _raw_open(world: World, round_id: str, spec: dict[str, Any], *, sponsor: str = "poor",
              datasets: tuple[str, ...] = FOUR, pool: int = 1) -> Any:
    """An OpenRound request signed over `spec` exactly as given (no client-side checks)."""
    terms = RoundTerms(round_id=round_id, sponsor=sponsor, pool=pool, model_spec=spec,
                       validation_dataset="validation", datasets=datasets)
    nonce = "n" + round_id.replace("-", "")[:20] + "0123456789"
    payload = round_opened_payload(terms, nonce)
    return market_pb2.OpenRoundRequest(
        round_id=round_id, pool=pool, model_spec_json=json.dumps(spec),
        validation_dataset="validation", datasets=list(datasets),
        auth=common_pb2.ProviderAuth(
            provider_id=sponsor, nonce=nonce,
            signature=sign(world.clients[sponsor].key, request_message("round_opened", payload))))


# -- 1. the model spec is checked at open ------------------------------------------------

@pytest.mark.parametrize("spec, names", [
    ({"kind": "evil"}, "'evil'"),
    ({"kind": "logistic", "epochs": 10**9}, "epochs"),
    ({"kind": "logistic", "backdoor": 1}, "backdoor"),
    ({"kind": "logistic", "lr": "abc"}, "'lr'"),
    ({"kind": "logistic", "epochs": 5000, "batch_size": 1}, "training steps"),
])
def test_a_spec_no_worker_runs_is_refused_and_locks_nothing(world: World, spec: dict[str, Any],
                                                            names: str) -> None:
    if "poor" not in world.clients:
        world.enrol("poor", mint=1)     # a sponsor with 1 token
    request = _raw_open(world, f"evil-{len(names)}-{spec.get('epochs', 0)}", spec)
    err = _unchanged(world, lambda: market_call(world.channel, "OpenRound", request), InvalidInput)
    assert names in str(err)
    assert world.ledger.state.balance("poor") == 1
    assert all(world.ledger.state.active_rounds[d] == 0 for d in FOUR)   # no stake locked


def test_a_round_over_the_workload_cap_is_refused_before_anything_is_written(world: World) -> None:
    """The coordinator's ledger names workload rule version 3: a retrain counts every one
    of its models. Five datasets (one of 400,000 rows) trained 10 epochs are 6 models x
    4 million rows: refused over the Market API and by the sponsor's command, saying
    what to reduce, with nothing written and nothing locked."""
    genesis = next(iter(world.ledger.entries(start=0, limit=1)))
    assert genesis.payload["params"]["workload_rules"] == 3
    if "p5" not in world.clients:
        world.enrol("p5")
        world.dataset("p5", "p5-big", rows=400_000)
    datasets = (*FOUR, "p5-big")
    spec = {"kind": "logistic", "epochs": 10}
    err = _unchanged(world, lambda: world.open("heavy", datasets, spec=spec), InvalidInput)
    assert "6 leave-one-out models x 400080 rows x 10 epochs" in str(err)
    assert "include fewer datasets" in str(err) and 'solver "newton"' in str(err)
    size, balance = world.ledger.size, world.ledger.state.balance("sponsor")
    refused = world.provider_cli("open-round", "sponsor", "--round-id", "heavy", "--pool", "1",
                                 "--model-spec", json.dumps(spec), "--validation-dataset", "validation",
                                 *(f for d in datasets for f in ("--dataset", d)))
    assert refused.returncode == 2 and "model-row passes" in refused.stderr, refused.stderr
    assert "lower epochs" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert world.ledger.size == size and world.ledger.state.balance("sponsor") == balance
    assert "heavy" not in world.ledger.state.rounds


# -- 2. abort: sponsor, admin, expiry, K failed runs --------------------------------------

def _assert_unlocked(world: World, round_id: str, sponsor_before: int,
                     datasets: tuple[str, ...]) -> None:
    state = world.ledger.state
    assert state.rounds[round_id].status == "aborted"
    assert state.pools[round_id] == 0
    assert state.balance("sponsor") == sponsor_before
    assert all(state.active_rounds[d] == 0 for d in datasets)
    replay = _replayed(world)
    assert replay.balances == state.balances and replay.stakes == state.stakes
    assert replay.rounds[round_id].status == "aborted"


def test_the_sponsor_withdraws_its_round_and_providers_unstake(world: World) -> None:
    before = world.ledger.state.balance("sponsor")
    world.open("withdrawn", THREE, pool=250)
    assert world.ledger.state.balance("sponsor") == before - 250
    # stakes are locked while the round is open; another provider cannot withdraw it
    locked = world.provider_cli("unstake", "p1", "--dataset-id", "p1-data", "--amount", "10")
    assert locked.returncode == 6 and "stake_locked" in locked.stderr, locked.stderr
    err = _unchanged(world, lambda: world.clients["p2"].abort_round("withdrawn", "mine"),
                     RuleViolation)
    assert err.rule == "not_sponsor"   # type: ignore[attr-defined]
    done = world.provider_cli("abort-round", "sponsor", "--round-id", "withdrawn",
                              "--reason", "budget moved")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["refund_to_sponsor"] == 250
    _assert_unlocked(world, "withdrawn", before, THREE)
    kinds = [e.kind for e in world.ledger.entries(start=world.ledger.size - 2, limit=2)]
    assert kinds == ["round_abort_requested", "round_aborted"]
    unstaked = world.provider_cli("unstake", "p1", "--dataset-id", "p1-data", "--amount", "10")
    assert unstaked.returncode == 0, unstaked.stderr
    assert json.loads(unstaked.stdout)["staked"] == STAKE - 10
    world.clients["p1"].stake("p1-data", 10)
    # a second abort of the same round is refused and writes nothing
    _unchanged(world, lambda: world.clients["sponsor"].abort_round("withdrawn", "again"),
               InvalidInput)


def test_the_admin_aborts_a_round(world: World) -> None:
    before = world.ledger.state.balance("sponsor")
    world.open("by-admin", FOUR, pool=300)
    done = world.cli("admin", "round", "abort", "by-admin", "--reason", "wrong validation set",
                     "--coordinator", world.admin_address, "--market", world.market_address,
                     "--certs", str(world.certs), "--json")
    assert done.returncode == 0, done.stderr
    view = json.loads(done.stdout)
    assert view["status"] == "aborted" and view["refund_to_sponsor"] == 300
    assert "wrong validation set" in view["message"]
    _assert_unlocked(world, "by-admin", before, FOUR)
    refused = world.cli("admin", "round", "abort", "by-admin", "--reason", "again",
                        "--coordinator", world.admin_address, "--certs", str(world.certs))
    assert refused.returncode == 2 and "aborted" in refused.stderr


def test_an_expired_round_is_aborted_by_the_sweep(world: World) -> None:
    before = world.ledger.state.balance("sponsor")
    _unchanged(world, lambda: world.open("past", THREE, expires_at_ms=int(time.time() * 1000) - 1),
               InvalidInput)
    world.open("expiring", THREE, pool=120, expires_at_ms=int(time.time() * 1000) + 1500)
    view = world.admin("GetRound", market_pb2.GetRoundRequest(round_id="expiring"))
    assert view.status == "open" and view.expires_at_ms > 0
    deadline = time.monotonic() + 15
    while world.ledger.state.rounds["expiring"].status == "open":
        assert time.monotonic() < deadline, "the sweep did not abort the expired round"
        time.sleep(0.1)
    _assert_unlocked(world, "expiring", before, THREE)
    view = world.admin("GetRound", market_pb2.GetRoundRequest(round_id="expiring"))
    assert view.status == "aborted" and "expired" in view.message


def test_a_round_that_failed_k_times_is_aborted(world: World) -> None:
    before = world.ledger.state.balance("sponsor")
    world.open("doomed", FOUR, pool=90)
    request = admin_pb2.RunRoundRequest(round_id="doomed", deadline_s=20)

    def run() -> None:
        channel = open_channel(world.admin_address, channel_credentials(world.certs, "admin"))
        try:
            for _ in admin_pb2_grpc.AdminStub(channel).RunRound(request, timeout=60):
                pass
        except grpc.RpcError as err:
            raise_from_rpc_error(err)
        finally:
            channel.close()

    for attempt in (1, 2):
        with pytest.raises(Unavailable):    # the dealer is unreachable: a real failed run
            run()
        assert world.ledger.state.rounds["doomed"].status == "open"
        assert world.admin("GetRound", market_pb2.GetRoundRequest(round_id="doomed")).failed_runs == attempt
    with pytest.raises(Aborted, match="failed 3 runs"):
        run()
    _assert_unlocked(world, "doomed", before, FOUR)
    with pytest.raises(InvalidInput, match="aborted"):
        run()


def test_a_running_round_cannot_be_aborted(world: World) -> None:
    world.open("busy", THREE, pool=10)
    runtime = world.coordinator.rounds.claim("busy")    # a run in flight
    try:
        err = _unchanged(world, lambda: world.clients["sponsor"].abort_round("busy", "now"),
                         RuleViolation)
        assert err.rule == "round_running"   # type: ignore[attr-defined]
        assert world.coordinator.rounds.sweep(now_ms=2**62) == []   # nor by the sweep
    finally:
        runtime.running = False
    world.clients["sponsor"].abort_round("busy", "the run ended")
    assert world.ledger.state.rounds["busy"].status == "aborted"


def test_a_run_waits_for_the_sweep_looking_at_its_round_instead_of_being_refused(world: World) -> None:
    # The sweep holds an open round for a moment while it decides whether to abort it; a
    # run asked for in that moment used to be refused as "already running".
    world.open("swept", THREE, pool=10)
    rounds, stop, looks = world.coordinator.rounds, threading.Event(), [0]

    def sweep_hard() -> None:
        while not stop.is_set():
            rounds.look_at("swept")
            looks[0] += 1

    sweeper = threading.Thread(target=sweep_hard, daemon=True)
    sweeper.start()
    try:
        for _ in range(120):
            rounds.claim("swept").running = False    # a run starts (and ends) mid-sweep
    finally:
        stop.set()
        sweeper.join(timeout=10)
    assert looks[0] > 20, looks            # the sweep really ran alongside
    assert world.ledger.state.rounds["swept"].status == "open"


def test_only_the_admin_certificate_may_abort(world: World) -> None:
    world.open("guarded", THREE, pool=10)
    channel = open_channel(world.admin_address, channel_credentials(world.certs, "node0"))
    try:
        with pytest.raises(PermissionDenied):
            try:
                admin_pb2_grpc.AdminStub(channel).AbortRound(
                    admin_pb2.AdminAbortRoundRequest(round_id="guarded", reason="x"), timeout=10)
            except grpc.RpcError as err:
                raise_from_rpc_error(err)
    finally:
        channel.close()
    assert world.ledger.state.rounds["guarded"].status == "open"
    world.clients["sponsor"].abort_round("guarded", "test done")


# -- 3. every dataset's terms -------------------------------------------------------------

def test_each_term_refuses_a_round_naming_dataset_and_term(world: World) -> None:
    picky = world.enrol("picky")
    world.dataset("picky", "picky-data", terms=DatasetTerms(
        min_datasets=4, model_kinds=("logistic",), max_slash_rate_ppm=50_000,
        min_pool_per_row=2, sponsors=("sponsor",)))
    world.enrol("stranger")
    with_picky = ("p1-data", "p2-data", "picky-data")
    cases = [
        ({"datasets": with_picky}, "terms_min_datasets", "min_datasets"),
        ({"spec": {"kind": "mlp", "epochs": 2}}, "terms_model_kinds", "model_kinds"),
        ({"slash_rate_ppm": 60_000}, "terms_max_slash_rate", "max_slash_rate_ppm"),
        ({"pool": 2 * ROWS * 4 - 1}, "terms_min_pool_per_row", "min_pool_per_row"),
        ({"sponsor": "stranger"}, "terms_sponsors", "sponsors"),
    ]
    for overrides, rule, term in cases:
        args: dict[str, Any] = {"datasets": (*THREE, "picky-data"), "pool": 2 * ROWS * 4,
                                "slash_rate_ppm": 50_000}
        args.update(overrides)
        err = _unchanged(world, lambda a=args: world.open("picky-round", **a), RuleViolation)
        assert err.rule == rule, err   # type: ignore[attr-defined]
        assert "'picky-data'" in str(err) and term in str(err), err
    # the same round within every term opens; then the provider tightens its terms
    world.open("picky-round", (*THREE, "picky-data"), pool=5 * ROWS * 2, slash_rate_ppm=50_000)
    world.clients["sponsor"].abort_round("picky-round", "test done")
    picky.update_terms("picky-data", DatasetTerms(min_datasets=5))
    err = _unchanged(world, lambda: world.open("picky-2", (*THREE, "picky-data"), pool=400),
                     RuleViolation)
    assert err.rule == "terms_min_datasets" and "'picky-data'" in str(err)  # type: ignore[attr-defined]
    # another provider cannot set picky's terms
    _unchanged(world, lambda: world.clients["p1"].update_terms("picky-data", DatasetTerms()),
               RuleViolation)
    assert _replayed(world).terms["picky-data"].min_datasets == 5


def test_default_terms_refuse_rounds_of_fewer_than_three_datasets(world: World) -> None:
    for datasets in (FOUR[:1], FOUR[:2]):
        err = _unchanged(world, lambda d=datasets: world.open("tiny", d), RuleViolation)
        assert err.rule == "terms_min_datasets"   # type: ignore[attr-defined]
    err = _unchanged(world, lambda: world.open("harsh", THREE, slash_rate_ppm=600_000),
                     RuleViolation)
    assert err.rule == "terms_max_slash_rate"   # type: ignore[attr-defined]


def test_terms_below_three_datasets_cannot_be_signed(world: World) -> None:
    with pytest.raises(InvalidInput, match="min_datasets"):
        DatasetTerms(min_datasets=2).to_payload()
    bad = world.provider_cli("terms", "p1", "--dataset-id", "p1-data", "--min-datasets", "1")
    assert bad.returncode == 2 and "min_datasets" in bad.stderr


def test_a_model_share_with_per_dataset_statistics_is_refused() -> None:
    """collect-model accepts only the full model and one pooled row per statistic."""
    from mutualmind.errors import IntegrityError
    from mutualmind.vocabulary.model_file import check_released

    good = [{"name": "weight", "shape": [4, 1], "offset": 0},
            {"name": "normalise_mean", "shape": [1, 4], "offset": 4}]
    check_released(good)
    with pytest.raises(IntegrityError, match="no per-dataset statistics"):
        check_released([*good, {"name": "dataset_means", "shape": [3, 4], "offset": 8}])
    with pytest.raises(IntegrityError, match="one row"):
        check_released([{"name": "normalise_mean", "shape": [3, 4], "offset": 0}])


def test_a_tournament_is_aborted_after_k_failed_jobs_or_when_its_resolution_never_comes(world: World) -> None:
    """Issue 15: every train job fails here (no dealer); the K-th failure aborts the
    tournament, and a tournament left unsettled past its deadline plus the policy's
    `tournament_ttl_s` is aborted by the sweep. Either way the pool and every stake go back."""
    from coordinator.rounds import LifecyclePolicy
    from mutualmind.vocabulary.tournament import ModelSubmission, TournamentTerms

    tournaments = world.coordinator.tournaments
    assert tournaments is not None
    sponsor, modeler = world.clients["sponsor"], world.enrol("modeler")
    before = {name: world.ledger.state.balance(name) for name in ("sponsor", "modeler")}
    deadline = int(time.time() * 1000) + 1_500
    recipe = {"kind": "logistic", "task": "binary", "metric": "log_loss", "epochs": 2}
    for tid in ("t-doomed", "t-forgotten"):
        sponsor.open_tournament(TournamentTerms(
            tournament_id=tid, sponsor="sponsor", label_kind="binary", metric="log_loss", pool=300,
            threshold_micro=1_000_000, deadline_ms=deadline, datasets=THREE, slash_rate_ppm=100_000))
        modeler.submit_model(ModelSubmission(tid, "m", "modeler", recipe, THREE, 50, 5_000))
    assert world.ledger.state.balance("modeler") == before["modeler"] - 100
    time.sleep(max(0.0, deadline / 1000 - time.time()) + 0.3)
    job = admin_pb2.TournamentJobRequest(tournament_id="t-doomed", deadline_s=20)
    rounds, policy = world.coordinator.rounds, world.coordinator.rounds.policy
    rounds.policy = LifecyclePolicy(max_failures=2)      # K = 2 here: each failed job takes seconds
    try:
        with pytest.raises(Unavailable):       # the dealer is unreachable: a real failed job
            world.admin("TrainTournament", job)
        assert world.ledger.state.tournament_statuses["t-doomed"] == "open"
        assert tournaments.runtime("t-doomed").failures == 1
        with pytest.raises(Aborted, match="failed 2 jobs"):
            world.admin("TrainTournament", job)
    finally:
        rounds.policy = policy
    assert world.ledger.state.tournament_statuses["t-doomed"] == "aborted"
    ttl_ms = int(policy.tournament_ttl_s * 1000)
    assert tournaments.sweep(now_ms=deadline + ttl_ms - 1) == []
    assert tournaments.sweep(now_ms=deadline + ttl_ms) == ["t-forgotten"]
    state = _replayed(world)
    assert state.tournament_statuses["t-forgotten"] == "aborted"
    assert {name: state.balances[name] for name in before} == before
    assert not any(state.model_stakes.values()) and not any(state.tournament_pools.values())


def _restarted(world: World, name: str, **changes: Any) -> RunningCoordinator:
    """A coordinator started on a copy of the world's data folder as it is at this moment:
    what the coordinator finds when it starts again after being killed now. The copy also
    has the marker a resolve job of t-unsettled leaves when the coordinator is killed right
    after the job's result was committed (its status then moved on: not a failed job)."""
    import dataclasses
    import shutil

    from ledger.export import export_ledger

    source, copy = world.coordinator.config.data_dir, world.tmp / name
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("ledger.db*"))
    export_ledger(source / "ledger.db", copy / "ledger.db")
    (copy / "tournaments" / "running" / "t-unsettled").write_text(
        json.dumps({"job": "resolve", "status": "resolving", "failures": 0}))
    return start_coordinator(dataclasses.replace(world.coordinator.config, data_dir=copy, **changes))


def _frozen_with_result(world: World, tid: str, metric: int, contributions: list[int],
                        per_dataset: list[list[int]]) -> None:
    """`models_frozen`, the sponsor's resolution and `tournament_result` on the ledger, signed
    by the cluster's node keys as the nodes sign them; the settlement is not written: a
    coordinator stopped between the result's commit and the settlement's."""
    import hashlib

    from mutualmind.transport.pki import load_signing_key
    from mutualmind.vocabulary.tournament import (
        freeze_attestation_message,
        freeze_digest,
        resolution_digest,
        result_attestation_message,
    )

    keys = [load_signing_key(world.certs, i) for i in range(NODES)]

    def attested(message: bytes) -> list[dict[str, Any]]:
        return [{"node_index": i, "signature": key.sign(message).hex()} for i, key in enumerate(keys)]

    state = world.ledger.state
    record = state.tournament(tid)
    assert record is not None
    subs = [e.payload for e in world.ledger.entries(kind="model_submitted", limit=None)
            if e.payload["tournament_id"] == tid]
    digest = freeze_digest(record.opened, subs, state.datasets)
    commitments = [hashlib.sha256(f"{tid}/{s['model_id']}".encode()).hexdigest() for s in subs]
    world.ledger.append("models_frozen", {"tournament_id": tid, "job_digest": digest, "model_commitments": commitments,
                                          "attestations": attested(freeze_attestation_message(tid, digest, commitments))})
    world.clients["sponsor"].commit_resolution(tid, "validation")
    record = world.ledger.state.tournament(tid)
    assert record is not None
    stakes = [state.model_stakes[f"{tid}/{m}"] for m in record.models]
    digest = resolution_digest(record.freeze_digest, record.commitments, stakes, record.opened["weight_cap_ppm"],
                               record.resolution_dataset, state.datasets[record.resolution_dataset])
    message = result_attestation_message(tid, digest, metric, contributions, per_dataset)
    world.ledger.append("tournament_result", {
        "tournament_id": tid, "job_digest": digest, "metamodel_metric_micro": metric,
        "contributions_micro": contributions, "dataset_contributions_micro": per_dataset,
        "attestations": attested(message)})


def test_a_restart_counts_the_tournament_job_it_cut_short_and_settles_an_unsettled_result(world: World) -> None:
    """Issue 15: a coordinator killed while a train job runs (its marker on disk) puts the
    tournament back at start, where the ledger has it, counting the job as failed (the
    K-th such failure aborts it); one killed between a result's commit and its
    settlement's settles at start. That result misses the threshold: the pool goes back to
    the sponsor, and the model that hurt the metamodel is still slashed, half of it from
    the dataset that hurt it, paid to the model that helped and its data."""
    from mutualmind.vocabulary.tournament import ModelSubmission, TournamentTerms

    sponsor, ann, bo = world.clients["sponsor"], world.enrol("ann"), world.enrol("bo")
    deadline = int(time.time() * 1000) + 1_500
    for tid in ("t-cut", "t-unsettled"):
        sponsor.open_tournament(TournamentTerms(
            tournament_id=tid, sponsor="sponsor", label_kind="binary", metric="log_loss", pool=400,
            threshold_micro=100_000, deadline_ms=deadline, datasets=THREE, slash_rate_ppm=200_000))
    recipe = {"kind": "logistic", "task": "binary", "metric": "log_loss", "epochs": 2}
    ann.submit_model(ModelSubmission("t-cut", "m", "ann", recipe, THREE, 50, 5_000))
    ann.submit_model(ModelSubmission("t-unsettled", "good", "ann", recipe, THREE, 100, 5_000))
    bo.submit_model(ModelSubmission("t-unsettled", "bad", "bo", {**recipe, "epochs": 3}, THREE, 100, 5_000))
    time.sleep(max(0.0, deadline / 1000 - time.time()) + 0.3)
    names = ("sponsor", "ann", "bo", "p1", "p2", "p3")
    before = {name: world.ledger.state.balance(name) for name in names}
    stakes = {d: world.ledger.state.stakes[d] for d in THREE}
    _frozen_with_result(world, "t-unsettled", metric=500_000, contributions=[40_000, -40_000],
                        per_dataset=[[20_000, 10_000, 0], [-30_000, 0, 5_000]])

    running = world.coordinator.tournaments
    assert running is not None
    entered, release, outcome = threading.Event(), threading.Event(), []

    def progress(stage: str, fraction: float, message: str) -> None:
        if stage == "training":    # inside the job: its marker is on disk
            entered.set()
            release.wait(30)
            raise InterruptedError("the test ends this job here (the copies saw it running)")

    def train() -> None:
        try:
            running.train("t-cut", deadline_s=20, progress=progress)
        except Exception as err:
            outcome.append(err)

    thread = threading.Thread(target=train)
    thread.start()
    try:
        assert entered.wait(20), outcome
        again = _restarted(world, "restart")
        given_up = _restarted(world, "restart-k1", lifecycle=LifecyclePolicy(max_failures=1))
    finally:
        release.set()
        thread.join(30)
    assert isinstance(outcome[0], InterruptedError)
    try:
        tournaments = again.tournaments
        assert tournaments is not None
        assert again.aborted_on_start == [] and again.ledger.state.tournament_statuses["t-cut"] == "open"
        runtime = tournaments.runtime("t-cut")
        assert runtime.failures == 1 and not runtime.running and "stopped while the freeze job" in runtime.message
        assert not any((again.config.data_dir / "tournaments" / "running").iterdir())
        assert tournaments.runtime("t-unsettled").failures == 0
        assert given_up.aborted_on_start == ["t-cut"]
        assert given_up.ledger.state.tournament_statuses["t-cut"] == "aborted"
        for restarted, cut_back in ((again, {}), (given_up, {"sponsor": 400, "ann": 50})):
            state = restarted.ledger.state
            assert state.tournament_statuses["t-unsettled"] == "closed"
            refunds = [e.payload for e in restarted.ledger.entries(kind="tournament_refund", limit=None)
                       if e.payload["tournament_id"] == "t-unsettled"]
            assert refunds == [{"tournament_id": "t-unsettled", "sponsor": "sponsor", "amount": 400}]
            # bo's model: slashed 20 (20%), bo keeps half its slash: 10 from its stake, 10 from p1-data
            # (the dataset that hurt it); the 20 go to ann's model: 10 kept, 10 split 2:1 to p1, p2
            changes = {name: state.balance(name) - before[name] for name in names}
            expected = {"sponsor": 400, "ann": 100 + 10, "bo": 90, "p1": 7, "p2": 3, "p3": 0}
            assert changes == {name: expected[name] + cut_back.get(name, 0) for name in names}
            assert {d: state.stakes[d] for d in THREE} == {**stakes, "p1-data": stakes["p1-data"] - 10}
            report = verify_ledger(restarted.ledger.path)
            assert report.ok, report.error
    finally:
        again.stop(grace=None)
        given_up.stop(grace=None)
