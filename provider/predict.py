"""A user buys predictions of a mutually owned model without showing anyone its rows.

On the user's own machine: the query rows are checked, scaled and split into additive
shares exactly like a provider's dataset (`provider.sharing`), registered with purpose
`inference` under a fresh order id and uploaded to every node. The user then signs an
order (the fee is held on the ledger), waits while the nodes evaluate the model on the
shares, fetches every node's share of the outputs with a freshly signed request (each
node's receipt checked against its key), and adds them up. The nodes' delivery
signatures settle the fee; a failed job refunds it. Nothing here is a gRPC server.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mutualmind.errors import Aborted, DeadlineExceeded, InvalidInput, RuleViolation
from mutualmind.vocabulary.dataset import INFERENCE, TableSchema
from mutualmind.vocabulary.inference import PREDICTIONS
from mutualmind.vocabulary.model_file import reconstruct as add_shares
from mutualmind.vocabulary.model_spec import ModelSpec, parse_model_spec
from mutualmind.vocabulary.ownership import inference_fee
from mutualmind.vocabulary.signed_requests import signed_inference_order
from proto import market_pb2
from provider.client import (
    Channel,
    MarketClient,
    get_model,
    market_call,
    on_every_node,
    upload_shares,
)
from provider.inference_client import fetch_prediction_share
from provider.sharing import SharedTable, Table, share_table, validate_table

# the user watches its order this long (the job's deadline plus the share uploads)
ORDER_WAIT_S = 600.0
POLL_S = 0.05   # a warm one-row order is ready in under a second
Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class Predictions:
    """The reconstructed outputs [rows, outputs] and what the order cost."""

    order_id: str
    model_id: str
    spec: ModelSpec
    outputs: np.ndarray
    fee: int
    stats: dict[str, Any]
    # a tournament's metamodel answers a probability of the positive class, not a logit
    probabilities: bool = False

    def labels(self) -> np.ndarray:
        """Class labels (a classifier) or values (regression), as `model_file.predict`."""
        if self.spec.task == "binary":
            return (self.outputs[:, 0] > (0.5 if self.probabilities else 0)).astype(np.float64)
        if self.spec.task == "multiclass":
            return self.outputs.argmax(axis=1).astype(np.float64)
        return self.outputs[:, 0]


@dataclass(frozen=True)
class ModelForSale:
    model_id: str
    price_per_1000_rows: int
    spec: ModelSpec
    features: TableSchema
    # per feature column: the largest power-of-two exponent of the round's datasets, as
    # the nodes trained (public: the providers signed them in their registrations)
    exponents: tuple[int, ...]
    probabilities: bool = False   # a tournament's metamodel: one probability per row


def _columns(market: Channel, datasets: Sequence[str]) -> tuple[TableSchema, tuple[int, ...]]:
    """The first dataset's feature columns and, per column, the largest exponent of all."""
    registrations = [market_call(market, "GetDataset", market_pb2.GetDatasetRequest(dataset_id=d)).registration
                     for d in datasets]
    columns = tuple(registrations[0].schema.feature_columns)
    exponents = tuple(
        max(r.column_exponents[list(r.schema.columns).index(c)] if r.column_exponents else 0
            for r in registrations)
        for c in columns)
    return TableSchema(columns, columns, ""), exponents


def _metamodel_for_sale(market: Channel, model_id: str, price: int, tournament_id: str) -> ModelForSale:
    """A closed tournament's metamodel: the resolution dataset's feature columns (the
    eligible datasets share its schema), exponents at least those of every eligible
    dataset (so the nodes align the rows exactly), a binary task answered as probabilities."""
    view = market_call(market, "GetTournament", market_pb2.GetTournamentRequest(tournament_id=tournament_id))
    summary = json.loads(view.view_json)
    features, exponents = _columns(market, [summary["resolution_dataset"], *summary["datasets"]])
    return ModelForSale(model_id, price, parse_model_spec({"kind": "logistic", "metric": summary["task"]["metric"]}),
                        features, exponents, probabilities=True)


