"""Handing this node's share of a trained model to the round's sponsor, and to no one else.

The trained weights stay secret-shared on the nodes after a round (issue 4); the sponsor
collects every node's share and adds them up on its own machine. One share alone is
uniformly random, but all of them are the model, so each node releases its share only on
a request that
  1. names a round that is closed (the coordinator's ledger holds its accepted result),
  2. comes from that round's sponsor - as the round_opened terms the sponsor signed say,
  3. carries the sponsor's Ed25519 signature (key from its self-signed registration) over
     `ledger.entries.request_message("model_share_fetch", payload)`,
  4. is fresh: `issued_at` within `MAX_SKEW_S` of this node's clock and a nonce this node
     has not accepted before (`mpcnode.nonce_store`: on disk in the node's data dir, fsynced
     before the share is answered, so a node restart does not reopen a replay).
It then finds its own finished job whose attestation is exactly the accepted result
(round id, job digest, revealed values) and returns the share with a receipt the node
signs: canonical JSON naming the round, digest, node, sponsor, nonce, size, SHA-256 and
manifest, so the sponsor can tell which node gave which bytes. No gRPC here; nothing is
pickled (the manifest is JSON). A request that names a model id is for a closed
tournament's frozen model, released to its modeler (`mpcnode.tournament_release`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mpcnode.jobs import JobRunner
from mpcnode.market_view import MarketView
from mpcnode.nonce_store import NONCE_FILE, NonceStore, check_fresh
from mpcnode.tournament_release import frozen_share
from mutualmind.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    RuleViolation,
)
from mutualmind.vocabulary.attestation import attestation_message
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.model_fetch import (
    MAX_SKEW_S,
    FetchRequest,
    ReleasedShare,
    fetch_message,
    receipt_payload,
)
from mutualmind.vocabulary.signing_keys import sign, verify_signature
from mutualmind.vocabulary.states import JobState, RoundStatus


class ModelRelease:
    """Answers FetchModelShare for one node (thread-safe)."""

    def __init__(self, *, node_index: int, jobs: JobRunner, market: MarketView,
                 signing_key: Ed25519PrivateKey, clock: Callable[[], float] = time.time,
                 nonces: NonceStore | None = None) -> None:
        """`nonces` defaults to the store in the node's data dir (next to `jobs/`)."""
        self.node_index = node_index
        self._jobs = jobs
        self._market = market
        self._key = signing_key
        self._clock = clock
        self._nonces = nonces if nonces is not None else NonceStore(jobs.data_dir / NONCE_FILE)

    def close(self) -> None:
        self._nonces.close()

    def release(self, request: FetchRequest) -> ReleasedShare:
        """This node's share of the round's model and its signed receipt, or a typed refusal."""
        self._check_shape(request)
        now = self._clock()
        check_fresh(request.nonce, request.issued_at, now, MAX_SKEW_S)
        if request.model_id:
            return self._release_frozen(request, now)
        facts = self._market.round(request.round_id)
        if facts.sponsor != request.sponsor_id:
            raise PermissionDenied(
                f"only the sponsor of round {request.round_id!r} may collect its model, and "
                f"{request.sponsor_id!r} is not it")
        key = self._market.provider_key(facts.sponsor)
        if not verify_signature(key, fetch_message(request), request.signature):
            raise PermissionDenied(
                f"the request is not signed by sponsor {facts.sponsor!r}'s registered key; sign it "
                "with the key the sponsor registered")
        if facts.status != RoundStatus.CLOSED or not facts.job_digest:
            raise RuleViolation(
                "round_not_closed",
                f"round {request.round_id!r} is {facts.status}; its model can be collected once "
                "the round has closed with an accepted result")
        self._nonces.claim(request.nonce, request.issued_at + MAX_SKEW_S + 1, now)
        job_id = self._accepted_job(request.round_id, facts.job_digest, list(facts.metrics_micro))
        data, manifest = self._jobs.model_share(job_id)
        payload = receipt_payload(round_id=request.round_id, job_digest=facts.job_digest,
                                  node_index=self.node_index, sponsor_id=request.sponsor_id,
                                  nonce=request.nonce, data=data, manifest=manifest)
        receipt = canonical_json(payload)
        return ReleasedShare(data=data, receipt_json=receipt, signature=sign(self._key, receipt))

    def _release_frozen(self, request: FetchRequest, now: float) -> ReleasedShare:
        """A closed tournament's frozen model, to its modeler (`mpcnode.tournament_release`)."""
        share = frozen_share(self._jobs, self._market, self.node_index, request)
        key = self._market.provider_key(share.modeler)
        if not verify_signature(key, fetch_message(request), request.signature):
            raise PermissionDenied(
                f"the request is not signed by modeler {share.modeler!r}'s registered key; sign it "
                "with the key the modeler registered")
        self._nonces.claim(request.nonce, request.issued_at + MAX_SKEW_S + 1, now)
        payload = receipt_payload(round_id=request.round_id, job_digest=share.commitment,
                                  node_index=self.node_index, sponsor_id=request.sponsor_id,
                                  nonce=request.nonce, data=share.data, manifest=share.manifest,
                                  frozen=share.facts)
        receipt = canonical_json(payload)
        return ReleasedShare(data=share.data, receipt_json=receipt, signature=sign(self._key, receipt))

    def _check_shape(self, request: FetchRequest) -> None:
        if not request.round_id or not request.sponsor_id:
            raise InvalidInput("a model-share request names the round and the sponsor")
        if request.node_index != self.node_index:
            raise InvalidInput(f"this is node {self.node_index}, the request is for node "
                               f"{request.node_index}; send it to node {request.node_index}")

    def _accepted_job(self, round_id: str, digest: str, metrics_micro: list[int]) -> str:
        return accepted_job(self._jobs, self.node_index, round_id, digest, metrics_micro)


def accepted_job(jobs: JobRunner, node_index: int, round_id: str, digest: str,
                 metrics_micro: list[int]) -> str:
    """The finished job whose signed attestation is the round's accepted result (its
    `weights.bin` is this node's share of the round's model)."""
    accepted = attestation_message(round_id, digest, metrics_micro)
    prefix = f"{round_id}-"[:64]
    for directory in sorted(jobs.jobs_dir.iterdir()):
        # a round's jobs are named "<round>-<attempt>-<hex>" (coordinator.rounds)
        if not directory.is_dir() or not directory.name.startswith(prefix):
            continue
        try:
            status = jobs.status(directory.name)
        except (NotFound, InvalidInput):
            continue
        if status.state == JobState.DONE and status.result is not None \
                and status.result.attestation_payload \
                and _without_copies(status.result.attestation_payload) == accepted:
            return directory.name
    raise NotFound(
        f"node {node_index} holds no trained model for round {round_id!r} (job digest "
        f"{digest[:16]}...): its job's files are gone; the model cannot be used")


def _without_copies(payload: bytes) -> bytes:
    """The attestation as signed before copy detection: the round's facts this node reads
    carry the metrics, not the copy counts (which the ledger's result holds)."""
    body = json.loads(payload)
    return attestation_message(body["round_id"], body["job_digest"], list(body["metrics_micro"]))
