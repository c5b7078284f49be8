"""The requests a provider signs, in one place, so signer and verifiers agree byte for byte.

A provider signs on its own machine; the ledger (when the coordinator appends the entry)
and each node (before accepting a share) verify the same bytes:
`ledger.entries.request_message(kind, payload)`, where the payload is exactly the ledger
entry's payload for that kind (provider_registered, dataset_registered, stake, unstake)
and carries a fresh nonce. The kind is bound into the message, so a signature for one
request can never be replayed as another kind. Signatures are Ed25519 (`mutualmind.vocabulary.signing_keys`).

A provider's id is the name it registers under (the coordinator's Market.RegisterProvider
records `provider_id = name`); the registration entry is signed by the key it registers.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mutualmind.errors import InvalidInput, PermissionDenied
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.column_scale import check_exponents, check_label_classes
from mutualmind.vocabulary.dataset import PURPOSES, TableSchema, validate_dataset_id
from mutualmind.vocabulary.ownership import (
    order_payload,
    price_change_payload,
    price_proposal_message,
    units_transfer_payload,
)
from mutualmind.vocabulary.payloads import (
    check_payload_size,
    request_message,
    validate_payload,
)
from mutualmind.vocabulary.signing_keys import public_key_bytes, sign, verify_signature
from mutualmind.vocabulary.states import EntryKind
from proto import common_pb2, market_pb2

KIND_REGISTER_PROVIDER = EntryKind.PROVIDER_REGISTERED
KIND_DATASET_REGISTRATION = EntryKind.DATASET_REGISTERED
KIND_STAKE = EntryKind.STAKE
KIND_UNSTAKE = EntryKind.UNSTAKE
KIND_TERMS_UPDATE = EntryKind.DATASET_TERMS_UPDATED
KIND_ABORT_ROUND = EntryKind.ROUND_ABORT_REQUESTED


def new_nonce() -> str:
    """A fresh 128-bit nonce from `secrets`, hex."""
    return secrets.token_hex(16)


# ---- provider registration ---------------------------------------------------------

def register_provider_payload(name: str, public_key: bytes, nonce: str) -> dict[str, Any]:
    """The `provider_registered` ledger payload; the provider id is the name."""
    return {"provider_id": name, "name": name, "public_key": public_key.hex(), "nonce": nonce}


def signed_register_provider(key: Ed25519PrivateKey, name: str) -> market_pb2.RegisterProviderRequest:
    """A self-signed RegisterProvider request: proves the caller holds the key."""
    public = public_key_bytes(key)
    nonce = new_nonce()
    payload = register_provider_payload(name, public, nonce)
    validate_payload(KIND_REGISTER_PROVIDER, payload)
    signature = sign(key, request_message(KIND_REGISTER_PROVIDER, payload))
    return market_pb2.RegisterProviderRequest(name=name, public_key=public, nonce=nonce, signature=signature)


def verify_register_provider(request: market_pb2.RegisterProviderRequest) -> None:
    """PermissionDenied unless the request is signed by the key it registers."""
    message = request_message(
        KIND_REGISTER_PROVIDER, register_provider_payload(request.name, request.public_key, request.nonce)
    )
    if not verify_signature(request.public_key, message, request.signature):
        raise PermissionDenied("provider registration is not signed by the key it registers")


# ---- dataset registration ------------------------------------------------------------

def schema_to_proto(schema: TableSchema) -> common_pb2.ColumnSchema:
    return common_pb2.ColumnSchema(
        columns=list(schema.columns),
        feature_columns=list(schema.feature_columns),
        label_column=schema.label_column,
    )


def schema_from_proto(message: common_pb2.ColumnSchema) -> TableSchema:
    return TableSchema(tuple(message.columns), tuple(message.feature_columns), message.label_column)


def terms_from_json(text: str) -> dict[str, Any]:
    """A terms object sent as JSON text (InvalidInput if it is not a JSON object)."""
    try:
        terms = json.loads(text)
    except ValueError:
        raise InvalidInput("terms_json is not valid JSON; send the terms as a JSON object") from None
    if not isinstance(terms, dict):
        raise InvalidInput("terms_json must be a JSON object of the dataset's terms")
    return terms


def dataset_registration_payload(reg: common_pb2.DatasetRegistration) -> dict[str, Any]:
    """The `dataset_registered` ledger payload: every registration field but the signature
    (the terms only when the registration carries them).

    The one builder: the provider signs these bytes, the coordinator appends this payload,
    a node verifies against it and recomputes the job digest from it.
    """
    payload = {
        "dataset_id": reg.dataset_id,
        "provider_id": reg.provider_id,
        "rows": reg.rows,
        "cols": reg.cols,
        "frac_bits": reg.frac_bits,
        "schema": {
            "columns": list(reg.schema.columns),
            "feature_columns": list(reg.schema.feature_columns),
            "label_column": reg.schema.label_column,
        },
        "share_commitments": [bytes(c).hex() for c in reg.share_commitments],
        "purpose": reg.purpose,
        "column_exponents": list(reg.column_exponents),
        "label_classes": reg.label_classes,
        "nonce": reg.nonce,
    }
    if reg.terms_json:
        payload["terms"] = terms_from_json(reg.terms_json)
    return payload


def dataset_registration_proto(payload: dict[str, Any], signature: bytes) -> common_pb2.DatasetRegistration:
    """The inverse of `dataset_registration_payload`: a ledger payload and its signature as a message."""
    schema = payload["schema"]
    return common_pb2.DatasetRegistration(
        dataset_id=payload["dataset_id"], provider_id=payload["provider_id"],
        rows=payload["rows"], cols=payload["cols"], frac_bits=payload["frac_bits"],
        schema=common_pb2.ColumnSchema(columns=schema["columns"],
                                       feature_columns=schema["feature_columns"],
                                       label_column=schema["label_column"]),
        share_commitments=[bytes.fromhex(c) for c in payload["share_commitments"]],
        nonce=payload["nonce"], signature=signature, purpose=payload["purpose"],
        column_exponents=payload["column_exponents"], label_classes=payload["label_classes"],
        terms_json=canonical_json(payload["terms"]).decode() if "terms" in payload else "")


def signed_dataset_registration(
    key: Ed25519PrivateKey,
    *,
    dataset_id: str,
    provider_id: str,
    rows: int,
    cols: int,
    frac_bits: int,
    schema: TableSchema,
    share_commitments: list[bytes],
    purpose: str = "training",
    column_exponents: Sequence[int] | None = None,
    label_classes: int = 2,
    terms: dict[str, Any] | None = None,
) -> common_pb2.DatasetRegistration:
    """Build and sign a DatasetRegistration (checked first, so nothing malformed is signed).

    `column_exponents` (default: 0 for every column, i.e. shared unscaled) and
    `label_classes` are the public numeric facts of `column_scale`; `terms` (a
    `DatasetTerms.to_payload()`) are signed with the rest."""
    reg = common_pb2.DatasetRegistration(
        dataset_id=dataset_id,
        provider_id=provider_id,
        rows=rows,
        cols=cols,
        frac_bits=frac_bits,
        schema=schema_to_proto(schema),
        share_commitments=share_commitments,
        nonce=new_nonce(),
        purpose=purpose,
        column_exponents=list(column_exponents) if column_exponents is not None else [0] * cols,
        label_classes=label_classes,
        terms_json=canonical_json(terms).decode() if terms is not None else "",
    )
    check_dataset_registration(reg)
    reg.signature = sign(key, request_message(KIND_DATASET_REGISTRATION, dataset_registration_payload(reg)))
    return reg


def check_dataset_registration(reg: common_pb2.DatasetRegistration) -> None:
    """InvalidInput unless the registration is well formed (before any signature check):
    the ledger's payload rules plus a path-safe dataset id and a consistent schema."""
    payload = dataset_registration_payload(reg)
    validate_payload(KIND_DATASET_REGISTRATION, payload)
    check_payload_size(KIND_DATASET_REGISTRATION, canonical_json(payload))
    validate_dataset_id(reg.dataset_id)
    if not reg.provider_id:
        raise InvalidInput("dataset registration names no provider id")
    if reg.rows < 1 or reg.cols < 1:
        raise InvalidInput(f"dataset shape [{reg.rows}, {reg.cols}] needs at least one row and column")
    schema = schema_from_proto(reg.schema)
    if len(schema.columns) != reg.cols:
        raise InvalidInput(f"schema names {len(schema.columns)} columns, the dataset has {reg.cols}")
    if len(reg.share_commitments) < 2:
        raise InvalidInput("a dataset registration needs one share commitment per node (at least 2)")
    if any(len(c) != 32 for c in reg.share_commitments):
        raise InvalidInput("every share commitment must be a 32-byte SHA-256 digest")
    if reg.purpose not in PURPOSES:
        raise InvalidInput(f"purpose {reg.purpose!r} must be one of {PURPOSES}")
    check_exponents(list(reg.column_exponents), reg.cols)
    check_label_classes(reg.label_classes)
    if not reg.nonce:
        raise InvalidInput("dataset registration carries no nonce")


