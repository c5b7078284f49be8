"""A real local cluster (coordinator, dealer, 3 nodes as processes) with a real market.

Module-scoped: starting the cluster and sharing the data takes a few seconds, and every
test opens its own round on the same staked datasets. Members a test kills are
restarted with `restart_member`, from the argv the cluster recorded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mpcnode.worker.reference import plaintext_loo
from mutualmind.cluster.local import LocalCluster
from mutualmind.cluster.local_processes import member_running
from mutualmind.demo.scenario import Scenario, build_scenario
from mutualmind.demo.session import MarketSession
from mutualmind.errors import MutualMindError
from mutualmind.vocabulary.copy_rule import copied_indices, is_copy
from mutualmind.vocabulary.model_spec import parse_model_spec, spec_for_ledger
from provider.sharing import load_sklearn

MINT = 100_000
STAKE = 1_000
POOL = 4_000
SLASH_RATE_PPM = 500_000
EPSILON_MICRO = 1_000
EPOCHS = 15


@dataclass
class Market:
    cluster: LocalCluster
    session: MarketSession
    scenario: Scenario
    datasets: list[str]
    sponsor: Any
    clients: dict[str, Any]

    def terms(self, round_id: str, **overrides: Any) -> Any:
        from mutualmind.vocabulary.round_open import RoundTerms

        values = dict(round_id=round_id, sponsor="sponsor", pool=POOL,
                      model_spec={"kind": "logistic", "task": "binary", "metric": "log_loss",
                                  "epochs": EPOCHS},
                      validation_dataset="validation", datasets=tuple(self.datasets),
                      slash_rate_ppm=SLASH_RATE_PPM, epsilon_micro=EPSILON_MICRO)
        values.update(overrides)
        return RoundTerms(**values)


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    cluster = LocalCluster(tmp_path_factory.mktemp("rounds") / "cluster", nodes=3)
    with running_market(cluster) as market:
        yield market


# (session, the provider's part, its dataset id, the scenario) -> what `Market.clients` holds
Enrol = Callable[[MarketSession, Any, str, Scenario], Any]


def enrol_in_process(session: MarketSession, part: Any, dataset_id: str, scenario: Scenario) -> Any:
    """Register `part`'s provider, mint it MINT, share its table and stake STAKE on it."""
    client = session.enrol(part.name, mint=MINT)
    session.share(client, dataset_id, part.table, purpose="training", expected_schema=scenario.schema)
    client.stake(dataset_id, STAKE)
    return client


@contextmanager
def running_market(cluster: LocalCluster, *, providers: int = 4,
                   enrol: Enrol | None = None) -> Iterator[Market]:
    """Start `cluster`, enrol `providers` providers and a sponsor, share and stake their
    data (the breast-cancer scenario); stop the cluster on exit. Any `LocalCluster`
    works: tests/netns_cluster.py places every member on a host of its own. `enrol`
    (default `enrol_in_process`) registers, mints, shares and stakes one provider's part:
    test_round_netns.py has one provider do it with the CLI from a host of its own."""
    cluster.up()
    try:
        session = MarketSession(cluster)
        scenario = build_scenario(load_sklearn("breast_cancer"), providers=providers)
        clients, datasets = {}, []
        for part in scenario.providers:
            clients[part.name] = (enrol or enrol_in_process)(session, part, f"{part.name}-data", scenario)
            datasets.append(f"{part.name}-data")
        sponsor = session.enrol("sponsor", mint=MINT)
        session.share(sponsor, "validation", scenario.validation, purpose="validation",
                      expected_schema=scenario.schema)
        yield Market(cluster, session, scenario, datasets, sponsor, clients)
        session.close()
    finally:
        cluster.down()


# -- what a settled round must show -------------------------------------------------

# MPC fixed point (16 fractional bits), CrypTen's sigmoid/log approximations and share
# truncation noise move a log-loss contribution by a few thousandths at most here.
TOLERANCE = 0.01


