"""What a node learns about rounds and providers from the coordinator, checked on arrival.

A node must not take the coordinator's word for what a round is: before it runs a job
(and later signs an attestation over its digest) or hands a model share to a "sponsor",
it wants the round's terms as the sponsor signed them. So a `RoundFacts` holds the
round_opened payload together with the sponsor's Ed25519 signature over it, and is only
built after that signature verified against the sponsor's key - itself taken from the
sponsor's self-signed provider_registered entry. What the coordinator alone asserts
(status, job digest of the accepted result) is kept apart and named as such.

`MarketView` is the protocol the node's checks depend on; `CoordinatorMarket`
(`mpcnode.coordinator_client`) implements it over the coordinator's Market API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from mutualmind.errors import IntegrityError
from mutualmind.vocabulary.payloads import request_message
from mutualmind.vocabulary.signed_requests import register_provider_payload
from mutualmind.vocabulary.signing_keys import verify_signature
from mutualmind.vocabulary.states import EntryKind

KIND_ROUND_OPENED = EntryKind.ROUND_OPENED
KIND_PROVIDER_REGISTERED = EntryKind.PROVIDER_REGISTERED


@dataclass(frozen=True)
class RoundFacts:
    """A round: sponsor-signed terms (verified) plus the coordinator's report of its state."""

    round_id: str
    opened: dict[str, Any]          # the round_opened payload, sponsor signature verified
    status: str                     # open | running | result | closed | aborted (coordinator's word)
    job_digest: str                 # hex digest of the accepted result ('' before one)
    metrics_micro: tuple[int, ...]  # the accepted revealed values ('' before a result)

    @property
    def sponsor(self) -> str:
        return str(self.opened["sponsor"])


@dataclass(frozen=True)
class TournamentFacts:
    """A tournament as the coordinator reports it: its status and each model's frozen
    commitment (from `models_frozen`; '' before the freeze). All the coordinator's word:
    a node acts on it only where its own freeze job's records agree."""

    tournament_id: str
    status: str
    commitments: dict[str, str]     # model id -> frozen commitment


class MarketView(Protocol):
    """Where a node reads rounds and provider keys (verified by the implementation)."""

    def round(self, round_id: str) -> RoundFacts:
        """The round with its sponsor signature checked; NotFound for an unknown id."""
        ...

    def provider_key(self, provider_id: str) -> bytes:
        """The provider's registered public key, its self-signature checked."""
        ...

    def tournament_status(self, tournament_id: str) -> str:
        """The tournament's status (the coordinator's word, as a round's status is);
        NotFound for an unknown id."""
        ...

    def tournament(self, tournament_id: str) -> TournamentFacts:
        """The tournament's status and frozen commitments; NotFound for an unknown id."""
        ...


def check_provider_registration(provider_id: str, name: str, public_key: bytes, nonce: str,
                                signature: bytes) -> bytes:
    """The key of a self-signed provider_registered entry; IntegrityError if it is not."""
    message = request_message(KIND_PROVIDER_REGISTERED,
                              register_provider_payload(name, public_key, nonce))
    if name != provider_id or not verify_signature(public_key, message, signature):
        raise IntegrityError(
            f"the coordinator's registration of provider {provider_id!r} is not signed by the "
            "key it names; this node will not trust it - report it to the cluster operator")
    return public_key


def check_round(round_id: str, opened_payload_json: str, sponsor_signature: bytes,
                sponsor_key: bytes, *, status: str, job_digest: str,
                metrics_micro: list[int]) -> RoundFacts:
    """RoundFacts once the sponsor's signature over the round_opened payload verified."""
    try:
        opened = json.loads(opened_payload_json)
    except ValueError:
        opened = None
    if not isinstance(opened, dict) or opened.get("round_id") != round_id:
        raise IntegrityError(
            f"the coordinator sent no readable round_opened payload for round {round_id!r}; "
            "check that coordinator and node run the same version")
    if not verify_signature(sponsor_key, request_message(KIND_ROUND_OPENED, opened), sponsor_signature):
        raise IntegrityError(
            f"the terms of round {round_id!r} the coordinator sent are not signed by its sponsor "
            f"{opened.get('sponsor')!r}; this node refuses to act on them")
    return RoundFacts(round_id=round_id, opened=opened, status=status, job_digest=job_digest,
                      metrics_micro=tuple(int(m) for m in metrics_micro))
