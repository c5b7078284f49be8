"""What a tournament's MPC jobs are, as the coordinator orders them and a node checks them.

Two jobs per tournament (issue 15): the *freeze* trains every submitted model (and each
model's variants without one of its datasets) and commits to the weight shares; the
*resolve* evaluates the frozen models on the resolution data. The coordinator sends, in
the job's `tournament_json`, the ledger's own signed records: the sponsor-signed
`tournament_opened` payload, every modeler-signed `model_submitted` payload, and for the
resolve the publisher-signed `resolution_committed` payload and the id of the freeze job.
A node verifies those signatures itself (`mpcnode.tournament_check`), recomputes the
job digest from them and from the dataset registrations it trusts, and hands its worker
only what follows from them: a `WorkerTournament` (models, stakes, cap, metric).

Pure Python: the coordinator, the node and the worker all parse these shapes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.metamodel_weights import copy_leaders
from mutualmind.vocabulary.model_spec import ModelSpec, parse_model_spec, spec_for_ledger

FREEZE = "freeze"
RESOLVE = "resolve"
# a closed tournament's metamodel answering an inference order (issue 16): the records of
# a resolve (the resolution's digest binds the frozen models), run as an inference job
PREDICT = "predict"
PHASES = (FREEZE, RESOLVE, PREDICT)
# the phases that read the frozen models from the freeze job's folder
READS_FROZEN = (RESOLVE, PREDICT)
COMMITMENT_DOMAIN = "mutualmind/tournament-model-commitment/v1"


@dataclass(frozen=True)
class SignedRecord:
    """A ledger payload with the signature its signer (sponsor, modeler, publisher) made."""

    payload: dict[str, Any]
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        return {"payload": self.payload, "signature": self.signature.hex()}


@dataclass(frozen=True)
class TournamentOrder:
    """The coordinator's tournament job, as `JobOrder.tournament_json` carries it."""

    phase: str
    opened: SignedRecord
    submissions: tuple[SignedRecord, ...]
    resolution: SignedRecord | None = None
    freeze_job_id: str = ""

    @property
    def tournament_id(self) -> str:
        return str(self.opened.payload["tournament_id"])

    def to_json(self) -> str:
        body: dict[str, Any] = {"phase": self.phase, "opened": self.opened.to_json(),
                                "submissions": [s.to_json() for s in self.submissions]}
        if self.resolution is not None:
            body["resolution"] = self.resolution.to_json()
            body["freeze_job_id"] = self.freeze_job_id
        return canonical_json(body).decode()


def _record(raw: object, what: str) -> SignedRecord:
    if not isinstance(raw, dict) or not isinstance(raw.get("payload"), dict) \
            or not isinstance(raw.get("signature"), str):
        raise InvalidInput(f"the tournament job's {what} must be {{payload, signature}}")
    try:
        signature = bytes.fromhex(raw["signature"])
    except ValueError:
        raise InvalidInput(f"the tournament job's {what} signature is not hex") from None
    return SignedRecord(raw["payload"], signature)


def parse_tournament_order(text: str) -> TournamentOrder:
    """The order from its JSON; InvalidInput naming what is wrong (signatures unchecked)."""
    try:
        raw = json.loads(text)
    except ValueError:
        raise InvalidInput("the job's tournament_json is not valid JSON") from None
    if not isinstance(raw, dict) or raw.get("phase") not in PHASES:
        raise InvalidInput(f"a tournament job names its phase, one of {PHASES}")
    submissions = raw.get("submissions")
    if not isinstance(submissions, list) or not submissions:
        raise InvalidInput("a tournament job lists the submitted models (at least one)")
    order = TournamentOrder(
        phase=raw["phase"], opened=_record(raw.get("opened"), "opened"),
        submissions=tuple(_record(s, "submission") for s in submissions))
    if order.phase in READS_FROZEN:
        freeze_job = raw.get("freeze_job_id")
        if not isinstance(freeze_job, str) or not freeze_job:
            raise InvalidInput(f"a {order.phase} job names the freeze job whose weights it evaluates")
        order = TournamentOrder(order.phase, order.opened, order.submissions,
                                _record(raw.get("resolution"), "resolution"), freeze_job)
    return order


