"""A settled round whose model is owned, and the signed requests its owners and users make.

`OwnedMarket` extends the ledger workload's `Market` (real keys, real signatures) with
the ownership kinds; `settle_owned_round` writes a round from opening to its units issue
through the coordinator's own functions (`coordinator.payouts.settle`,
`coordinator.ownership.units_issued_request`) in one group commit, as `Rounds._settle` does.
"""

from __future__ import annotations

import time
from typing import Any

from coordinator.ownership import round_earnings, units_issued_request
from coordinator.payouts import Participant, settle
from ledger import Ledger
from ledger.workload import Market, Request
from mutualmind.vocabulary.ownership import (
    delivery_message,
    order_payload,
    price_change_payload,
    price_proposal_message,
    units_transfer_payload,
)

PRICE = 7  # tokens per 1,000 rows, signed by the sponsor at open


class OwnedMarket(Market):
    """`Market` plus the requests of a mutually owned model."""

    def open_priced_round(self, round_id: str, sponsor: str, pool: int, validation: str,
                          datasets: list[str], price: int | None = PRICE) -> Request:
        payload = {"round_id": round_id, "sponsor": sponsor, "pool": pool,
                   "model_spec": {"kind": "logistic", "epochs": 3}, "validation_dataset": validation,
                   "datasets": datasets, "slash_rate_ppm": 100_000, "epsilon_micro": 1000,
                   "nonce": self.nonce()}
        if price is not None:
            payload["inference_price_per_1000_rows"] = price
        self.rounds.setdefault(round_id, payload)
        return self.signed("round_opened", payload, sponsor)

    def units_transfer(self, model_id: str, sender: str, to: str, units: int,
                       nonce: str | None = None) -> Request:
        return self.signed("model_units_transferred", units_transfer_payload(
            model_id, sender, to, units, nonce or self.nonce()), sender)

    def order(self, order_id: str, model_id: str, user: str, rows: int, fee: int | None = None,
              price: int = PRICE, nonce: str | None = None, issued_at_ms: int | None = None) -> Request:
        payload = order_payload(order_id, model_id, user, rows, price,
                                time.time_ns() // 1_000_000 if issued_at_ms is None else issued_at_ms,
                                nonce or self.nonce())
        if fee is not None:
            payload["fee"] = fee
        return self.signed("inference_ordered", payload, user)

    def delivery(self, order_id: str, model_id: str, user: str, rows: int,
                 node_keys: list[Any] | None = None, indexes: list[int] | None = None) -> Request:
        keys = self.node_keys if node_keys is None else node_keys
        message = delivery_message(order_id, model_id, user, rows)
        nodes = list(range(len(keys))) if indexes is None else indexes
        attestations = [{"node_index": i, "signature": key.sign(message).hex()} for i, key in zip(nodes, keys)]
        return "inference_delivered", {"order_id": order_id, "model_id": model_id, "user": user,
                                       "rows": rows, "attestations": attestations}, None

    def price_change(self, model_id: str, price: int, owners: list[str], nonce: str | None = None) -> Request:
        nonce = nonce or self.nonce()
        message = price_proposal_message(model_id, price, nonce)
        signatures = {o: self.provider_keys[o].sign(message) for o in owners}
        return "model_price_changed", price_change_payload(model_id, price, nonce, signatures), None


def settlement_requests(ledger: Ledger, market: Market, round_id: str, metrics: list[int],
                        with_units: bool = True) -> list[Request]:
    """result, slashes, payouts, round_closed (and the units issue) for an open round."""
    opened = market.rounds[round_id]
    state = ledger.state
    contributions = [metrics[0] - m for m in metrics[1:]]
    participants = [Participant(d, state.datasets[d]["provider_id"], state.stakes.get(d, 0), c)
                    for d, c in zip(opened["datasets"], contributions)]
    settlement = settle(participants, pool=opened["pool"], sponsor=opened["sponsor"],
                        slash_rate_ppm=opened["slash_rate_ppm"], epsilon_micro=opened["epsilon_micro"])
    batch: list[Request] = [market.round_result(round_id, metrics)]
    for dataset, amount in settlement.slashes.items():
        batch.append(("slash", {"round_id": round_id, "dataset_id": dataset,
                                "provider_id": state.datasets[dataset]["provider_id"], "amount": amount}, None))
    for party, amount in settlement.payouts.items():
        batch.append(("payout", {"round_id": round_id, "to": party, "amount": amount}, None))
    batch.append(("round_closed", {"round_id": round_id}, None))
    units = units_issued_request("round", round_id, round_earnings(settlement.payouts, opened["sponsor"]))
    if with_units and units is not None:
        batch.append(units)
    return batch


def owned_world(ledger: Ledger, market: OwnedMarket, price: int | None = PRICE) -> None:
    """2 nodes; alice (ds-a, ds-c) and bob (ds-b) earn in round r1 sponsored by carol;
    dave and erin are users with tokens; r1's model is issued to alice and bob."""
    ledger.append_many([market.register_node(0), market.register_node(1)])
    for name in ("alice", "bob", "carol", "dave", "erin"):
        ledger.append_many([market.register_provider(name), market.mint(name, 10_000)])
    ledger.append_many([
        market.register_dataset("ds-a", "alice"), market.stake("alice", "ds-a", 1000),
        market.register_dataset("ds-b", "bob"), market.stake("bob", "ds-b", 1000),
        market.register_dataset("ds-c", "alice"), market.stake("alice", "ds-c", 1000),
        market.register_dataset("val", "carol", "validation"),
        market.open_priced_round("r1", "carol", 3000, "val", ["ds-a", "ds-b", "ds-c"], price),
    ])
    ledger.append_many(settlement_requests(ledger, market, "r1", [900_000, 880_000, 890_000, 895_000]))