def model_for_sale(market: Channel, model_id: str) -> ModelForSale:
    """The model's price, spec and feature columns (what the query rows must hold)."""
    model = get_model(market, model_id)
    if model.price_per_1000_rows <= 0:
        raise InvalidInput(f"model {model_id!r} is not for sale: its owners have set no price")
    if model.source_kind == "tournament":
        return _metamodel_for_sale(market, model_id, model.price_per_1000_rows, model.source_id)
    view = market_call(market, "GetRound", market_pb2.GetRoundRequest(round_id=model.source_id))
    features, exponents = _columns(market, [view.validation_dataset, *(p.dataset_id for p in view.participants)])
    return ModelForSale(model.model_id, model.price_per_1000_rows, parse_model_spec(view.model_spec_json),
                        features, exponents)


def predict(market: Channel, node_channels: Sequence[Channel], key: Ed25519PrivateKey,
            user_id: str, model_id: str, table: Table, node_public_keys: Sequence[bytes],
            progress: Progress = lambda stage, fraction: None) -> Predictions:
    """Share `table` (the model's feature columns), order, wait, fetch, reconstruct."""
    model = model_for_sale(market, model_id)
    progress("sharing", 0.0)
    order_id, shared = register_queries(market, key, user_id, model, table, len(node_channels))
    upload_shares(node_channels, order_id, shared, node_public_keys=node_public_keys)
    progress("ordering", 0.1)
    place_order(market, key, user_id, model, order_id, table.rows)
    view = wait_for(market, order_id, ("ready", "failed", "delivered"),
                    lambda v: progress("computing", 0.1 + 0.8 * v.progress))
    if view.state == "failed":
        raise Aborted(f"order {order_id} failed: {view.message}")
    progress("fetching", 0.9)

    def one(i: int) -> np.ndarray:
        return fetch_prediction_share(node_channels[i], key, user_id, order_id, model_id, i,
                                      node_public_key=node_public_keys[i])

    outputs = reconstruct(on_every_node(len(node_channels), one, name="predictions"))
    progress("done", 1.0)
    return Predictions(order_id, model_id, model.spec, outputs, view.fee, json.loads(view.stats_json or "{}"),
                       probabilities=model.probabilities)


def register_queries(market: Channel, key: Ed25519PrivateKey, user_id: str, model: ModelForSale,
                     table: Table, nodes: int) -> tuple[str, SharedTable]:
    """Check and share the query rows under a fresh order id (purpose inference) and
    register them; the caller uploads share i to node i."""
    validate_table(table, expected_schema=model.features)
    client = MarketClient(market, key, user_id)
    fee = inference_fee(model.price_per_1000_rows, table.rows)
    balance = client.balance().balance
    if balance < fee:   # refused before any share is registered or stored
        raise RuleViolation("insufficient_balance", f"{table.rows} rows of model {model.model_id!r} "
                            f"cost {fee} tokens and {user_id!r} holds {balance}")
    order_id = f"q-{secrets.token_hex(12)}"
    shared = share_table(table, nodes, label_classes=0, at_least=model.exponents)
    client.register_dataset(order_id, shared, purpose=INFERENCE)
    return order_id, shared


def place_order(market: Channel, key: Ed25519PrivateKey, user_id: str, model: ModelForSale,
                order_id: str, rows: int) -> market_pb2.InferenceOrderView:
    """Sign and place the order: the fee is held and the nodes start on the shares."""
    return market_call(market, "OrderInference", signed_inference_order(
        key, user_id, order_id, model.model_id, rows, model.price_per_1000_rows, int(time.time() * 1000)))


def reconstruct(shares: Sequence[np.ndarray]) -> np.ndarray:
    """Add every node's share (mod 2^64) and decode the fixed point."""
    return add_shares([{PREDICTIONS: share} for share in shares])[PREDICTIONS]


def wait_for(market: Channel, order_id: str, states: tuple[str, ...],
             on_view: Callable[[market_pb2.InferenceOrderView], None] = lambda view: None,
             timeout_s: float = ORDER_WAIT_S) -> market_pb2.InferenceOrderView:
    """The order's view once its state is one of `states` (DeadlineExceeded otherwise)."""
    deadline = time.monotonic() + timeout_s
    while True:
        view = market_call(market, "GetInferenceOrder", market_pb2.GetInferenceOrderRequest(order_id=order_id))
        on_view(view)
        if view.state in states:
            return view
        if time.monotonic() > deadline:
            raise DeadlineExceeded(f"order {order_id} is still {view.state} after {timeout_s:.0f} s")
        time.sleep(POLL_S)
