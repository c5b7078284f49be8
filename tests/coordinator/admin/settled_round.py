"""A closed round on a real ledger file, settled by the coordinator's own `Rounds` code.

Everything but the MPC job is real: a SQLite ledger, providers registered and datasets
registered with their own Ed25519 signatures, stakes, the sponsor's round_opened signed by
`mutualmind.vocabulary.round_open`, and `Rounds.run` checking attestations and writing
round_result, slashes, payouts and round_closed. In place of the nodes stands
`AttestingLink`, which implements the `ClusterLink` protocol by signing fixed revealed
metrics with each node's real key (as a node does at the end of a job) — so the round's
view (`coordinator.round_view.summarize`) is real ledger data for the report and table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from coordinator.cluster_link import JobOrder, NodeEndpoint, NodeJobReport
from coordinator.market import Market
from coordinator.market_servicer import round_view_proto
from coordinator.round_view import summarize
from coordinator.rounds import Rounds
from ledger import Ledger
from mutualmind.vocabulary.attestation import attestation_message
from mutualmind.vocabulary.dataset import TableSchema
from mutualmind.vocabulary.fixed_point import FRAC_BITS
from mutualmind.vocabulary.round_open import (
    RoundTerms,
    checked_model_spec,
    signed_open_round,
)
from mutualmind.vocabulary.signed_requests import (
    dataset_registration_payload,
    signed_dataset_registration,
    signed_register_provider,
    signed_stake,
)
from mutualmind.vocabulary.signing_keys import (
    generate_signing_key,
    public_key_bytes,
    sign,
)
from mutualmind.vocabulary.states import JobState
from proto import market_pb2

NODES = 3
SCHEMA = TableSchema(("x0", "x1", "label"), ("x0", "x1"), "label")
# log loss in millionths: full model, then without a-1, b-1, c-1
METRICS_MICRO = [300_000, 350_000, 320_000, 260_000]
EPSILON_MICRO = 1_000


class AttestingLink:
    """Nodes that finish every job at once, each signing METRICS_MICRO with its own key."""

    def __init__(self, keys: list[Any]) -> None:
        self._keys = keys
        self._orders: dict[str, JobOrder] = {}
        self.metrics_micro = list(METRICS_MICRO)   # what the next job reveals (a test may
        #                                            change it to make a re-run disagree)
        # copy counts the nodes sign (None: a node from before copy detection); a test may
        # give one node other counts (`copies_by_node`) to play a lying node
        self.copies: dict[str, list[int]] | None = None
        self.copies_by_node: dict[int, dict[str, list[int]]] = {}
        # the beacon the nodes sign (None: the order's, as a node does); the orders seen
        self.beacon: str | None = None
        self.orders: list[JobOrder] = []

    @property
    def nodes(self) -> tuple[NodeEndpoint, ...]:
        return tuple(NodeEndpoint(i, f"node{i}", "127.0.0.1:1", "127.0.0.1:2")
                     for i in range(len(self._keys)))

    def start_dealer(self, order: JobOrder) -> None:
        return None

    def stop_dealer(self, job_id: str) -> None:
        return None

    def start_job(self, node_index: int, order: JobOrder) -> None:
        self._orders[order.job_id] = order
        self.orders.append(order)

    def job_report(self, node_index: int, job_id: str) -> NodeJobReport:
        order = self._orders[job_id]
        body = attestation_message(order.round_id, order.job_digest, self.metrics_micro,
                                   self.copies_by_node.get(node_index, self.copies),
                                   order.beacon if self.beacon is None else self.beacon)
        return NodeJobReport(state=JobState.DONE, progress=1.0, attestation_payload=body,
                             attestation=sign(self._keys[node_index], body))

    def cancel_job(self, node_index: int, job_id: str) -> None:
        return None

    def node_health(self, node_index: int) -> str:
        return "SERVING"


def settled_round_view(folder: Path) -> market_pb2.RoundView:
    """Build the ledger, run and settle round "r1"; return its view as the Admin API does."""
    node_keys = [generate_signing_key() for _ in range(NODES)]
    ledger = Ledger.create(folder / "ledger.db", generate_signing_key(),
                           params={"nodes": NODES, "frac_bits": FRAC_BITS})
    try:
        ledger.append_many([("node_registered", {"node_index": i, "name": f"node{i}",
                                                 "signing_key": public_key_bytes(k).hex()}, None)
                            for i, k in enumerate(node_keys)])
        rounds = Rounds(ledger, AttestingLink(node_keys), folder / "rounds")
        settle_round(ledger, rounds)
        return round_view_proto(summarize(ledger, "r1", rounds.runtime("r1")))
    finally:
        ledger.close()


def attesting_rounds(folder: Path) -> tuple[Ledger, Rounds, AttestingLink]:
    """A fresh ledger with NODES registered nodes, and `Rounds` over an AttestingLink
    holding their keys (the caller closes the ledger)."""
    keys = [generate_signing_key() for _ in range(NODES)]
    ledger = Ledger.create(folder / "ledger.db", generate_signing_key(), params={"nodes": NODES, "frac_bits": FRAC_BITS})
    ledger.append_many([("node_registered", {"node_index": i, "name": f"node{i}", "signing_key": public_key_bytes(k).hex()},
                         None) for i, k in enumerate(keys)])
    link = AttestingLink(keys)
    return ledger, Rounds(ledger, link, folder / "rounds"), link


def settle_round(ledger: Ledger, rounds: Rounds, inference_price: int = 0) -> dict[str, Any]:
    """On a ledger with its nodes registered: providers with 1000 tokens each, datasets,
    stakes, and round "r1" opened by the sponsor (its model priced `inference_price` per
    1,000 rows, 0: none) and settled; returns the providers' keys."""
    keys = open_round_r1(ledger, rounds, inference_price)
    rounds.run("r1", deadline_s=30.0)
    return keys