def verify_dataset_registration(reg: common_pb2.DatasetRegistration, provider_public_key: bytes) -> None:
    """InvalidInput if malformed; PermissionDenied unless `provider_public_key` signed it.

    The key comes with the registration (from the ledger's provider_registered entry,
    itself signed by that key); binding the provider id to the key is the ledger's job.
    """
    check_dataset_registration(reg)
    message = request_message(KIND_DATASET_REGISTRATION, dataset_registration_payload(reg))
    if not verify_signature(provider_public_key, message, reg.signature):
        raise PermissionDenied(
            f"registration of dataset {reg.dataset_id!r} is not signed by provider {reg.provider_id!r}"
        )


# ---- stake / unstake -----------------------------------------------------------------

def stake_payload(provider_id: str, dataset_id: str, amount: int, nonce: str) -> dict[str, Any]:
    return {"provider_id": provider_id, "dataset_id": dataset_id, "amount": amount, "nonce": nonce}


def signed_stake(
    key: Ed25519PrivateKey, provider_id: str, dataset_id: str, amount: int, *, unstake: bool = False
) -> market_pb2.StakeRequest:
    """A Stake (or Unstake) request in integer token units, signed with a fresh nonce."""
    if not isinstance(amount, int) or amount <= 0:
        raise InvalidInput(f"stake amount must be a positive whole number of tokens, got {amount!r}")
    nonce = new_nonce()
    kind = KIND_UNSTAKE if unstake else KIND_STAKE
    signature = sign(key, request_message(kind, stake_payload(provider_id, dataset_id, amount, nonce)))
    return market_pb2.StakeRequest(
        dataset_id=dataset_id,
        amount=amount,
        auth=common_pb2.ProviderAuth(provider_id=provider_id, nonce=nonce, signature=signature),
    )


