"""`mutualmind owner ...` and the inference price over the wire, as real subprocesses
against a real coordinator (Market over TLS on loopback, a SQLite ledger).

Round "r1" is settled by the coordinator's own `Rounds` with `AttestingLink` standing in
for the MPC nodes (each node's real signing key from the cluster folder attests the
revealed metrics), so its model's units are issued by the real settlement:
hospital-a 715,000 and hospital-b 285,000 (tests/coordinator/test_round_units.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from coordinator.cluster_link import NodeEndpoint
from coordinator.server import CoordinatorConfig, RunningCoordinator, start_coordinator
from ledger import Ledger
from mutualmind.cli import main
from mutualmind.transport.pki import load_signing_key
from mutualmind.vocabulary.ownership import delivery_message, order_payload
from mutualmind.vocabulary.payloads import request_message
from mutualmind.vocabulary.signing_keys import save_private_key, sign
from tests.certs import ClusterCertsFactory
from tests.coordinator.admin.settled_round import NODES, AttestingLink, settle_round

ROOT = Path(__file__).resolve().parents[2]
PRICE = 5  # tokens per 1,000 rows, signed by r1's sponsor at open
UNITS = {"hospital-a": 715_000, "hospital-b": 285_000}


@dataclass
class Owned:
    coordinator: RunningCoordinator
    certs: Path
    keys: dict[str, Any]        # provider id -> Ed25519 key
    key_files: dict[str, Path]  # provider id -> key file (with its .id next to it)
    node_keys: list[Any]

    @property
    def ledger(self) -> Ledger:
        return self.coordinator.ledger

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`mutualmind ARGS` against this coordinator, as a subprocess."""
        where = ["--coordinator", f"127.0.0.1:{self.coordinator.public_port}", "--certs", str(self.certs)]
        return subprocess.run([sys.executable, "-m", "mutualmind", *args, *where],
                              capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.fixture
def owned(tmp_path: Path, cluster_certs: ClusterCertsFactory) -> Iterator[Owned]:
    certs = cluster_certs(NODES).folder
    node_keys = [load_signing_key(certs, i) for i in range(NODES)]
    endpoints = tuple(NodeEndpoint(i, f"node{i}", "127.0.0.1:1", "127.0.0.1:2") for i in range(NODES))
    coordinator = start_coordinator(
        CoordinatorConfig(certs_dir=certs, data_dir=tmp_path / "coordinator", nodes=endpoints,
                          dealer_address="127.0.0.1:1"),
        link=AttestingLink(node_keys))
    try:
        keys = settle_round(coordinator.ledger, coordinator.rounds, inference_price=PRICE)
        files = {}
        for who, key in keys.items():
            files[who] = tmp_path / f"{who}.key"
            save_private_key(key, files[who])
            files[who].with_name(files[who].name + ".id").write_text(who + "\n", encoding="utf-8")
        yield Owned(coordinator, certs, keys, files, node_keys)
    finally:
        coordinator.stop(grace=None)


def _one_error_line(run: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert run.returncode == code, (run.returncode, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mutualmind: error:"), run.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_a_settled_rounds_units_are_shown_by_the_cli(owned: Owned) -> None:
    model = owned.cli("owner", "units", "--model", "r1", "--json")
    assert model.returncode == 0, model.stderr
    shown = json.loads(model.stdout)
    assert {h["account"]: h["units"] for h in shown["holders"]} == UNITS
    assert (shown["price_per_1000_rows"], shown["fee_account"], shown["source_id"]) == (PRICE, 0, "r1")
    mine = owned.cli("owner", "units", "--key", str(owned.key_files["hospital-a"]), "--json")
    assert json.loads(mine.stdout) == {"account": "hospital-a",
                                       "models": [{"model_id": "r1", "units": 715_000}]}
    table = owned.cli("owner", "units", "--model", "r1")
    assert table.returncode == 0 and "hospital-b" in table.stdout and "285000" in table.stdout
    _one_error_line(owned.cli("owner", "units", "--model", "no-such-model"), 3, "no model 'no-such-model'")


def test_a_transfer_above_balance_is_refused_with_nothing_written(owned: Owned) -> None:
    size = owned.ledger.size
    too_many = owned.cli("owner", "transfer", "--key", str(owned.key_files["hospital-b"]),
                         "--model", "r1", "--to", "sponsor", "--units", str(UNITS["hospital-b"] + 1))
    _one_error_line(too_many, 6, "insufficient_units", "transfer at most what you hold")
    assert owned.ledger.size == size
    assert owned.ledger.state.ownership.units("r1") == UNITS
    moved = owned.cli("owner", "transfer", "--key", str(owned.key_files["hospital-b"]),
                      "--model", "r1", "--to", "sponsor", "--units", "85000")
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["units_left"] == 200_000
    assert owned.ledger.state.ownership.units("r1") == {"hospital-a": 715_000, "hospital-b": 200_000,
                                                       "sponsor": 85_000}


def test_a_price_change_needs_owners_holding_a_majority(owned: Owned, tmp_path: Path) -> None:
    proposal = tmp_path / "proposal.json"
    # proposing and signing are offline: the same `main` in this process (no subprocess start-up)
    assert main(["owner", "propose-price", "--model", "r1", "--price", "9", "--out", str(proposal)]) == 0
    assert main(["owner", "sign", str(proposal), "--key", str(owned.key_files["hospital-b"])]) == 0
    assert list(json.loads(proposal.read_text())["signatures"]) == ["hospital-b"]
    size = owned.ledger.size
    minority = owned.cli("owner", "submit-price", str(proposal))
    _one_error_line(minority, 6, "no_majority", "owner sign")
    assert owned.ledger.size == size
    assert owned.ledger.state.ownership.model("r1").price_per_1000_rows == PRICE  # type: ignore[union-attr]
    assert main(["owner", "sign", str(proposal), "--key", str(owned.key_files["hospital-a"])]) == 0
    majority = owned.cli("owner", "submit-price", str(proposal))
    assert majority.returncode == 0, majority.stderr
    assert json.loads(majority.stdout)["signed_units"] == 1_000_000
    assert owned.ledger.state.ownership.model("r1").price_per_1000_rows == 9  # type: ignore[union-attr]
    # the nonce is single-use: the same signed proposal cannot be submitted again
    _one_error_line(owned.cli("owner", "submit-price", str(proposal)), 6)


def test_dividends_pay_the_fee_account_by_units_and_conserve_supply(owned: Owned) -> None:
    ledger = owned.ledger
    _one_error_line(owned.cli("owner", "dividends", "--model", "r1"), 6, "nothing_to_pay")
    # a user (the sponsor) buys 2,500 rows: fee 3 * PRICE, held, then delivered (ledger level)
    order = order_payload("o1", "r1", "sponsor", 2_500, PRICE, time.time_ns() // 1_000_000, "nonce-order-1")
    ledger.append("inference_ordered", order,
                  provider_signature=sign(owned.keys["sponsor"], request_message("inference_ordered", order)))
    body = delivery_message("o1", "r1", "sponsor", 2_500)
    ledger.append("inference_delivered", {
        "order_id": "o1", "model_id": "r1", "user": "sponsor", "rows": 2_500,
        "attestations": [{"node_index": i, "signature": sign(k, body).hex()}
                         for i, k in enumerate(owned.node_keys)]})
    assert ledger.state.ownership.fee_account("r1") == 3 * PRICE
    before = {who: ledger.state.balance(who) for who in UNITS}
    totals = dict(ledger.state.totals)
    paid = owned.cli("owner", "dividends", "--model", "r1", "--json")
    assert paid.returncode == 0, paid.stderr
    split = {p["account"]: p["amount"] for p in json.loads(paid.stdout)["payments"]}
    assert split == {"hospital-a": 11, "hospital-b": 4}   # 15 by 715,000 : 285,000, largest remainder
    assert {who: ledger.state.balance(who) - before[who] for who in UNITS} == split
    assert ledger.state.ownership.fee_account("r1") == 0
    assert ledger.state.totals["minted"] == totals["minted"]
    assert (ledger.state.totals["balances"] + ledger.state.totals["pools"]
            == totals["balances"] + totals["pools"])
    assert ledger.state.supply_holds()


def test_the_sponsor_signs_an_inference_price_at_open_and_round_show_has_it(owned: Owned) -> None:
    opened = owned.cli("provider", "open-round", "--key", str(owned.key_files["sponsor"]),
                       "--round-id", "r2", "--pool", "10", "--validation-dataset", "val-1",
                       "--dataset", "a-1", "--dataset", "b-1", "--dataset", "c-1",
                       "--inference-price", "12")
    assert opened.returncode == 0, opened.stderr
    assert json.loads(opened.stdout)["inference_price_per_1000_rows"] == 12
    assert owned.ledger.round_opened("r2").payload["inference_price_per_1000_rows"] == 12
    shown = owned.cli("provider", "round-show", "r2", "--json")
    assert json.loads(shown.stdout)["inference_price_per_1000_rows"] == 12
    text = owned.cli("provider", "round-show", "r2")
    assert "inference price 12 tokens per 1,000 rows" in text.stdout
    _one_error_line(owned.cli("provider", "open-round", "--key", str(owned.key_files["sponsor"]),
                              "--round-id", "r3", "--pool", "10", "--validation-dataset", "val-1",
                              "--dataset", "a-1", "--dataset", "b-1", "--dataset", "c-1",
                              "--inference-price", "-1"), 2, "--inference-price")


def test_forged_and_replayed_owner_requests_are_refused_over_grpc(owned: Owned) -> None:
    """The Market API itself (a client in this process, TLS on loopback): a signature
    that is not the named owner's, and a transfer sent twice, write nothing."""
    from mutualmind.errors import PermissionDenied, RuleViolation
    from mutualmind.transport import channel_credentials, open_channel
    from mutualmind.transport.pki import COORDINATOR_NAME
    from mutualmind.vocabulary.signed_requests import (
        new_price_proposal,
        sign_price_proposal,
        signed_units_transfer,
    )
    from provider.client import market_call, submit_price_change

    channel = open_channel(f"127.0.0.1:{owned.coordinator.public_port}",
                           channel_credentials(owned.certs, None), server_name=COORDINATOR_NAME)
    try:
        size = owned.ledger.size
        # hospital-b signs in hospital-a's name: the ledger checks a's registered key
        forged = sign_price_proposal(owned.keys["hospital-b"], "hospital-a", new_price_proposal("r1", 3))
        with pytest.raises(PermissionDenied):
            submit_price_change(channel, forged)
        request = signed_units_transfer(owned.keys["hospital-a"], "hospital-a", "r1", "sponsor", 10)
        assert market_call(channel, "TransferUnits", request).units_left == 714_990
        with pytest.raises(RuleViolation, match="nonce"):
            market_call(channel, "TransferUnits", request)
        assert owned.ledger.size == size + 1
        assert owned.ledger.state.ownership.model("r1").price_per_1000_rows == PRICE  # type: ignore[union-attr]
    finally:
        channel.close()