def open_round_r1(ledger: Ledger, rounds: Rounds, inference_price: int = 0) -> dict[str, Any]:
    """`settle_round` up to the opening of round "r1" (not run); returns the keys."""
    market = Market(ledger, node_count=NODES)
    keys = {}
    for who in ("hospital-a", "hospital-b", "hospital-c", "sponsor"):
        keys[who] = generate_signing_key()
        req = signed_register_provider(keys[who], who)
        market.register_provider(who, who, req.public_key, req.nonce, req.signature)
        ledger.append("mint", {"to": who, "amount": 1_000, "memo": "test"})
    datasets = {"a-1": "hospital-a", "b-1": "hospital-b", "c-1": "hospital-c",
                "val-1": "sponsor"}
    for dataset_id, owner in datasets.items():
        reg = signed_dataset_registration(
            keys[owner], dataset_id=dataset_id, provider_id=owner, rows=40, cols=3,
            frac_bits=FRAC_BITS, schema=SCHEMA,
            share_commitments=[bytes([i]) * 32 for i in range(NODES)],
            purpose="validation" if dataset_id == "val-1" else "training")
        market.register_dataset(dataset_registration_payload(reg), reg.signature)
    for dataset_id, amount in (("a-1", 100), ("b-1", 200), ("c-1", 400)):
        owner = datasets[dataset_id]
        req = signed_stake(keys[owner], owner, dataset_id, amount)
        market.stake(owner, dataset_id, amount, req.auth.nonce, req.auth.signature)
    open_signed_round(rounds, keys, "r1", inference_price)
    return keys


def settle_another_round(rounds: Rounds, keys: dict[str, Any], round_id: str,
                         inference_price: int = 0) -> None:
    """After `settle_round`: open and settle `round_id` like "r1" on the same staked
    datasets (a second owned model, with the same holders)."""
    open_signed_round(rounds, keys, round_id, inference_price)
    rounds.run(round_id, deadline_s=30.0)


def open_signed_round(rounds: Rounds, keys: dict[str, Any], round_id: str, inference_price: int) -> None:
    """The sponsor's signed opening of `round_id` on a-1, b-1, c-1 (validation val-1)."""
    terms = RoundTerms(round_id=round_id, sponsor="sponsor", pool=300,
                       model_spec=checked_model_spec({"kind": "logistic", "lr": 0.5}),
                       validation_dataset="val-1", datasets=("a-1", "b-1", "c-1"),
                       slash_rate_ppm=250_000, epsilon_micro=EPSILON_MICRO,
                       inference_price_per_1000_rows=inference_price)
    request = signed_open_round(keys["sponsor"], terms)
    rounds.open_round(round_id=request.round_id, sponsor=request.auth.provider_id,
                      pool=request.pool, model_spec=json.loads(request.model_spec_json),
                      validation_dataset=request.validation_dataset,
                      datasets=list(request.datasets), slash_rate_ppm=request.slash_rate_ppm,
                      epsilon_micro=request.epsilon_micro, nonce=request.auth.nonce,
                      signature=bytes(request.auth.signature),
                      inference_price_per_1000_rows=request.inference_price_per_1000_rows)
