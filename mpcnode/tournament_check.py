"""Before a node runs a tournament's job it checks the job is the tournament's, from signatures.

A node signs a freeze (commitments to its weight shares) and a result (every revealed
number) under a job digest. It takes neither the digest nor the models from the
coordinator's word: the job carries the ledger's own signed records
(`tournament_job.TournamentOrder`), and this check
  * verifies the sponsor's signature on `tournament_opened`, each modeler's on its
    `model_submitted` and, for a resolve, the resolution publisher's on
    `resolution_committed` (keys from the providers' self-signed registrations,
    `MarketView.provider_key`), and that the publisher is the one the sponsor named;
  * recomputes the digest (`tournament.freeze_digest`, `tournament.resolution_digest`)
    from those records, the dataset registrations it trusts (`DatasetRegistry`) and, for a
    resolve, the commitments of its OWN freeze job (what it signed then);
  * checks that the datasets its worker will load are exactly those the records name.
A refusal happens before `JobRunner.start`: no directory, no worker.
"""

from __future__ import annotations

from collections.abc import Callable

from mpcnode.jobs import JobRequest
from mpcnode.market_view import MarketView
from mpcnode.registry import DatasetRegistry
from mutualmind.errors import IntegrityError, InvalidInput, PermissionDenied
from mutualmind.vocabulary.payloads import request_message
from mutualmind.vocabulary.signing_keys import verify_signature
from mutualmind.vocabulary.states import EntryKind
from mutualmind.vocabulary.tournament import freeze_digest, resolution_digest
from mutualmind.vocabulary.tournament_job import (
    FREEZE,
    PREDICT,
    SignedRecord,
    TournamentOrder,
    parse_tournament_order,
    training_datasets,
)

# job id -> the commitments this node's finished freeze job computed
FrozenCommitments = Callable[[str], list[str]]


class TournamentJobCheck:
    """Checks a tournament JobRequest against signed records and verified registrations."""

    def __init__(self, market: MarketView, registry: DatasetRegistry, frozen: FrozenCommitments) -> None:
        self._market = market
        self._registry = registry
        self._frozen = frozen

    def check(self, request: JobRequest) -> None:
        """Return quietly when the request is the tournament's job; raise a typed refusal if not."""
        order = parse_tournament_order(request.tournament_json)
        if order.phase == PREDICT:
            raise InvalidInput(f"job {request.job_id!r} is a tournament's predict phase, which runs "
                               "only as an inference job (mpcnode.inference_jobs checks it)")
        expected, datasets = self.verified(order, request)
        if tuple(request.dataset_ids) != datasets:
            raise IntegrityError(f"job {request.job_id!r} loads datasets {list(request.dataset_ids)}; "
                                 f"the tournament's records name {list(datasets)}")
        if request.job_digest.hex() != expected:
            raise IntegrityError(
                f"job {request.job_id!r} carries digest {request.job_digest.hex()[:16]}..., but "
                f"tournament {order.tournament_id!r}'s signed records give {expected[:16]}...; this "
                "node will not run (or sign) a job whose digest it cannot reproduce")

    def verified(self, order: TournamentOrder, request: JobRequest) -> tuple[str, tuple[str, ...]]:
        """The job digest the order's signed records give and the datasets its job loads,
        once every signature verified: the freeze's digest, or (resolve, predict) the
        resolution's, over this node's own freeze commitments."""
        opened = order.opened.payload
        self._signed(order.opened, EntryKind.TOURNAMENT_OPENED, str(opened["sponsor"]))
        for s in order.submissions:
            if s.payload.get("tournament_id") != order.tournament_id:
                raise IntegrityError(f"a submission in job {request.job_id!r} names another tournament")
            self._signed(s, EntryKind.MODEL_SUBMITTED, str(s.payload["modeler"]))
        if request.round_id != order.tournament_id:
            raise IntegrityError(f"job {request.job_id!r} names {request.round_id!r}, its records "
                                 f"tournament {order.tournament_id!r}")
        submissions = [s.payload for s in order.submissions]
        training = training_datasets(submissions, opened["datasets"])
        registrations = {d: self._registry.get(d).payload for d in training}
        expected = freeze_digest(opened, submissions, registrations)
        if order.phase == FREEZE:
            return expected, training
        return self._resolution(order, expected)

    def _resolution(self, order: TournamentOrder, frozen_digest: str) -> tuple[str, tuple[str, ...]]:
        assert order.resolution is not None  # parse_tournament_order: a resolve carries it
        resolution, opened = order.resolution.payload, order.opened.payload
        if resolution.get("tournament_id") != order.tournament_id:
            raise IntegrityError("the resolution names another tournament")
        if resolution.get("publisher") != opened["resolution_publisher"]:
            raise PermissionDenied(f"tournament {order.tournament_id!r}'s resolution is published by "
                                   f"{opened['resolution_publisher']!r}, not {resolution.get('publisher')!r}")
        self._signed(order.resolution, EntryKind.RESOLUTION_COMMITTED, str(resolution["publisher"]))
        dataset = str(resolution["dataset_id"])
        commitments = self._frozen(order.freeze_job_id)
        stakes = [int(s.payload["stake"]) for s in order.submissions]
        digest = resolution_digest(frozen_digest, commitments, stakes, int(opened["weight_cap_ppm"]),
                                   dataset, self._registry.get(dataset).payload)
        return digest, (dataset,)

    def _signed(self, record: SignedRecord, kind: str, signer: str) -> None:
        key = self._market.provider_key(signer)
        if not verify_signature(key, request_message(kind, record.payload), record.signature):
            raise IntegrityError(f"the {kind} record of the job is not signed by {signer!r}'s registered "
                                 "key; this node refuses to act on it")

