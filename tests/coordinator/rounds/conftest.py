"""A real local cluster (coordinator, dealer, 3 nodes as processes) with a real market.

Module-scoped: starting the cluster and sharing the data takes a few seconds, and every
test opens its own round on the same staked datasets. Members a test kills are
restarted with `restart_member`, from the argv the cluster recorded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mutualmind.cluster.local import LocalCluster
from mutualmind.cluster.local_processes import member_running
from mutualmind.demo.scenario import Scenario, build_scenario
from mutualmind.demo.session import MarketSession
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
    cluster.up()
    try:
        session = MarketSession(cluster)
        scenario = build_scenario(load_sklearn("breast_cancer"), providers=4)
        clients, datasets = {}, []
        for part in scenario.providers:
            client = session.enrol(part.name, mint=MINT)
            session.share(client, f"{part.name}-data", part.table, purpose="training",
                          expected_schema=scenario.schema)
            client.stake(f"{part.name}-data", STAKE)
            clients[part.name] = client
            datasets.append(f"{part.name}-data")
        sponsor = session.enrol("sponsor", mint=MINT)
        session.share(sponsor, "validation", scenario.validation, purpose="validation",
                      expected_schema=scenario.schema)
        yield Market(cluster, session, scenario, datasets, sponsor, clients)
        session.close()
    finally:
        cluster.down()


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
