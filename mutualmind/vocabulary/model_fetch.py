"""The sponsor's signed request for a node's model share, and the node's signed receipt.

The sponsor signs `request_message("model_share_fetch", payload)` on its own machine; the
node checks it, answers with the share and a receipt it signs; the sponsor checks that
receipt (`check_released_share`) before it uses a byte.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mutualmind.errors import IntegrityError
from mutualmind.vocabulary.payloads import request_message
from mutualmind.vocabulary.signing_keys import sign, verify_signature

KIND_MODEL_FETCH = "model_share_fetch"
KIND_MODEL_RELEASE = "model_share_release"
MAX_SKEW_S = 300


@dataclass(frozen=True)
class FetchRequest:
    """The sponsor's signed request for node `node_index`'s share of `round_id`'s model."""

    round_id: str
    sponsor_id: str
    node_index: int
    nonce: str
    issued_at: int
    signature: bytes


@dataclass(frozen=True)
class ReleasedShare:
    """A model share with the node's signed receipt (`receipt_json` holds `receipt_payload`)."""

    data: bytes
    receipt_json: bytes
    signature: bytes


def fetch_payload(round_id: str, sponsor_id: str, node_index: int, nonce: str,
                  issued_at: int) -> dict[str, Any]:
    return {"round_id": round_id, "sponsor_id": sponsor_id, "node_index": node_index,
            "nonce": nonce, "issued_at": issued_at}


def fetch_message(request: FetchRequest) -> bytes:
    """The bytes the sponsor signs; the kind keeps it from passing as any ledger request."""
    return request_message(KIND_MODEL_FETCH, fetch_payload(
        request.round_id, request.sponsor_id, request.node_index, request.nonce, request.issued_at))


def sign_fetch(key: Ed25519PrivateKey, round_id: str, sponsor_id: str, node_index: int,
               nonce: str, issued_at: int) -> FetchRequest:
    """A signed FetchRequest (the provider side builds one per node)."""
    unsigned = FetchRequest(round_id, sponsor_id, node_index, nonce, issued_at, b"")
    return FetchRequest(round_id, sponsor_id, node_index, nonce, issued_at,
                        sign(key, fetch_message(unsigned)))


def receipt_payload(*, round_id: str, job_digest: str, node_index: int, sponsor_id: str,
                    nonce: str, data: bytes, manifest: list[dict[str, Any]]) -> dict[str, Any]:
    """What a node states about a share it released (signed as canonical JSON)."""
    return {"kind": KIND_MODEL_RELEASE, "round_id": round_id, "job_digest": job_digest,
            "node_index": node_index, "sponsor_id": sponsor_id, "nonce": nonce,
            "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "manifest": manifest}


def check_released_share(data: bytes, receipt_json: bytes, signature: bytes, node_public_key: bytes,
                         *, round_id: str, job_digest: str, node_index: int, sponsor_id: str,
                         nonce: str) -> list[dict[str, Any]]:
    """The share's manifest once the node's receipt verified and matched the request.

    For the sponsor: the receipt must be signed by node `node_index`'s key (from the
    cluster manifest), answer this very request (round, digest, node, sponsor, nonce) and
    describe exactly these bytes. IntegrityError says which check failed.
    """
    if not verify_signature(node_public_key, receipt_json, signature):
        raise IntegrityError(f"node {node_index}'s receipt is not signed by node {node_index}'s key "
                             "from the cluster manifest; do not use its share")
    try:
        receipt = json.loads(receipt_json)
        manifest = receipt["manifest"]
    except (ValueError, KeyError, TypeError):
        raise IntegrityError(f"node {node_index} sent an unreadable receipt") from None
    expected = receipt_payload(round_id=round_id, job_digest=job_digest, node_index=node_index,
                               sponsor_id=sponsor_id, nonce=nonce, data=data,
                               manifest=manifest if isinstance(manifest, list) else [])
    wrong = sorted(k for k in expected if receipt.get(k) != expected[k])
    if wrong or set(receipt) != set(expected):
        raise IntegrityError(
            f"node {node_index}'s receipt does not match what was asked and received "
            f"(differs in: {', '.join(wrong) or 'its fields'}); do not use its share")
    return list(manifest)
