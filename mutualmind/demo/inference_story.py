"""The demo after its round: a user buys predictions, the model's owners get dividends.

The user is a fresh registered key with minted tokens; it buys predictions on a few
held-out rows with the client `mutualmind user predict` runs (`provider.predict`): the
rows are secret-shared on "its machine", the nodes evaluate the model in MPC and only the
user adds the prediction shares up. The demo, which also plays the sponsor, checks them
against the collected model's plaintext outputs, then asks for the dividend (Market
PayDividend: anyone may, the fees go only to the holders) and reads each owner's units.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mutualmind.demo.session import MarketSession, Say
from mutualmind.vocabulary.dataset import TableSchema
from provider.sharing import Table

USER = "user"
USER_MINT = 1_000
QUERY_ROWS = 5
# fixed point: 2^-16 per value and a few truncations through the model (the same bound
# the inference tests hold `mutualmind user predict` to)
LOGIT_TOLERANCE = 0.01
DELIVERY_WAIT_S = 60.0


def query_table(rows: Table, count: int = QUERY_ROWS) -> Table:
    """The first `count` rows of a labelled table, feature columns only (what a user holds)."""
    schema = rows.schema
    columns = [list(schema.columns).index(c) for c in schema.feature_columns]
    features = tuple(schema.feature_columns)
    return Table(np.ascontiguousarray(rows.values[:count][:, columns]), TableSchema(features, features, ""))


def predictions_match(outputs: np.ndarray, reference: np.ndarray) -> bool:
    """Whether the MPC outputs equal the plaintext logits within fixed-point tolerance."""
    return outputs.shape == reference.shape and bool(np.max(np.abs(outputs - reference)) < LOGIT_TOLERANCE)


def run_inference(session: MarketSession, model_id: str, collected: Any, queries: Table, *,
                  say: Say, user: str = USER) -> dict[str, Any]:
    """Buy predictions on `queries` from `model_id`, check them against `collected` (the
    sponsor's reconstructed model), pay the dividend; the demo's `inference` object."""
    from mutualmind.vocabulary.model_file import predict_logits
    from provider.client import get_model, pay_dividend
    from provider.predict import predict, wait_for

    buyer = session.enrol(user, mint=USER_MINT)
    result = predict(session.market_channel, session.node_channels, buyer.key, buyer.provider_id,
                     model_id, queries, session.node_keys)
    match = predictions_match(result.outputs, predict_logits(collected.tensors, collected.spec, queries.values))
    say(f"{user}: bought predictions on {queries.rows} held-out rows for {result.fee} tokens; "
        f"they {'match' if match else 'DO NOT match'} the collected model's plaintext predictions")
    # the fee reaches the model's account when the nodes' delivery signatures are in
    delivered = wait_for(session.market_channel, result.order_id, ("delivered", "failed"),
                         timeout_s=DELIVERY_WAIT_S)
    paid: dict[str, int] = {}
    if delivered.state == "delivered":
        reply = pay_dividend(session.market_channel, model_id)
        paid = {p.account: p.amount for p in reply.payments}
        say(f"dividend: {reply.amount} tokens of fees paid to {len(paid)} owners of {model_id}")
    holders = get_model(session.market_channel, model_id).holders
    owners = [{"name": h.account, "units": h.units, "dividend": paid.get(h.account, 0)}
              for h in sorted(holders, key=lambda h: (-h.units, h.account))]
    return {"rows": queries.rows, "fee": result.fee, "predictions_match": match, "owners": owners}
