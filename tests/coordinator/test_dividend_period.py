"""Dividends per settlement period on a real coordinator: every `dividend_period_s` the
coordinator pays every model's fee account to its owners in one group commit.

Two rounds ("r1", "r2") are settled by the coordinator's own `Rounds` with `AttestingLink`
standing in for the MPC nodes (tests/coordinator/admin/settled_round.py), so both models
are issued by the real settlement to hospital-a and hospital-b.
Fees reach the models' accounts by real signed orders and node-signed deliveries.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coordinator.cluster_link import NodeEndpoint
from coordinator.server import CoordinatorConfig, RunningCoordinator, start_coordinator
from ledger import verify_ledger
from mutualmind.cli import main
from mutualmind.transport.pki import load_signing_key
from mutualmind.vocabulary.ownership import delivery_message, order_payload
from mutualmind.vocabulary.payloads import request_message
from mutualmind.vocabulary.signing_keys import sign
from mutualmind.vocabulary.states import EntryKind
from tests.certs import ClusterCertsFactory
from tests.coordinator.admin.settled_round import (
    NODES,
    AttestingLink,
    settle_another_round,
    settle_round,
)

PERIOD_S = 0.4
PRICE = {"r1": 5, "r2": 3}       # tokens per 1,000 rows, signed by each round's sponsor
OWNERS = ("hospital-a", "hospital-b")


@pytest.fixture
def periodic(tmp_path: Path, cluster_certs: ClusterCertsFactory) -> Iterator[tuple[RunningCoordinator, dict[str, Any], list[Any]]]:
    certs = cluster_certs(NODES).folder
    node_keys = [load_signing_key(certs, i) for i in range(NODES)]
    endpoints = tuple(NodeEndpoint(i, f"node{i}", "127.0.0.1:1", "127.0.0.1:2") for i in range(NODES))
    coordinator = start_coordinator(
        CoordinatorConfig(certs_dir=certs, data_dir=tmp_path / "coordinator", nodes=endpoints,
                          dealer_address="127.0.0.1:1", dividend_period_s=PERIOD_S),
        link=AttestingLink(node_keys))
    try:
        keys = settle_round(coordinator.ledger, coordinator.rounds, inference_price=PRICE["r1"])
        settle_another_round(coordinator.rounds, keys, "r2", inference_price=PRICE["r2"])
        yield coordinator, keys, node_keys
    finally:
        coordinator.stop(grace=None)


def _sold(keys: dict[str, Any], node_keys: list[Any], order_id: str, model_id: str,
          rows: int) -> list[tuple[str, dict[str, Any], bytes | None]]:
    """The sponsor's signed order of `rows` rows and every node's signed delivery of it."""
    order = order_payload(order_id, model_id, "sponsor", rows, PRICE[model_id],
                          time.time_ns() // 1_000_000, f"nonce-{order_id}")
    body = delivery_message(order_id, model_id, "sponsor", rows)
    return [(EntryKind.INFERENCE_ORDERED, order, sign(keys["sponsor"], request_message("inference_ordered", order))),
            (EntryKind.INFERENCE_DELIVERED, {
                "order_id": order_id, "model_id": model_id, "user": "sponsor", "rows": rows,
                "attestations": [{"node_index": i, "signature": sign(k, body).hex()}
                                 for i, k in enumerate(node_keys)]}, None)]


def test_every_models_fees_are_paid_in_one_group_commit_per_period(periodic: Any) -> None:
    coordinator, keys, node_keys = periodic
    ledger = coordinator.ledger
    view = ledger.state.ownership
    assert view.units("r1") == {"hospital-a": 715_000, "hospital-b": 285_000}
    assert view.units("r2") == {"hospital-a": 714_667, "hospital-b": 285_333}  # after r1's slash
    before = {who: ledger.state.balance(who) for who in OWNERS}
    minted = ledger.state.totals["minted"]
    # both accounts fill in one commit, so one period's payout finds both
    ledger.append_many(_sold(keys, node_keys, "o1", "r1", 2_500) + _sold(keys, node_keys, "o2", "r2", 1_000))
    filled = ledger.size
    deadline = time.monotonic() + 20 * PERIOD_S + 10
    while (view.fee_account("r1") or view.fee_account("r2")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert view.fee_account("r1") == view.fee_account("r2") == 0, "no payout within the period"
    paid = ledger.entries(filled, ledger.size)
    assert [(e.kind, e.payload["model_id"]) for e in paid] == [
        (EntryKind.DIVIDEND_PAID, "r1"), (EntryKind.DIVIDEND_PAID, "r2")]
    assert paid[0].time_ms == paid[1].time_ms   # one group commit: one time for its entries
    # 15 by 715,000 : 285,000 -> 11 + 4 (largest remainder); 3 by 714,667 : 285,333 -> 2 + 1
    assert [{p["to"]: p["amount"] for p in e.payload["payments"]} for e in paid] == [
        {"hospital-a": 11, "hospital-b": 4}, {"hospital-a": 2, "hospital-b": 1}]
    assert {who: ledger.state.balance(who) - before[who] for who in OWNERS} == {"hospital-a": 13, "hospital-b": 5}
    assert ledger.state.totals["minted"] == minted and ledger.state.supply_holds()
    # an empty period writes nothing
    time.sleep(3 * PERIOD_S)
    assert ledger.size == filled + 2
    assert verify_ledger(ledger.path).ok


def test_a_zero_period_runs_no_payer_and_a_bad_period_is_refused(
        tmp_path: Path, cluster_certs: ClusterCertsFactory, capsys: pytest.CaptureFixture[str]) -> None:
    certs = cluster_certs(NODES).folder
    endpoints = tuple(NodeEndpoint(i, f"node{i}", "127.0.0.1:1", "127.0.0.1:2") for i in range(NODES))
    coordinator = start_coordinator(
        CoordinatorConfig(certs_dir=certs, data_dir=tmp_path / "coordinator", nodes=endpoints,
                          dealer_address="127.0.0.1:1", dividend_period_s=0),
        link=AttestingLink([load_signing_key(certs, i) for i in range(NODES)]))
    try:
        assert coordinator.dividends is None
    finally:
        coordinator.stop(grace=None)
    args = ["coordinator", "serve", "--certs", str(certs), "--data-dir", str(tmp_path / "c2"),
            "--node", "127.0.0.1:1,127.0.0.1:2", "--dealer", "127.0.0.1:1"]
    assert main([*args, "--dividend-period", "-5"]) == 2
    assert "--dividend-period must be 0 (off) or within 1.." in capsys.readouterr().err
    assert not (tmp_path / "c2").exists()
