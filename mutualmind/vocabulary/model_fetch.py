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
    # set: a closed tournament's frozen model (round_id names the tournament, sponsor_id
    # the modeler who submitted it); '' for a round's model
    model_id: str = ""


@dataclass(frozen=True)
class ReleasedShare:
    """A model share with the node's signed receipt (`receipt_json` holds `receipt_payload`)."""

    data: bytes
    receipt_json: bytes
    signature: bytes


def fetch_payload(round_id: str, sponsor_id: str, node_index: int, nonce: str,
                  issued_at: int, model_id: str = "") -> dict[str, Any]:
    """A tournament model's request also signs the model id (a round's has none, so its
    signed bytes are what they were before tournaments)."""
    payload: dict[str, Any] = {"round_id": round_id, "sponsor_id": sponsor_id, "node_index": node_index,
                               "nonce": nonce, "issued_at": issued_at}
    if model_id:
        payload["model_id"] = model_id
    return payload


def fetch_message(request: FetchRequest) -> bytes:
    """The bytes the sponsor signs; the kind keeps it from passing as any ledger request."""
    return request_message(KIND_MODEL_FETCH, fetch_payload(
        request.round_id, request.sponsor_id, request.node_index, request.nonce, request.issued_at,
        request.model_id))


def sign_fetch(key: Ed25519PrivateKey, round_id: str, sponsor_id: str, node_index: int,
               nonce: str, issued_at: int, model_id: str = "") -> FetchRequest:
    """A signed FetchRequest (the provider side builds one per node)."""
    unsigned = FetchRequest(round_id, sponsor_id, node_index, nonce, issued_at, b"", model_id)
    return FetchRequest(round_id, sponsor_id, node_index, nonce, issued_at,
                        sign(key, fetch_message(unsigned)), model_id)


def receipt_payload(*, round_id: str, job_digest: str, node_index: int, sponsor_id: str,
                    nonce: str, data: bytes, manifest: list[dict[str, Any]],
                    frozen: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a node states about a share it released (signed as canonical JSON). A
    tournament model's receipt adds `frozen` (`tournament_collect.frozen_facts`): the
    model id, this node's digest of its whole frozen share file and the public column
    exponents; its job_digest is the model's frozen commitment."""
    payload = {"kind": KIND_MODEL_RELEASE, "round_id": round_id, "job_digest": job_digest,
               "node_index": node_index, "sponsor_id": sponsor_id, "nonce": nonce,
               "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "manifest": manifest}
    if frozen is not None:
        payload["frozen"] = frozen
    return payload


def check_released_share(data: bytes, receipt_json: bytes, signature: bytes, node_public_key: bytes,
                         *, round_id: str, job_digest: str, node_index: int, sponsor_id: str,
                         nonce: str, model_id: str = "") -> list[dict[str, Any]]:
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
        frozen = receipt["frozen"] if model_id else None
    except (ValueError, KeyError, TypeError):
        raise IntegrityError(f"node {node_index} sent an unreadable receipt") from None
    if model_id and (not isinstance(frozen, dict) or frozen.get("model_id") != model_id):
        raise IntegrityError(f"node {node_index}'s receipt is not for model {model_id!r}; do not use its share")
    expected = receipt_payload(round_id=round_id, job_digest=job_digest, node_index=node_index,
                               sponsor_id=sponsor_id, nonce=nonce, data=data,
                               manifest=manifest if isinstance(manifest, list) else [], frozen=frozen)
    wrong = sorted(k for k in expected if receipt.get(k) != expected[k])
    if wrong or set(receipt) != set(expected):
        raise IntegrityError(
            f"node {node_index}'s receipt does not match what was asked and received "
            f"(differs in: {', '.join(wrong) or 'its fields'}); do not use its share")
    return list(manifest)
