"""Before a node runs a job it recomputes the job's digest from what it can verify itself.

A node signs an attestation over (round id, job digest, revealed values). If it took the
digest from the coordinator unchecked, a coordinator could have it train one thing and
sign for another. So `JobDigestCheck.check` rebuilds the digest from
  * the round's terms as its sponsor signed them (`MarketView.round`: the round_opened
    payload with the sponsor's signature verified), and
  * the dataset registrations the node already trusts (`DatasetRegistry.get`: each one
    verified against its provider's signature),
with `mutualmind.vocabulary.job_digest.job_digest`, the same function the coordinator and any ledger
auditor use, and refuses the job unless the digest and everything the worker will be
told (datasets in order, validation set, model spec in its ledger form) match. A refusal
happens before `JobRunner.start`, so no directory and no worker exist for it.
"""

from __future__ import annotations

import json

from mpcnode.jobs import JobRequest
from mpcnode.market_view import MarketView
from mpcnode.registry import DatasetRegistry
from mpcnode.tournament_check import TournamentJobCheck
from mutualmind.errors import IntegrityError, InvalidInput, RuleViolation, Unavailable
from mutualmind.vocabulary.job_digest import job_digest
from mutualmind.vocabulary.states import RoundStatus

RUNNABLE_STATUSES = (RoundStatus.OPEN, RoundStatus.RUNNING)


class JobDigestCheck:
    """Checks a JobRequest against the sponsor-signed round and the verified registrations."""

    def __init__(self, market: MarketView, registry: DatasetRegistry,
                 tournaments: TournamentJobCheck | None = None) -> None:
        self._market = market
        self._registry = registry
        self._tournaments = tournaments

    def check(self, request: JobRequest) -> None:
        """Return quietly when the request is the round's job; raise a typed refusal if not."""
        if request.tournament_json:  # a tournament's freeze or resolve (issue 15)
            if self._tournaments is None:
                raise Unavailable("this node cannot check tournament jobs; restart it with its job runner")
            self._tournaments.check(request)
            return
        facts = self._market.round(request.round_id)
        if facts.status not in RUNNABLE_STATUSES:
            raise RuleViolation(
                "round_not_runnable",
                f"round {request.round_id!r} is {facts.status}; a node runs jobs only for an "
                "open round - open a new round instead")
        opened = facts.opened
        try:
            spec = json.loads(request.model_spec_json)
        except ValueError:
            raise InvalidInput("the job's model_spec_json is not valid JSON") from None
        mismatched = [
            name for name, got, want in (
                ("training datasets", list(request.dataset_ids), opened.get("datasets")),
                ("validation dataset", request.validation_dataset_id, opened.get("validation_dataset")),
                ("model spec", spec, opened.get("model_spec")),
            ) if got != want
        ]
        if mismatched:
            raise IntegrityError(
                f"job {request.job_id!r} differs from the terms the sponsor signed for round "
                f"{request.round_id!r} in its {', '.join(mismatched)}; this node will not run it")
        datasets = {}
        for dataset_id in [*opened["datasets"], opened["validation_dataset"]]:
            datasets[dataset_id] = self._registry.get(dataset_id).payload
        expected = job_digest(opened, datasets)
        if request.job_digest.hex() != expected:
            raise IntegrityError(
                f"job {request.job_id!r} carries digest {request.job_digest.hex()[:16]}..., but round "
                f"{request.round_id!r} and its verified datasets give {expected[:16]}...; this node "
                "will not run (or sign) a job whose digest it cannot reproduce")