def assert_settled_like_plaintext(market: Market, terms: Any, view: Any) -> None:
    """The market's first closed round: its MPC leave-one-out contributions are the
    plaintext retraining's (within TOLERANCE, same signs and order), the noisy provider
    is slashed, the pool and the slashes are paid out exactly, every balance is a
    replay of the ledger, and the ledger verifies. Any run of this fixture's round that
    passes is equal to any other up to fixed-point noise, whatever network it ran on."""
    assert view.status == "closed", view.message
    mpc = np.array([p.contribution_micro for p in view.participants]) / 1e6

    # plaintext: the same algorithm retrained n+1 times, without each provider in turn,
    # no model seeing the datasets the nodes flagged as copies (they train on none)
    spec = parse_model_spec(spec_for_ledger(terms.model_spec))   # what the nodes train
    train = market.scenario.training.values
    val = market.scenario.validation.values
    metrics = plaintext_loo(spec, train[:, :-1], train[:, -1], val[:, :-1], val[:, -1],
                            [p.rows for p in market.scenario.providers], flagged(market, view.round_id))
    plain = np.array(metrics[1:]) - metrics[0]          # log-loss: lower is better

    assert np.max(np.abs(mpc - plain)) < TOLERANCE, (mpc, plain)
    for i in range(len(plain)):
        if abs(plain[i]) > TOLERANCE:
            assert np.sign(mpc[i]) == np.sign(plain[i]), (i, mpc, plain)
        for j in range(len(plain)):
            if plain[i] - plain[j] > 2 * TOLERANCE:
                assert mpc[i] > mpc[j], (i, j, mpc, plain)

    roles = {p.name + "-data": p.role for p in market.scenario.providers}
    by_role = {roles[p.dataset_id]: p for p in view.participants}
    noisy = by_role["noisy"]
    assert noisy.contribution_micro < -terms.epsilon_micro
    assert noisy.slashed == STAKE * SLASH_RATE_PPM // 1_000_000
    assert noisy.payout == 0
    slashed = sum(p.slashed for p in view.participants)
    paid = sum(p.payout for p in view.participants) + view.refund_to_sponsor
    assert paid == POOL + slashed                    # the pool (and slashes) paid out exactly
    # the duplicate re-submits provider 0's rows: the nodes' copy counts flag it (issue 13),
    # so it earns nothing and is slashed, while the original it copied is paid
    copies = round_result(market, view.round_id)["copies"]
    copied = {d for d, c, s in zip(terms.datasets, copies["counts"], copies["samples"], strict=True) if is_copy(c, s)}
    assert copied == {p.dataset_id for p in view.participants if roles[p.dataset_id] == "duplicate"}
    duplicate = by_role["duplicate"]
    assert duplicate.payout == 0 and duplicate.slashed == STAKE * SLASH_RATE_PPM // 1_000_000
    assert all(p.payout > 0 for p in view.participants
               if p.contribution_micro > terms.epsilon_micro and p.dataset_id not in copied)

    # balances are a replay of the ledger, and the ledger verifies
    for part in market.scenario.providers:
        balance = market.session.balance(part.name)
        payout = next(p.payout for p in view.participants if p.dataset_id == f"{part.name}-data")
        assert balance.balance == MINT - STAKE + payout   # a slash takes from the stake
    assert market.session.balance("sponsor").balance == MINT - POOL
    verified = market.session.verify_ledger()
    assert verified.ok, verified.error


def flagged(market: Market, round_id: str) -> list[int]:
    """The round's datasets (0-based) its result's copy counts mark as copies."""
    copies = round_result(market, round_id)["copies"]
    return copied_indices(copies["counts"], copies["samples"])


def round_result(market: Market, round_id: str) -> dict[str, Any]:
    """The round_result entry's payload of `round_id`, read through the Admin API."""
    from proto import market_pb2

    admin = market.session.admin
    entries = admin.call(admin.market, "ListEntries",
                         market_pb2.ListEntriesRequest(kind="round_result", limit=100)).entries
    return next(p for p in (json.loads(e.payload_json) for e in entries) if p["round_id"] == round_id)


# -- what the fault tests look at -------------------------------------------------

def ledger_kinds(market: Market, round_id: str) -> list[str]:
    from proto import market_pb2

    reply = market.session.admin.call(market.session.admin.market, "ListEntries",
                                      market_pb2.ListEntriesRequest(start=0, limit=1000))
    return [e.kind for e in reply.entries if json.loads(e.payload_json).get("round_id") == round_id]


def stakes(market: Market) -> dict[str, int]:
    return {name: dict(market.session.balance(name).stakes).get(f"{name}-data", 0)
            for name in market.clients}


def run_in_thread(market: Market, round_id: str, deadline_s: float) -> dict[str, Any]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        try:
            outcome["view"] = market.session.run_round(round_id, deadline_s=deadline_s)
        except MutualMindError as err:
            outcome["error"] = err
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    outcome["thread"] = thread
    return outcome


def wait_until_training(market: Market, round_id: str) -> None:
    """Until every node has the job running (its worker started)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if market.session.get_round(round_id).status == "running":
            time.sleep(1.5)      # workers spawned and in the MPC rendezvous/training
            return
        time.sleep(0.1)
    pytest.fail(f"round {round_id} never started running")


def kill_member(cluster: LocalCluster, name: str) -> None:
    """SIGKILL a member's whole process group (its workers die with it)."""
    member = cluster.state.member(name)
    os.killpg(member.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while member_running(member) and time.monotonic() < deadline:
        time.sleep(0.05)


def restart_member(cluster: LocalCluster, name: str) -> None:
    """Start a killed member again with the argv it had, and wait until it serves."""
    from mutualmind.cluster.local import _python_path, member_credentials, probe

    member = cluster.state.member(name)
    with open(member.log, "ab") as log:
        process = subprocess.Popen(member.argv, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   cwd=cluster.data_dir,
                                   env=dict(os.environ, PYTHONUNBUFFERED="1",
                                            PYTHONPATH=_python_path()))
    _record_pid(cluster, name, process.pid)
    credentials = member_credentials(cluster.certs_dir)
    deadline = time.monotonic() + 30
    for kind, address in member.addresses.items():
        while probe(address, credentials[kind], timeout=1.0, server_name=name) != "SERVING":
            assert process.poll() is None, f"{name} exited on restart; see {member.log}"
            assert time.monotonic() < deadline, f"{name} did not serve again"
            time.sleep(0.1)


def _record_pid(cluster: LocalCluster, name: str, pid: int) -> None:
    """Point the cluster's state file at the new process so `down` stops it."""
    import json

    from mutualmind.cluster.local_processes import process_start_time
    from mutualmind.transport.cluster_state import state_path

    path: Path = state_path(cluster.data_dir)
    raw = json.loads(path.read_text())
    for m in raw["members"]:
        if m["name"] == name:
            m["pid"] = pid
            m["start_time"] = process_start_time(pid)
    path.write_text(json.dumps(raw))
