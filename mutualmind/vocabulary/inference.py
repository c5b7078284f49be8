"""Private inference as every role names it: the job's digest, the user's signed request
for a node's prediction share, and the node's signed receipt (issue 16).

An order's query rows are a dataset of purpose `inference` whose id is the order id; its
registered provider is the paying user, the only account a node hands prediction shares
to. The user signs `request_message("prediction_share_fetch", payload)` on its own
machine with a fresh nonce; the node answers with its share of the predictions and a
receipt it signs; the user checks every receipt (`check_prediction_share`) before it adds
the shares up. Pure Python: no gRPC, no torch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mutualmind.errors import IntegrityError
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.payloads import request_message
from mutualmind.vocabulary.signing_keys import sign, verify_signature

KIND_PREDICTION_FETCH = "prediction_share_fetch"
KIND_PREDICTION_RELEASE = "prediction_share_release"
INFERENCE_JOB = "inference"
TRAINING_JOB = "training"
JOB_KINDS = (TRAINING_JOB, INFERENCE_JOB)
# how long a finished order's prediction shares wait for their user: the coordinator
# refunds an order not collected from every node by then, and a node deletes what is left
DELIVERY_WINDOW_S = 600.0
# the one tensor of a prediction share: the model's outputs (logits, or the de-standardised
# value of a regression) [rows, outputs], fixed point with 16 fractional bits
PREDICTIONS = "predictions"


def inference_job_digest(order_id: str, model_id: str, model_job_digest: str,
                         query_commitments: list[str]) -> str:
    """What an inference job computes, as every node can rebuild it: this order's query
    shares (their commitments) through the model of this accepted training job."""
    body = {"kind": INFERENCE_JOB, "order_id": order_id, "model_id": model_id,
            "model_job_digest": model_job_digest, "query_commitments": list(query_commitments)}
    return hashlib.sha256(canonical_json(body)).hexdigest()


@dataclass(frozen=True)
class PredictionRequest:
    """The user's signed request for node `node_index`'s share of order `order_id`'s predictions."""

    order_id: str
    user_id: str
    node_index: int
    nonce: str
    issued_at: int
    signature: bytes


@dataclass(frozen=True)
class ReleasedPredictions:
    """A prediction share with the node's signed receipt (`receipt_json`)."""

    data: bytes
    receipt_json: bytes
    signature: bytes


def prediction_fetch_message(request: PredictionRequest) -> bytes:
    """The bytes the user signs; the kind keeps it from passing as any other request."""
    return request_message(KIND_PREDICTION_FETCH, {
        "order_id": request.order_id, "user_id": request.user_id, "node_index": request.node_index,
        "nonce": request.nonce, "issued_at": request.issued_at})


def sign_prediction_fetch(key: Ed25519PrivateKey, order_id: str, user_id: str, node_index: int,
                          nonce: str, issued_at: int) -> PredictionRequest:
    unsigned = PredictionRequest(order_id, user_id, node_index, nonce, issued_at, b"")
    return PredictionRequest(order_id, user_id, node_index, nonce, issued_at,
                             sign(key, prediction_fetch_message(unsigned)))


def prediction_receipt(*, order_id: str, model_id: str, node_index: int, user_id: str, nonce: str,
                       data: bytes, shape: list[int]) -> dict[str, Any]:
    """What a node states about a prediction share it released (signed as canonical JSON)."""
    return {"kind": KIND_PREDICTION_RELEASE, "order_id": order_id, "model_id": model_id,
            "node_index": node_index, "user_id": user_id, "nonce": nonce, "shape": list(shape),
            "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def check_prediction_share(data: bytes, receipt_json: bytes, signature: bytes, node_public_key: bytes,
                           *, order_id: str, model_id: str, node_index: int, user_id: str,
                           nonce: str) -> list[int]:
    """The share's shape once the node's receipt verified and matched this very request."""
    if not verify_signature(node_public_key, receipt_json, signature):
        raise IntegrityError(f"node {node_index}'s receipt is not signed by node {node_index}'s key "
                             "from the cluster manifest; do not use its predictions")
    try:
        receipt = json.loads(receipt_json)
        shape = [int(d) for d in receipt["shape"]]
    except (ValueError, KeyError, TypeError):
        raise IntegrityError(f"node {node_index} sent an unreadable receipt") from None
    expected = prediction_receipt(order_id=order_id, model_id=model_id, node_index=node_index,
                                  user_id=user_id, nonce=nonce, data=data, shape=shape)
    wrong = sorted(k for k in expected if receipt.get(k) != expected[k])
    if wrong or set(receipt) != set(expected):
        raise IntegrityError(f"node {node_index}'s receipt does not match what was asked and "
                             f"received (differs in: {', '.join(wrong) or 'its fields'}); do not "
                             "use its predictions")
    if len(shape) != 2 or shape[0] * shape[1] * 8 != len(data):
        raise IntegrityError(f"node {node_index}'s prediction share has {len(data)} bytes, not "
                             f"a [rows, outputs] int64 table of shape {shape}")
    return shape