def verify_stake(request: market_pb2.StakeRequest, provider_public_key: bytes, *, unstake: bool = False) -> None:
    """PermissionDenied unless the provider named in `auth` signed this exact request."""
    kind = KIND_UNSTAKE if unstake else KIND_STAKE
    auth = request.auth
    message = request_message(kind, stake_payload(auth.provider_id, request.dataset_id, request.amount, auth.nonce))
    if not verify_signature(provider_public_key, message, auth.signature):
        raise PermissionDenied(f"{kind} request is not signed by provider {auth.provider_id!r}")


# ---- dataset terms -----------------------------------------------------------------

def terms_update_payload(provider_id: str, dataset_id: str, terms: dict[str, Any],
                         nonce: str) -> dict[str, Any]:
    return {"dataset_id": dataset_id, "provider_id": provider_id, "terms": terms, "nonce": nonce}


def signed_terms_update(key: Ed25519PrivateKey, provider_id: str, dataset_id: str,
                        terms: dict[str, Any]) -> market_pb2.UpdateDatasetTermsRequest:
    """An UpdateDatasetTerms request: the provider signs its dataset's new terms."""
    nonce = new_nonce()
    payload = terms_update_payload(provider_id, dataset_id, terms, nonce)
    validate_payload(KIND_TERMS_UPDATE, payload)
    signature = sign(key, request_message(KIND_TERMS_UPDATE, payload))
    return market_pb2.UpdateDatasetTermsRequest(
        dataset_id=dataset_id, terms_json=canonical_json(terms).decode(),
        auth=common_pb2.ProviderAuth(provider_id=provider_id, nonce=nonce, signature=signature))


# ---- a sponsor withdraws its round -----------------------------------------------------

def abort_round_payload(sponsor: str, round_id: str, reason: str, nonce: str) -> dict[str, Any]:
    return {"round_id": round_id, "sponsor": sponsor, "reason": reason, "nonce": nonce}


def signed_abort_round(key: Ed25519PrivateKey, sponsor: str, round_id: str,
                       reason: str) -> market_pb2.AbortRoundRequest:
    """An AbortRound request: the round's sponsor withdraws it (signed, fresh nonce)."""
    nonce = new_nonce()
    payload = abort_round_payload(sponsor, round_id, reason, nonce)
    validate_payload(KIND_ABORT_ROUND, payload)
    signature = sign(key, request_message(KIND_ABORT_ROUND, payload))
    return market_pb2.AbortRoundRequest(
        round_id=round_id, reason=reason,
        auth=common_pb2.ProviderAuth(provider_id=sponsor, nonce=nonce, signature=signature))


# ---- a mutually owned model: units transfers and price proposals (issue 16) -------------

KIND_UNITS_TRANSFER = EntryKind.MODEL_UNITS_TRANSFERRED