def training_datasets(submissions: Sequence[Mapping[str, Any]], eligible: Sequence[str]) -> tuple[str, ...]:
    """The datasets a freeze loads: every chosen one, once, in the eligible list's order."""
    chosen = {d for s in submissions for d in s["datasets"]}
    return tuple(d for d in eligible if d in chosen)


@dataclass(frozen=True)
class WorkerModel:
    """One submitted model as the worker trains or evaluates it."""

    model_id: str
    spec: ModelSpec
    datasets: tuple[str, ...]


@dataclass(frozen=True)
class WorkerTournament:
    """What a node's worker is told of a tournament job (derived from verified records)."""

    phase: str
    tournament_id: str
    metric: str
    models: tuple[WorkerModel, ...]
    stakes: tuple[int, ...]
    cap_ppm: int
    freeze_dir: str = ""   # resolve: this node's directory of the freeze job

    def copy_leaders(self) -> list[int]:
        """Which models are copies of an earlier one (`metamodel_weights.copy_leaders`)."""
        return copy_leaders([(_recipe(m.spec), m.datasets) for m in self.models])

    def to_json(self) -> dict[str, Any]:
        return {"phase": self.phase, "tournament_id": self.tournament_id, "metric": self.metric,
                "models": [{"model_id": m.model_id, "recipe": _recipe(m.spec),
                            "datasets": list(m.datasets)} for m in self.models],
                "stakes": list(self.stakes), "cap_ppm": self.cap_ppm, "freeze_dir": self.freeze_dir}


def _recipe(spec: ModelSpec) -> dict[str, Any]:
    """A spec as the ledger records it (canonical: every default, no floats)."""
    return spec_for_ledger(json.loads(spec.to_json()))


def worker_tournament(order: TournamentOrder, freeze_dir: str = "") -> WorkerTournament:
    """The worker's view of a (verified) order."""
    opened = order.opened.payload
    models = tuple(WorkerModel(str(s.payload["model_id"]), parse_model_spec(s.payload["recipe"]),
                               tuple(s.payload["datasets"])) for s in order.submissions)
    return WorkerTournament(order.phase, order.tournament_id, str(opened["task"]["metric"]), models,
                            tuple(int(s.payload["stake"]) for s in order.submissions),
                            int(opened["weight_cap_ppm"]), freeze_dir)


def parse_worker_tournament(raw: object) -> WorkerTournament:
    """The worker's tournament description from its spec file (written by the node)."""
    if not isinstance(raw, dict) or raw.get("phase") not in PHASES:
        raise InvalidInput(f"the worker's tournament names its phase, one of {PHASES}")
    try:
        models = tuple(WorkerModel(str(m["model_id"]), parse_model_spec(m["recipe"]),
                                   tuple(str(d) for d in m["datasets"])) for m in raw["models"])
        stakes = tuple(int(s) for s in raw["stakes"])
        tournament = WorkerTournament(raw["phase"], str(raw["tournament_id"]), str(raw["metric"]), models,
                                      stakes, int(raw["cap_ppm"]), str(raw.get("freeze_dir", "")))
    except (KeyError, TypeError, ValueError) as err:
        raise InvalidInput(f"the worker's tournament description is malformed ({err})") from None
    if not models or len(stakes) != len(models) or any(not m.datasets for m in models):
        raise InvalidInput("the worker's tournament needs one stake and at least one dataset per model")
    if tournament.phase in READS_FROZEN and not tournament.freeze_dir:
        raise InvalidInput(f"a {tournament.phase} job needs the freeze job's directory")
    return tournament


def model_commitment(tournament_id: str, model_id: str, share_digests: Sequence[str]) -> str:
    """Hex SHA-256 committing to one model's weight shares: over every node's SHA-256 of
    its own share file (in node order). Each node exchanges its digest in the freeze job,
    so all nodes sign the same commitment, and each can later show its share matches."""
    body = {"domain": COMMITMENT_DOMAIN, "tournament_id": tournament_id, "model_id": model_id,
            "share_digests": list(share_digests)}
    return hashlib.sha256(canonical_json(body)).hexdigest()
