"""Handing this node's share of a closed tournament's frozen model to the modeler who submitted it.

The same gate as a round's model (`mpcnode.model_release`), with the tournament's facts:
  1. the request (signed, fresh, single-use: checked by `ModelRelease.release`) names a
     tournament and a model id;
  2. the tournament is closed (the coordinator's word, `MarketView.tournament`), so the
     model was frozen before any outcome and the settlement is done;
  3. this node's own finished freeze job of that tournament froze the model under exactly
     the commitment `models_frozen` recorded (a retried freeze leaves other jobs behind);
  4. the requester is the modeler of that model as the signed `model_submitted` record in
     the freeze job says (this node verified its signature before it ran the job), and the
     request is signed with that modeler's registered key.
It then releases only the full model's tensors (variant 0, not the per-dataset variants:
`vocabulary.tournament_collect.full_model_part`) with a receipt whose job_digest is the
frozen commitment and which signs the digest of the whole frozen file, so the modeler can
recompute the commitment from every node's receipt.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from mpcnode.jobs import JobRunner
from mpcnode.market_view import MarketView
from mutualmind.errors import InvalidInput, NotFound, PermissionDenied, RuleViolation
from mutualmind.vocabulary.model_fetch import FetchRequest
from mutualmind.vocabulary.states import JobState, TournamentStatus
from mutualmind.vocabulary.tournament_collect import frozen_facts, full_model_part
from mutualmind.vocabulary.tournament_job import FREEZE, parse_tournament_order


@dataclass(frozen=True)
class FrozenShare:
    """This node's share of one frozen model, ready to release to `modeler`."""

    modeler: str
    commitment: str
    data: bytes
    manifest: list[dict[str, Any]]
    facts: dict[str, Any]


def frozen_share(jobs: JobRunner, market: MarketView, node_index: int, request: FetchRequest) -> FrozenShare:
    """The full model's share the request asks for, once the tournament is closed and the
    requester is the model's modeler (typed refusals otherwise; the signature is the caller's)."""
    tournament_id, model_id = request.round_id, request.model_id
    facts = market.tournament(tournament_id)
    commitment = facts.commitments.get(model_id)
    if commitment is None:
        raise NotFound(f"tournament {tournament_id!r} has no model {model_id!r}")
    if facts.status != TournamentStatus.CLOSED or not commitment:
        raise RuleViolation("tournament_not_closed", f"tournament {tournament_id!r} is {facts.status}; a "
                            "modeler collects its frozen model once the tournament is settled (closed)")
    for job_id in _freeze_jobs(jobs, tournament_id):
        document, directory = jobs.freeze_result(job_id)
        for k, item in enumerate(document.get("models", [])):
            if item.get("model_id") != model_id or document["commitments"][k] != commitment:
                continue
            submission = _submission(jobs, job_id, model_id)
            modeler = str(submission["modeler"])
            if modeler != request.sponsor_id:
                raise PermissionDenied(f"only the modeler who submitted model {model_id!r} may collect "
                                       f"it, and {request.sponsor_id!r} is not it")
            raw = (directory / str(item["file"])).read_bytes()
            digest = hashlib.sha256(raw).hexdigest()
            if digest != item["sha256"]:
                raise NotFound(f"node {node_index}'s frozen shares of model {model_id!r} changed since the "
                               "freeze; this node cannot release them")
            data, manifest = full_model_part(raw, item["tensors"])
            return FrozenShare(modeler, commitment, data, manifest, frozen_facts(
                model_id, submission["recipe"], submission["datasets"], digest,
                document["feature_exponents"], document["label_exponent"]))
    raise NotFound(f"node {node_index} holds no freeze job of tournament {tournament_id!r} that froze "
                   f"model {model_id!r} under its recorded commitment; its files are gone")


def _freeze_jobs(jobs: JobRunner, tournament_id: str) -> list[str]:
    """This node's finished freeze jobs of the tournament (its request says so)."""
    found = []
    for directory in sorted(jobs.jobs_dir.iterdir()):
        if not directory.is_dir():
            continue
        try:
            request = jobs.request_of(directory.name)
            if not request.tournament_json or jobs.status(directory.name).state != JobState.DONE:
                continue
            order = parse_tournament_order(request.tournament_json)
        except (NotFound, InvalidInput):
            continue
        if order.phase == FREEZE and order.tournament_id == tournament_id:
            found.append(directory.name)
    return found


def _submission(jobs: JobRunner, job_id: str, model_id: str) -> dict[str, Any]:
    """`model_id`'s signed submission in the freeze job (this node verified it then)."""
    order = parse_tournament_order(jobs.request_of(job_id).tournament_json)
    for record in order.submissions:
        if record.payload.get("model_id") == model_id:
            return dict(record.payload)
    raise NotFound(f"the freeze job {job_id!r} has no submission of model {model_id!r}")