def signed_units_transfer(key: Ed25519PrivateKey, sender: str, model_id: str, to: str,
                          units: int) -> market_pb2.TransferUnitsRequest:
    """A TransferUnits request signed by the holder over the model_units_transferred
    payload, with a fresh nonce (the ledger refuses a replay)."""
    if units <= 0:
        raise InvalidInput(f"--units must be a positive whole number, got {units}")
    nonce = new_nonce()
    payload = units_transfer_payload(model_id, sender, to, units, nonce)
    validate_payload(KIND_UNITS_TRANSFER, payload)
    return market_pb2.TransferUnitsRequest(
        model_id=model_id, to=to, units=units,
        auth=common_pb2.ProviderAuth(provider_id=sender, nonce=nonce,
                                     signature=sign(key, request_message(KIND_UNITS_TRANSFER, payload))))


def signed_inference_order(key: Ed25519PrivateKey, user: str, order_id: str, model_id: str,
                           rows: int, price_per_1000_rows: int,
                           issued_at_ms: int) -> market_pb2.OrderInferenceRequest:
    """An OrderInference request signed by the user over the inference_ordered payload
    (fee from the model's price, a fresh nonce, the time it was signed)."""
    nonce = new_nonce()
    payload = order_payload(order_id, model_id, user, rows, price_per_1000_rows, issued_at_ms, nonce)
    validate_payload(EntryKind.INFERENCE_ORDERED, payload)
    return market_pb2.OrderInferenceRequest(
        order_id=order_id, model_id=model_id, rows=rows, fee=payload["fee"], issued_at_ms=issued_at_ms,
        auth=common_pb2.ProviderAuth(provider_id=user, nonce=nonce, signature=sign(
            key, request_message(EntryKind.INFERENCE_ORDERED, payload))))


# A price proposal travels between owners as a JSON file (like a multisig transaction):
# {"model_id", "price_per_1000_rows", "nonce", "signatures": {owner: hex signature}}.
PROPOSAL_FIELDS = ("model_id", "nonce", "price_per_1000_rows", "signatures")


def new_price_proposal(model_id: str, price_per_1000_rows: int) -> dict[str, Any]:
    """An unsigned proposal with a fresh nonce (single-use per model on the ledger)."""
    if price_per_1000_rows <= 0:
        raise InvalidInput(f"--price must be a positive number of tokens per 1,000 rows, "
                           f"got {price_per_1000_rows}")
    proposal = {"model_id": model_id, "price_per_1000_rows": price_per_1000_rows,
                "nonce": new_nonce(), "signatures": {}}
    check_price_proposal(proposal)
    return proposal


def check_price_proposal(proposal: Any) -> dict[str, Any]:
    """The proposal if it has exactly the fields above, well typed (InvalidInput otherwise)."""
    if not isinstance(proposal, dict) or sorted(proposal) != list(PROPOSAL_FIELDS):
        raise InvalidInput(f"a price proposal is a JSON object with exactly {list(PROPOSAL_FIELDS)}; "
                           "make one with `mutualmind owner propose-price`")
    signatures = proposal["signatures"]
    if (not isinstance(signatures, dict)
            or not all(isinstance(o, str) and isinstance(s, str) for o, s in signatures.items())):
        raise InvalidInput("the proposal's signatures must map owner ids to hex signatures")
    try:
        signed = {owner: bytes.fromhex(hexed) for owner, hexed in signatures.items()}
    except ValueError:
        raise InvalidInput("a signature in the proposal is not hex") from None
    # an unsigned proposal is checked with a stand-in signature (the entry needs one)
    validate_payload(EntryKind.MODEL_PRICE_CHANGED, price_change_payload(
        proposal["model_id"], proposal["price_per_1000_rows"], proposal["nonce"],
        signed or {"unsigned": bytes(64)}))
    return proposal


def sign_price_proposal(key: Ed25519PrivateKey, owner: str, proposal: dict[str, Any]) -> dict[str, Any]:
    """The proposal with `owner`'s signature over the proposal message added (replacing
    an earlier one of the same owner)."""
    check_price_proposal(proposal)
    message = price_proposal_message(proposal["model_id"], proposal["price_per_1000_rows"],
                                     proposal["nonce"])
    signatures = dict(proposal["signatures"])
    signatures[owner] = sign(key, message).hex()
    return {**proposal, "signatures": dict(sorted(signatures.items()))}


def change_price_request(proposal: dict[str, Any]) -> market_pb2.ChangePriceRequest:
    """The ChangePrice request carrying the proposal and every signature gathered."""
    check_price_proposal(proposal)
    return market_pb2.ChangePriceRequest(
        model_id=proposal["model_id"], price_per_1000_rows=proposal["price_per_1000_rows"],
        nonce=proposal["nonce"],
        signatures=[market_pb2.OwnerSignature(owner=o, signature=bytes.fromhex(s))
                    for o, s in sorted(proposal["signatures"].items())])
