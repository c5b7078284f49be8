"""Faults in a running round: a node dies, the coordinator restarts, a node lies.

In every case nothing partial reaches the ledger and no token moves: stakes stay, the
pool stays locked (or, when the coordinator restarted, goes back to the sponsor).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coordinator.cluster_link import NodeJobReport
from coordinator.cluster_link_client import GrpcClusterLink
from coordinator.rounds import Rounds
from ledger import Ledger
from mutualmind.errors import IntegrityError, Unavailable
from mutualmind.transport.pki import load_signing_key
from mutualmind.vocabulary.attestation import attestation_message
from mutualmind.vocabulary.signing_keys import load_private_key, sign
from tests.coordinator.rounds.conftest import (
    POOL,
    Market,
    kill_member,
    ledger_kinds,
    restart_member,
    run_in_thread,
    stakes,
    wait_until_training,
)


def test_node_killed_mid_round_aborts_the_run_and_a_rerun_succeeds(market: Market) -> None:
    stakes_before = stakes(market)
    sponsor_before = market.session.balance("sponsor").balance
    market.session.open_round(market.sponsor, market.terms("fault-node"))
    outcome = run_in_thread(market, "fault-node", deadline_s=120)
    wait_until_training(market, "fault-node")
    kill_member(market.cluster, "node1")
    outcome["thread"].join(timeout=150)

    assert "error" in outcome, "the run should fail when a node dies"
    assert outcome["seconds"] < 120                        # within the round's deadline
    assert "node 1" in str(outcome["error"]) or "unreachable" in str(outcome["error"]).lower() \
        or "Unavailable" in type(outcome["error"]).__name__
    assert ledger_kinds(market, "fault-node") == ["round_opened"]   # nothing partial
    assert stakes(market) == stakes_before
    assert market.session.balance("sponsor").balance == sponsor_before - POOL  # still locked
    assert market.session.get_round("fault-node").status == "open"

    restart_member(market.cluster, "node1")
    view = market.session.run_round("fault-node", deadline_s=300)
    assert view.status == "closed"
    assert ledger_kinds(market, "fault-node")[-1] == "round_closed"
    assert market.session.verify_ledger().ok


def test_coordinator_restart_mid_round_aborts_it_with_tokens_back(market: Market) -> None:
    stakes_before = stakes(market)
    sponsor_before = market.session.balance("sponsor").balance
    market.session.open_round(market.sponsor, market.terms("fault-coordinator"))
    assert market.session.balance("sponsor").balance == sponsor_before - POOL
    outcome = run_in_thread(market, "fault-coordinator", deadline_s=120)
    wait_until_training(market, "fault-coordinator")
    kill_member(market.cluster, "coordinator")
    outcome["thread"].join(timeout=30)
    assert "error" in outcome
    restart_member(market.cluster, "coordinator")

    view = market.session.get_round("fault-coordinator")
    assert view.status == "aborted"
    assert "restarted" in view.message
    assert ledger_kinds(market, "fault-coordinator") == ["round_opened", "round_aborted"]
    assert market.session.balance("sponsor").balance == sponsor_before   # pool returned
    assert stakes(market) == stakes_before
    assert market.session.verify_ledger().ok


def _open_when_released(data_dir: Path) -> Ledger:
    """Open the killed coordinator's ledger once the kernel has dropped its writer lock."""
    key = load_private_key(data_dir / "coordinator.signing.key")
    deadline = time.monotonic() + 15
    while True:
        try:
            return Ledger.open(data_dir / "ledger.db", key)
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class _LyingNode:
    """A real cluster link in which node 2 reports (and validly signs) other values."""

    def __init__(self, link: GrpcClusterLink, key: Any) -> None:
        self._link, self._key = link, key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._link, name)

    def job_report(self, node_index: int, job_id: str) -> NodeJobReport:
        report = self._link.job_report(node_index, job_id)
        if node_index != 2 or report.state != "done":
            return report
        body = json.loads(report.attestation_payload)
        metrics = list(body["metrics_micro"])
        metrics[1] -= 50_000                      # claim provider 0 helped much more
        payload = attestation_message(body["round_id"], body["job_digest"], metrics, body.get("copies"),
                                      body.get("beacon"))
        return NodeJobReport(state="done", attestation_payload=payload,
                             attestation=sign(self._key, payload), stats=report.stats)


