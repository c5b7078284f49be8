"""The model market's signed requests and what nodes sign about a tournament.

A sponsor opens a tournament (`tournament_opened`, signed by the sponsor: it locks the
pool) and modelers submit models (`model_submitted`, signed by the modeler with a fresh
nonce: it locks the stake). Both are built here, on the signer's own machine, exactly as
the ledger stores them, and checked strictly first (the same `validate_payload` the
ledger runs, plus the recipe parsed by the workers' own `parse_model_spec` and sent with
every default filled in), so nothing malformed is ever signed. The ledger's rules for
these kinds are in `ledger.tournament_rules`.

Nodes sign two things: the freeze (each model's commitment to its weight shares, under
the digest of what was trained on which inputs) and the result (every revealed number,
under the digest that adds the commitments, the stakes that weight the metamodel and the
resolution data). Anyone holding the ledger recomputes both digests, so an attestation
cannot be moved to another tournament, other models or other data.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.model_spec import parse_model_spec, spec_for_ledger
from mutualmind.vocabulary.payloads import BPS, PPM, request_message, validate_payload
from mutualmind.vocabulary.signing_keys import sign
from mutualmind.vocabulary.states import EntryKind

FREEZE_DOMAIN = "mutualmind/tournament-freeze/v1"
RESOLUTION_DOMAIN = "mutualmind/tournament-resolution/v1"
FREEZE_ATTESTATION_DOMAIN = "mutualmind/tournament-freeze-attestation/v1"
RESULT_ATTESTATION_DOMAIN = "mutualmind/tournament-result-attestation/v1"


@dataclass(frozen=True)
class TournamentTerms:
    """What a sponsor offers: a pool for the models whose stake-weighted metamodel beats
    `threshold_micro` on resolution data that `resolution_publisher` commits later."""

    tournament_id: str
    sponsor: str
    label_kind: str              # binary, multiclass or regression
    metric: str                  # log_loss, accuracy or mse
    pool: int
    threshold_micro: int
    deadline_ms: int             # submissions strictly before, freezing at or after
    datasets: tuple[str, ...]    # the staked datasets models may choose from
    slash_rate_ppm: int = 100_000
    weight_cap_ppm: int = PPM    # no model weighs more than this in the metamodel
    epsilon_micro: int = 1_000
    resolution_publisher: str = ""  # "" = the sponsor


def tournament_opened_payload(terms: TournamentTerms, nonce: str) -> dict[str, Any]:
    """The `tournament_opened` ledger payload these terms stand for."""
    return {
        "tournament_id": terms.tournament_id, "sponsor": terms.sponsor,
        "task": {"label_kind": terms.label_kind, "metric": terms.metric},
        "pool": terms.pool, "threshold_micro": terms.threshold_micro,
        "deadline_ms": terms.deadline_ms, "slash_rate_ppm": terms.slash_rate_ppm,
        "weight_cap_ppm": terms.weight_cap_ppm, "epsilon_micro": terms.epsilon_micro,
        "resolution_publisher": terms.resolution_publisher or terms.sponsor,
        "datasets": list(terms.datasets), "nonce": nonce,
    }


def check_tournament_terms(terms: TournamentTerms) -> None:
    """Refuse what the ledger would refuse on its own, before anything is signed."""
    if terms.weight_cap_ppm <= 0:
        raise InvalidInput("the per-model weight cap must be above 0 ppm (1000000 = no cap)")
    validate_payload(EntryKind.TOURNAMENT_OPENED, tournament_opened_payload(terms, secrets.token_hex(16)))


def signed_tournament_open(key: Ed25519PrivateKey, terms: TournamentTerms) -> tuple[dict[str, Any], bytes]:
    """The payload and the sponsor's signature over it, with a fresh nonce from `secrets`."""
    check_tournament_terms(terms)
    payload = tournament_opened_payload(terms, secrets.token_hex(16))
    return payload, sign(key, request_message(EntryKind.TOURNAMENT_OPENED, payload))


@dataclass(frozen=True)
class ModelSubmission:
    """A modeler's model: a recipe trained on the chosen datasets, a stake behind it, and
    the share of its gains (and slashes) the modeler keeps rather than passes to its data."""

    tournament_id: str
    model_id: str
    modeler: str
    recipe: Mapping[str, Any]    # a model spec (`mutualmind.vocabulary.model_spec`)
    datasets: tuple[str, ...]
    stake: int
    kept_share_bps: int


def ledger_recipe(recipe: Mapping[str, Any] | str) -> dict[str, Any]:
    """The recipe as the ledger holds it: parsed by the workers' parser, every default
    filled in, real numbers as decimal strings. InvalidInput if it does not parse."""
    return spec_for_ledger(asdict(parse_model_spec(recipe if isinstance(recipe, str) else dict(recipe))))


def model_submitted_payload(submission: ModelSubmission, nonce: str) -> dict[str, Any]:
    """The `model_submitted` ledger payload of this submission."""
    return {
        "tournament_id": submission.tournament_id, "model_id": submission.model_id,
        "modeler": submission.modeler, "recipe": ledger_recipe(submission.recipe),
        "datasets": list(submission.datasets), "stake": submission.stake,
        "kept_share_bps": submission.kept_share_bps, "nonce": nonce,
    }


