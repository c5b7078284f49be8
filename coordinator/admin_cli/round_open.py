"""The sponsor's signed OpenRound request, built and signed on the sponsor's machine.

A round locks the sponsor's pool, so the coordinator records it only with the sponsor's
Ed25519 signature over `ledger.entries.request_message("round_opened", payload)`, the
exact payload of the ledger entry. The coordinator rebuilds that payload from the
request (`Rounds.open_round`, with `mutualmind.vocabulary.model_spec.spec_for_ledger` turning the
spec's floats into decimal strings), so this module builds it the same way; the model
spec is first checked with the workers' own parser and sent with every default filled
in, so the ledger records exactly what will be trained.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.model_spec import parse_model_spec, spec_for_ledger
from mutualmind.vocabulary.payloads import request_message, validate_payload
from mutualmind.vocabulary.signing_keys import sign
from mutualmind.vocabulary.states import EntryKind
from proto import common_pb2, market_pb2

KIND_ROUND_OPENED = EntryKind.ROUND_OPENED
PPM = 1_000_000


@dataclass(frozen=True)
class RoundTerms:
    """What a sponsor offers: a pool over these datasets, judged on this validation set."""

    round_id: str
    sponsor: str
    pool: int
    model_spec: dict[str, Any]
    validation_dataset: str
    datasets: tuple[str, ...]
    slash_rate_ppm: int = 0
    epsilon_micro: int = 0
    expires_at_ms: int = 0     # 0: none signed (the coordinator's default TTL applies)


def checked_model_spec(raw: str | dict[str, Any]) -> dict[str, Any]:
    """The spec as the workers will train it (defaults filled); InvalidInput if not valid."""
    return asdict(parse_model_spec(raw))


def round_opened_payload(terms: RoundTerms, nonce: str) -> dict[str, Any]:
    """The `round_opened` ledger payload these terms stand for."""
    payload = {
        "round_id": terms.round_id, "sponsor": terms.sponsor, "pool": terms.pool,
        "model_spec": spec_for_ledger(terms.model_spec),
        "validation_dataset": terms.validation_dataset, "datasets": list(terms.datasets),
        "slash_rate_ppm": terms.slash_rate_ppm, "epsilon_micro": terms.epsilon_micro,
        "nonce": nonce,
    }
    if terms.expires_at_ms:
        payload["expires_at_ms"] = terms.expires_at_ms
    return payload


def check_terms(terms: RoundTerms) -> None:
    """Refuse what the ledger would refuse, before anything is signed or sent."""
    if not terms.datasets:
        raise InvalidInput("a round needs at least one training dataset (--dataset, repeat)")
    if len(set(terms.datasets)) != len(terms.datasets):
        raise InvalidInput("a dataset is listed twice; list each training dataset once")
    if terms.validation_dataset in terms.datasets:
        raise InvalidInput(f"{terms.validation_dataset!r} is both the validation set and a "
                           "training dataset; use a separate validation set")
    if not 0 <= terms.slash_rate_ppm <= PPM:
        raise InvalidInput(f"slash rate must be 0..{PPM} ppm, got {terms.slash_rate_ppm}")
    validate_payload(KIND_ROUND_OPENED, round_opened_payload(terms, secrets.token_hex(16)))


def signed_open_round(key: Ed25519PrivateKey, terms: RoundTerms) -> market_pb2.OpenRoundRequest:
    """An OpenRound request signed by the sponsor with a fresh nonce from `secrets`."""
    check_terms(terms)
    nonce = secrets.token_hex(16)
    signature = sign(key, request_message(KIND_ROUND_OPENED, round_opened_payload(terms, nonce)))
    return market_pb2.OpenRoundRequest(
        round_id=terms.round_id, pool=terms.pool,
        model_spec_json=json.dumps(terms.model_spec, sort_keys=True),
        validation_dataset=terms.validation_dataset, datasets=list(terms.datasets),
        slash_rate_ppm=terms.slash_rate_ppm, epsilon_micro=terms.epsilon_micro,
        expires_at_ms=terms.expires_at_ms,
        auth=common_pb2.ProviderAuth(provider_id=terms.sponsor, nonce=nonce,
                                     signature=signature))
