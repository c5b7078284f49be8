"""The user's wire call for private inference: one node's share of an order's predictions.

The logic (share, order, wait, reconstruct) is `provider.predict`; this module only asks
a node with a freshly signed request and checks its signed receipt.
"""

from __future__ import annotations

import time

import grpc
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mutualmind.transport import typed_rpc_errors
from mutualmind.vocabulary.inference import check_prediction_share, sign_prediction_fetch
from mutualmind.vocabulary.signed_requests import new_nonce
from proto import node_pb2, node_pb2_grpc
from provider.client import naming_node, receive_signed_share

MAX_PREDICTION_BYTES = 1 << 30


def fetch_prediction_share(channel: grpc.Channel, key: Ed25519PrivateKey, user_id: str, order_id: str,
                           model_id: str, node_index: int, *, node_public_key: bytes,
                           timeout_s: float = 60.0) -> np.ndarray:
    """Node `node_index`'s share of the order's outputs (int64 [rows, outputs]), its
    receipt checked against the request, the node's key and the bytes."""
    request = sign_prediction_fetch(key, order_id, user_id, node_index, new_nonce(), int(time.time()))
    stub = node_pb2_grpc.ShareIntakeStub(channel)
    with naming_node(node_index), typed_rpc_errors():
        stream = stub.FetchPredictionShare(node_pb2.FetchPredictionShareRequest(
            order_id=order_id, user_id=user_id, node_index=node_index, nonce=request.nonce,
            issued_at=request.issued_at, signature=request.signature), timeout=timeout_s)
        receipt, signature, data = receive_signed_share(stream, node_index, MAX_PREDICTION_BYTES,
                                                        "prediction share")
    shape = check_prediction_share(data, receipt, signature, node_public_key, order_id=order_id,
                                   model_id=model_id, node_index=node_index, user_id=user_id,
                                   nonce=request.nonce)
    return np.frombuffer(data, dtype="<i8").reshape(shape).copy()
