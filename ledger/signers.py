"""Who signs what: the one rule for the signatures an entry of each kind must carry.

Every entry is signed by the coordinator over its hash (checked where the hash is).
On top of that:
  * a kind whose `KindSpec.signer_field` names a party (provider_registered, transfer,
    dataset_registered, stake, unstake, round_opened) carries that party's Ed25519
    signature over `request_message(kind, payload)`; a provider_registered entry is
    signed by the key it registers, the others by the key the party registered;
  * every other kind carries no provider signature;
  * a round_result carries one attestation per node, each over
    `attestation_message(round_id, job_digest, metrics_micro[, copies][, beacon])` by that node's key;
    models_frozen and tournament_result likewise, over
    `mutualmind.vocabulary.tournament.attested_message`, and an inference_delivered over
    `ownership.delivery_message`;
  * a model_price_changed carries one signature per owner it names, each over
    `ownership.price_proposal_message` by that owner's registered key.

`check_signatures` applies this rule with whatever keys the caller knows. The ledger's
append turns a finding into a typed error, and the parallel verifier (`signature_check`)
into a `Failure`; both call it, so they cannot drift apart. It needs only plain bytes and
dicts, so verify's worker processes run it as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mutualmind.vocabulary.attestation import attestation_message
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.ownership import delivery_message, price_proposal_message
from mutualmind.vocabulary.payloads import KINDS, REQUEST_DOMAIN
from mutualmind.vocabulary.signing_keys import verify_raw
from mutualmind.vocabulary.states import EntryKind
from mutualmind.vocabulary.tournament import attested_message

PROVIDER_SIGNATURE = "provider signature"
NODE_ATTESTATION = "node attestation"

UNEXPECTED = "unexpected"          # a signature where the kind takes none
UNKNOWN_SIGNER = "unknown signer"  # the party or node has no registered key (a replay rule)
MISSING = "missing"                # the kind needs a signature and there is none
INVALID = "invalid"                # the signature does not verify with the party's key


@dataclass(frozen=True)
class SignatureFinding:
    """What is wrong with an entry's signatures: which check, why, whose, in words."""

    problem: str  # PROVIDER_SIGNATURE or NODE_ATTESTATION
    reason: str   # UNEXPECTED, UNKNOWN_SIGNER, MISSING or INVALID
    party: str
    message: str


def check_signatures(
    kind: str,
    payload: dict[str, Any],
    provider_signature: bytes | None,
    provider_keys: Mapping[str, bytes],
    node_keys: Mapping[int, bytes],
    *,
    payload_json: bytes | None = None,
) -> SignatureFinding | None:
    """The first thing wrong with the signatures `kind` requires of `payload`, or None.

    `payload_json`, when given, must be `canonical_json(payload)` (the stored bytes; it
    saves re-encoding). An unknown node is reported only if no attestation is invalid,
    so a forged attestation is named as such even next to an unregistered node.
    """
    spec = KINDS[kind]
    if spec.signer_field is None:
        if provider_signature is not None:
            return SignatureFinding(PROVIDER_SIGNATURE, UNEXPECTED, "",
                                    f"a {kind} entry carries no provider signature")
    else:
        signer = payload[spec.signer_field]
        key = (bytes.fromhex(payload["public_key"]) if kind == EntryKind.PROVIDER_REGISTERED
               else provider_keys.get(signer))
        if key is None:
            return SignatureFinding(PROVIDER_SIGNATURE, UNKNOWN_SIGNER, signer,
                                    f"{signer!r} is not a registered provider")
        if not provider_signature:
            return SignatureFinding(PROVIDER_SIGNATURE, MISSING, signer,
                                    f"a {kind} entry needs the signature of {signer!r}")
        body = canonical_json(payload) if payload_json is None else payload_json
        message = REQUEST_DOMAIN + kind.encode("utf-8") + b"\n" + body
        if not verify_raw(key, message, bytes(provider_signature)):
            return SignatureFinding(PROVIDER_SIGNATURE, INVALID, signer,
                                    f"the signature on this {kind} does not verify with {signer!r}'s key")
    if kind == EntryKind.ROUND_RESULT:
        return _check_attestations(payload, node_keys, attestation_message(
            payload["round_id"], payload["job_digest"], payload["metrics_micro"], payload.get("copies"),
            payload.get("beacon")))
    attested = attested_message(kind, payload)  # a tournament's freeze or result
    if attested is not None:
        return _check_attestations(payload, node_keys, attested)
    if kind == EntryKind.INFERENCE_DELIVERED:
        return _check_attestations(payload, node_keys, delivery_message(
            payload["order_id"], payload["model_id"], payload["user"], payload["rows"]))
    if kind == EntryKind.MODEL_PRICE_CHANGED:
        return _check_owner_signatures(payload, provider_keys)
    return None


def _check_owner_signatures(payload: dict[str, Any], provider_keys: Mapping[str, bytes]) -> SignatureFinding | None:
    message = price_proposal_message(payload["model_id"], payload["price_per_1000_rows"], payload["nonce"])
    for item in payload["signatures"]:
        owner, key = item["owner"], provider_keys.get(item["owner"])
        if key is None:
            return SignatureFinding(PROVIDER_SIGNATURE, UNKNOWN_SIGNER, owner,
                                    f"{owner!r} is not a registered provider")
        if not verify_raw(key, message, bytes.fromhex(item["signature"])):
            return SignatureFinding(PROVIDER_SIGNATURE, INVALID, owner,
                                    f"{owner!r}'s signature does not verify over this price proposal")
    return None


def _check_attestations(payload: dict[str, Any], node_keys: Mapping[int, bytes],
                        message: bytes) -> SignatureFinding | None:
    unknown: SignatureFinding | None = None
    for attestation in payload["attestations"]:
        node = attestation["node_index"]
        key = node_keys.get(node)
        if key is None:
            unknown = unknown or SignatureFinding(NODE_ATTESTATION, UNKNOWN_SIGNER, str(node),
                                                  f"node {node} is not registered")
            continue
        if not verify_raw(key, message, bytes.fromhex(attestation["signature"])):
            return SignatureFinding(NODE_ATTESTATION, INVALID, str(node),
                                    f"node {node}'s attestation does not verify over this result")
    return unknown