def test_a_node_reporting_other_values_is_refused(market: Market, tmp_path: Path) -> None:
    """The real Rounds code on the cluster's real ledger, nodes and dealer; node 2 lies."""
    cluster = market.cluster
    market.session.open_round(market.sponsor, market.terms("fault-liar"))
    coordinator = cluster.state.member("coordinator")
    kill_member(cluster, "coordinator")          # we take over its ledger for this test
    data_dir = Path(cluster.data_dir) / "coordinator"
    try:
        ledger = _open_when_released(data_dir)
        state = cluster.state
        from coordinator.cli import parse_nodes

        nodes = parse_nodes([f"{state.member(f'node{i}').addresses['public']},"
                             f"{state.member(f'node{i}').addresses['cluster']}"
                             for i in range(3)])
        link = GrpcClusterLink(list(nodes), state.member("dealer").addresses["cluster"],
                               cluster.certs_dir)
        try:
            rounds = Rounds(ledger, _LyingNode(link, load_signing_key(cluster.certs_dir, 2)),
                            tmp_path / "rounds")
            # nodes check every job's digest against the market: serve it from this ledger
            market_server = _serve_market(cluster, ledger, rounds)
            try:
                size_before = ledger.size
                with pytest.raises(IntegrityError, match="disagree"):
                    rounds.run("fault-liar", deadline_s=300)
                assert ledger.size == size_before       # nothing written
                assert ledger.state.rounds["fault-liar"].status == "open"
            finally:
                market_server.stop(None).wait()
        finally:
            link.close()
            ledger.close()
    finally:
        restart_member(cluster, "coordinator")
    assert coordinator.argv                      # (restarted from its recorded argv)
    assert market.session.verify_ledger().ok


def _serve_market(cluster: Any, ledger: Ledger, rounds: Rounds) -> Any:
    """The Market API over `ledger` on the (killed) coordinator's public address."""
    from coordinator.market import Market as MarketLogic
    from coordinator.market_servicer import MarketServicer
    from coordinator.server import MARKET_SERVICE
    from mutualmind.transport import build_server, server_credentials
    from proto import market_pb2_grpc

    return build_server(
        [(market_pb2_grpc.add_MarketServicer_to_server, MarketServicer(MarketLogic(ledger, 3), rounds))],
        address=cluster.state.member("coordinator").addresses["public"],
        credentials=server_credentials(cluster.certs_dir, "coordinator", require_client_cert=False),
        service_names=[MARKET_SERVICE])


def test_a_dataset_whose_declared_labels_do_not_fit_the_model_is_refused_at_open(market: Market) -> None:
    """Labels are secret-shared: the coordinator checks each dataset's signed declaration
    (`label_classes`) against the model kind, and names the dataset it refuses."""
    from mutualmind.errors import InvalidInput
    from provider.sharing import Table

    name = market.scenario.providers[0].name
    client = market.clients[name]
    table = market.scenario.validation
    values = table.values.copy()
    label = table.schema.columns.index(table.schema.label_column)
    values[:, label] = np.linspace(-2.5, 7.25, len(values))  # a real-valued target
    market.session.share(client, "real-target", Table(values, table.schema), purpose="training",
                         expected_schema=market.scenario.schema)
    client.stake("real-target", 10)
    before = len(ledger_kinds(market, "labels-logistic"))
    with pytest.raises(InvalidInput) as caught:
        market.session.open_round(market.sponsor, market.terms(
            "labels-logistic", datasets=(*market.datasets, "real-target")))
    assert "'real-target'" in caught.value.message and "binary labels 0/1" in caught.value.message
    assert len(ledger_kinds(market, "labels-logistic")) == before == 0   # nothing recorded
    client.unstake("real-target", 10)
