"""A node's part of private inference: which jobs it runs, and to whom it hands the outputs.

Before it runs an inference job, a node rebuilds what the job is from what it can verify
itself (as `job_check` does for a round): the model is a closed round's (sponsor-signed
terms, the coordinator's accepted result) whose trained share this node holds, or a
closed tournament's metamodel (the tournament's signed records, the resolution digest
over this node's own freeze commitments, its freeze job's folder); the query
rows are a dataset of purpose `inference` whose registration its user signed; the job id
is the order id, which is the query dataset's id; the digest is
`inference_job_digest` of those. The model's job folder is filled in here, never taken
from the coordinator.

The outputs are shares of the user's predictions, so a node hands its share only to the
query dataset's registered provider, on a request that user signed (`PredictionRequest`),
issued within `MAX_SKEW_S` of this node's clock, with a nonce the node has not accepted
before (the same on-disk `NonceStore` as model fetches). With the share goes a signed
receipt, and the node signs the order's `delivery_message`: the coordinator collects
those signatures from every node to settle the fee (`JobRunner.record_delivery`).
No gRPC here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mpcnode.inference_retention import purge_record
from mpcnode.jobs import JobRequest, JobRunner
from mpcnode.market_view import MarketView
from mpcnode.model_release import accepted_job
from mpcnode.nonce_store import NonceStore, check_fresh
from mpcnode.registry import DatasetRegistry, RegisteredDataset
from mpcnode.tournament_check import TournamentJobCheck
from mutualmind.errors import (
    IntegrityError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RuleViolation,
)
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.dataset import INFERENCE
from mutualmind.vocabulary.inference import (
    PredictionRequest,
    ReleasedPredictions,
    inference_job_digest,
    prediction_fetch_message,
    prediction_receipt,
)
from mutualmind.vocabulary.model_fetch import (
    MAX_SKEW_S,  # a prediction fetch is as fresh as a model fetch
)
from mutualmind.vocabulary.ownership import delivery_message
from mutualmind.vocabulary.signing_keys import sign, verify_signature
from mutualmind.vocabulary.states import JobState, RoundStatus, TournamentStatus
from mutualmind.vocabulary.tournament_job import PREDICT, parse_tournament_order


class NodeInference:
    """Checks inference jobs and releases their prediction shares (thread-safe)."""

    def __init__(self, *, node_index: int, jobs: JobRunner, market: MarketView,
                 registry: DatasetRegistry, signing_key: Ed25519PrivateKey, nonces: NonceStore,
                 clock: Callable[[], float] = time.time,
                 tournaments: TournamentJobCheck | None = None) -> None:
        self.node_index = node_index
        self._tournaments = tournaments   # None: this node answers no metamodel orders
        self._jobs = jobs
        self._market = market
        self._registry = registry
        self._key = signing_key
        self._nonces = nonces
        self._clock = clock

    # -- before the job -----------------------------------------------------------------

    def check(self, request: JobRequest) -> JobRequest:
        """The request with this node's model folder filled in, or a typed refusal."""
        model_id = request.round_id
        if len(request.dataset_ids) != 1 or request.job_id != request.dataset_ids[0]:
            raise InvalidInput("an inference job's id is its order id, which names its one query dataset")
        query = self._query(request.job_id)
        if request.tournament_json:
            return self._check_metamodel(request, query)
        facts = self._market.round(model_id)
        if facts.status != RoundStatus.CLOSED or not facts.job_digest:
            raise RuleViolation("model_not_ready", f"round {model_id!r} is {facts.status}; its model "
                                "answers queries once the round has closed")
        try:
            spec = json.loads(request.model_spec_json)
        except ValueError:
            raise InvalidInput("the job's model_spec_json is not valid JSON") from None
        if spec != facts.opened.get("model_spec"):
            raise IntegrityError(f"job {request.job_id!r} names a model spec other than the one "
                                 f"round {model_id!r}'s sponsor signed; this node will not run it")
        expected = inference_job_digest(request.job_id, model_id, facts.job_digest,
                                        [c.hex() for c in query.share_commitments])
        if request.job_digest.hex() != expected:
            raise IntegrityError(f"inference job {request.job_id!r} carries a digest this node "
                                 "cannot reproduce from the order's query rows and the model")
        job = accepted_job(self._jobs, self.node_index, model_id, facts.job_digest,
                           list(facts.metrics_micro))
        return replace(request, validation_dataset_id="", model_dir=str(self._jobs.jobs_dir / job))

    def _check_metamodel(self, request: JobRequest, query: RegisteredDataset) -> JobRequest:
        """A closed tournament's metamodel: the order's records are the tournament's, signed
        by its sponsor, modelers and publisher; the resolution's digest recomputed from them
        and this node's own freeze commitments binds the frozen models; the tournament is
        closed; the model folder is this node's freeze job."""
        order = parse_tournament_order(request.tournament_json)
        if order.phase != PREDICT or self._tournaments is None:
            raise InvalidInput(f"inference job {request.job_id!r} names a tournament job of phase "
                               f"{order.phase!r}; a metamodel answers in the {PREDICT!r} phase")
        resolution, _ = self._tournaments.verified(order, request)
        status = self._market.tournament_status(order.tournament_id)
        if status != TournamentStatus.CLOSED:
            raise RuleViolation("model_not_ready", f"tournament {order.tournament_id!r} is {status}; "
                                "its metamodel answers queries once the tournament has closed")
        expected = inference_job_digest(request.job_id, order.tournament_id, resolution,
                                        [c.hex() for c in query.share_commitments])
        if request.job_digest.hex() != expected:
            raise IntegrityError(f"inference job {request.job_id!r} carries a digest this node "
                                 "cannot reproduce from the order's query rows and the metamodel")
        return replace(request, validation_dataset_id="", model_dir=str(self._jobs.jobs_dir / order.freeze_job_id))

    def _query(self, order_id: str) -> RegisteredDataset:
        query = self._registry.get(order_id)
        if query.purpose != INFERENCE:
            raise InvalidInput(f"dataset {order_id!r} is a {query.purpose} set, not an order's query rows")
        return query

    def _refuse_if_purged(self, order_id: str) -> None:
        purged = purge_record(self._jobs, order_id)
        if purged is not None:
            raise NotFound(f"order {order_id!r}'s prediction shares were deleted from this node at "
                           f"{purged['purged_at']} ({purged['reason']}); a node keeps them only a "
                           "short while after it delivered them (docs/ownership.md): place a new "
                           "order to predict again")

    # -- after the job ------------------------------------------------------------------

    def release(self, request: PredictionRequest) -> ReleasedPredictions:
        """This node's share of the order's predictions and its signed receipt."""
        if request.node_index != self.node_index:
            raise InvalidInput(f"this is node {self.node_index}, the request is for node "
                               f"{request.node_index}; send it to node {request.node_index}")
        now = self._clock()
        check_fresh(request.nonce, request.issued_at, now, MAX_SKEW_S)
        query = self._query(request.order_id)
        if query.provider_id != request.user_id:
            raise PermissionDenied(f"only the user who placed order {request.order_id!r} may fetch "
                                   f"its predictions, and {request.user_id!r} is not it")
        if not verify_signature(query.provider_public_key, prediction_fetch_message(request),
                                request.signature):
            raise PermissionDenied(f"the request is not signed by user {request.user_id!r}'s "
                                   "registered key; sign it with the key the user registered")
        self._refuse_if_purged(request.order_id)
        status = self._jobs.status(request.order_id)
        if status.state != JobState.DONE or status.result is None:
            raise RuleViolation("predictions_not_ready", f"order {request.order_id!r}'s job is "
                                f"{status.state}; ask again once it is done")
        self._nonces.claim(request.nonce, request.issued_at + MAX_SKEW_S + 1, now,
                          what="prediction request")
        try:
            data, manifest = self._jobs.model_share(request.order_id)
        except FileNotFoundError:   # deleted by the retention sweep since the look above
            self._refuse_if_purged(request.order_id)
            raise
        shape = [int(d) for d in manifest[0]["shape"]]  # type: ignore[attr-defined]
        model_id = self._jobs.request_of(request.order_id).round_id
        payload = prediction_receipt(order_id=request.order_id, model_id=model_id,
                                     node_index=self.node_index, user_id=request.user_id,
                                     nonce=request.nonce, data=data, shape=shape)
        receipt = canonical_json(payload)
        self._jobs.record_delivery(request.order_id, delivery_message(
            request.order_id, model_id, request.user_id, query.rows))
        return ReleasedPredictions(data=data, receipt_json=receipt, signature=sign(self._key, receipt))