def check_submission(submission: ModelSubmission) -> None:
    """Refuse a malformed submission before it is signed (InvalidInput / RuleViolation)."""
    if not 0 <= submission.kept_share_bps <= BPS:
        raise InvalidInput(f"kept share must be 0..{BPS} basis points, got {submission.kept_share_bps}")
    validate_payload(EntryKind.MODEL_SUBMITTED, model_submitted_payload(submission, secrets.token_hex(16)))


def signed_model_submit(key: Ed25519PrivateKey, submission: ModelSubmission) -> tuple[dict[str, Any], bytes]:
    """The payload and the modeler's signature over it, with a fresh nonce from `secrets`."""
    check_submission(submission)
    payload = model_submitted_payload(submission, secrets.token_hex(16))
    return payload, sign(key, request_message(EntryKind.MODEL_SUBMITTED, payload))


def resolution_committed_payload(tournament_id: str, publisher: str, dataset_id: str,
                                 nonce: str) -> dict[str, Any]:
    """The `resolution_committed` ledger payload: the publisher names the validation set
    (registered and shared like any dataset) that resolves the tournament."""
    return {"tournament_id": tournament_id, "publisher": publisher, "dataset_id": dataset_id, "nonce": nonce}


def signed_resolution(key: Ed25519PrivateKey, tournament_id: str, publisher: str,
                      dataset_id: str) -> tuple[dict[str, Any], bytes]:
    """The payload and the publisher's signature over it, with a fresh nonce from `secrets`."""
    payload = resolution_committed_payload(tournament_id, publisher, dataset_id, secrets.token_hex(16))
    validate_payload(EntryKind.RESOLUTION_COMMITTED, payload)
    return payload, sign(key, request_message(EntryKind.RESOLUTION_COMMITTED, payload))


def signed_request_json(signed: tuple[dict[str, Any], bytes]) -> tuple[str, bytes]:
    """(payload as canonical JSON, signature): what a SignedTournamentRequest carries."""
    return canonical_json(signed[0]).decode(), signed[1]


# ---- digests and attestations ----------------------------------------------------------

def _inputs(dataset_id: str, registration: Mapping[str, Any]) -> dict[str, Any]:
    return {"dataset_id": dataset_id, "rows": registration["rows"], "cols": registration["cols"],
            "share_commitments": registration["share_commitments"]}


def freeze_digest(opened: Mapping[str, Any], submissions: Sequence[Mapping[str, Any]],
                  datasets: Mapping[str, Mapping[str, Any]]) -> str:
    """Hex SHA-256 naming the training job: the task and every model's recipe and inputs.

    `opened` is the tournament_opened payload, `submissions` the model_submitted payloads
    in ledger order, `datasets` maps dataset ids to their dataset_registered payloads.
    """
    body = {
        "domain": FREEZE_DOMAIN, "tournament_id": opened["tournament_id"], "task": opened["task"],
        "models": [{"model_id": s["model_id"], "recipe": s["recipe"],
                    "datasets": [_inputs(d, datasets[d]) for d in s["datasets"]]}
                   for s in submissions],
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


def resolution_digest(frozen_digest: str, commitments: Sequence[str], stakes: Sequence[int],
                      weight_cap_ppm: int, resolution_id: str, resolution: Mapping[str, Any]) -> str:
    """Hex SHA-256 naming the resolution job: the frozen models, the stakes and cap that
    weight the metamodel, and the resolution data."""
    body = {
        "domain": RESOLUTION_DOMAIN, "freeze_digest": frozen_digest,
        "model_commitments": list(commitments), "stakes": list(stakes),
        "weight_cap_ppm": weight_cap_ppm, "resolution": _inputs(resolution_id, resolution),
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


def freeze_attestation_message(tournament_id: str, job_digest: str, commitments: Sequence[str]) -> bytes:
    """The bytes every node signs to freeze a tournament's models."""
    return canonical_json({"domain": FREEZE_ATTESTATION_DOMAIN, "tournament_id": tournament_id,
                           "job_digest": job_digest, "model_commitments": list(commitments)})


def result_attestation_message(tournament_id: str, job_digest: str, metamodel_metric_micro: int,
                               contributions_micro: Sequence[int],
                               dataset_contributions_micro: Sequence[Sequence[int]]) -> bytes:
    """The bytes every node signs for a tournament's result: every number it reveals."""
    return canonical_json({
        "domain": RESULT_ATTESTATION_DOMAIN, "tournament_id": tournament_id,
        "job_digest": job_digest, "metamodel_metric_micro": metamodel_metric_micro,
        "contributions_micro": list(contributions_micro),
        "dataset_contributions_micro": [list(c) for c in dataset_contributions_micro],
    })


def attested_message(kind: str, payload: Mapping[str, Any]) -> bytes | None:
    """What the nodes' attestations on a tournament entry sign; None for other kinds."""
    if kind == EntryKind.MODELS_FROZEN:
        return freeze_attestation_message(payload["tournament_id"], payload["job_digest"],
                                          payload["model_commitments"])
    if kind == EntryKind.TOURNAMENT_RESULT:
        return result_attestation_message(
            payload["tournament_id"], payload["job_digest"], payload["metamodel_metric_micro"],
            payload["contributions_micro"], payload["dataset_contributions_micro"])
    return None
