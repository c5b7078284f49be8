"""A node runs (and signs) a tournament job only when the signed records make it that job.

Real Ed25519 keys, the node's real `TournamentJobCheck` and `JobRunner` and the same
digest functions the ledger replays; the market and registry are the in-memory ones
the round checks use (signatures verified for real on every read).
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mpcnode.inference_jobs import NodeInference
from mpcnode.jobs import JobRequest, JobRunner
from mpcnode.nonce_store import NonceStore
from mpcnode.registry import InMemoryRegistry
from mpcnode.tournament_check import TournamentJobCheck
from mutualmind.errors import (
    IntegrityError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RuleViolation,
)
from mutualmind.vocabulary.dataset import TableSchema
from mutualmind.vocabulary.fixed_point import FRAC_BITS
from mutualmind.vocabulary.inference import INFERENCE_JOB, TRAINING_JOB, inference_job_digest
from mutualmind.vocabulary.signed_requests import signed_dataset_registration
from mutualmind.vocabulary.signing_keys import generate_signing_key
from mutualmind.vocabulary.tournament import (
    ModelSubmission,
    TournamentTerms,
    freeze_digest,
    resolution_digest,
    signed_model_submit,
    signed_resolution,
    signed_tournament_open,
)
from mutualmind.vocabulary.tournament_job import (
    FREEZE,
    PREDICT,
    RESOLVE,
    SignedRecord,
    TournamentOrder,
)
from tests.mpcnode.test_model_release import SignedMarket, _register_dataset

COMMITMENTS = [secrets.token_hex(32), secrets.token_hex(32)]


def _world() -> tuple[SignedMarket, InMemoryRegistry, dict[str, Any]]:
    market, registry = SignedMarket(), InMemoryRegistry()
    keys = {name: generate_signing_key() for name in ("sponsor", "ann", "bob", "data")}
    for name, key in keys.items():
        market.register(name, key)
    for d in ("a-data", "b-data", "c-data"):
        _register_dataset(registry, keys["data"], "data", d, "training")
    _register_dataset(registry, keys["sponsor"], "sponsor", "res", "validation")
    _register_dataset(registry, keys["bob"], "bob", "bob-res", "validation")
    terms = TournamentTerms(tournament_id="t1", sponsor="sponsor", label_kind="binary", metric="log_loss",
                            pool=100, threshold_micro=700_000, deadline_ms=2_000_000_000_000,
                            datasets=("a-data", "b-data", "c-data"))
    opened = SignedRecord(*signed_tournament_open(keys["sponsor"], terms))
    subs = tuple(SignedRecord(*signed_model_submit(keys[who], ModelSubmission(
        "t1", f"m-{who}", who, {"kind": "logistic"}, datasets, 10, 5_000)))
        for who, datasets in (("ann", ("b-data", "a-data")), ("bob", ("c-data",))))
    return market, registry, {"keys": keys, "opened": opened, "subs": subs}


def _request(order: TournamentOrder, digest: str, datasets: tuple[str, ...]) -> JobRequest:
    return JobRequest(job_id=f"t1-{order.phase}", round_id="t1", world_size=3, rank=0, master_addr="127.0.0.1",
                      master_port=29500, dataset_ids=datasets, validation_dataset_id="", model_spec_json="{}",
                      job_digest=bytes.fromhex(digest), deadline_s=60.0, tournament_json=order.to_json())


def test_the_freeze_is_checked_from_the_signatures_and_registrations() -> None:
    market, registry, w = _world()
    check = TournamentJobCheck(market, registry, lambda job: COMMITMENTS)
    order = TournamentOrder(FREEZE, w["opened"], w["subs"])
    regs = {d: registry.get(d).payload for d in ("a-data", "b-data", "c-data")}
    digest = freeze_digest(w["opened"].payload, [s.payload for s in w["subs"]], regs)
    datasets = ("a-data", "b-data", "c-data")        # every chosen one, in the eligible order
    check.check(_request(order, digest, datasets))    # the honest job passes
    with pytest.raises(IntegrityError, match="cannot reproduce"):
        check.check(_request(order, secrets.token_hex(32), datasets))
    with pytest.raises(IntegrityError, match="loads datasets"):
        check.check(_request(order, digest, ("a-data", "b-data")))
    # a model the coordinator made up: the payload changed after its modeler signed it
    forged = replace(w["subs"][1], payload={**w["subs"][1].payload, "stake": 1})
    with pytest.raises(IntegrityError, match="not signed by 'bob'"):
        check.check(_request(TournamentOrder(FREEZE, w["opened"], (w["subs"][0], forged)), digest, datasets))


def test_the_resolution_is_checked_against_this_nodes_own_freeze() -> None:
    market, registry, w = _world()
    regs = {d: registry.get(d).payload for d in ("a-data", "b-data", "c-data")}
    frozen = freeze_digest(w["opened"].payload, [s.payload for s in w["subs"]], regs)
    resolution = SignedRecord(*signed_resolution(w["keys"]["sponsor"], "t1", "sponsor", "res"))
    order = TournamentOrder(RESOLVE, w["opened"], w["subs"], resolution, "t1-freeze")
    digest = resolution_digest(frozen, COMMITMENTS, [10, 10], 1_000_000, "res", registry.get("res").payload)
    TournamentJobCheck(market, registry, lambda job: COMMITMENTS).check(_request(order, digest, ("res",)))
    # the node froze other shares than the coordinator's digest names
    other = TournamentJobCheck(market, registry, lambda job: COMMITMENTS[::-1])
    with pytest.raises(IntegrityError, match="cannot reproduce"):
        other.check(_request(order, digest, ("res",)))
    # published by someone the sponsor did not name
    by_bob = SignedRecord(*signed_resolution(w["keys"]["bob"], "t1", "bob", "bob-res"))
    with pytest.raises(PermissionDenied, match="published by 'sponsor', not 'bob'"):
        TournamentJobCheck(market, registry, lambda job: COMMITMENTS).check(
            _request(TournamentOrder(RESOLVE, w["opened"], w["subs"], by_bob, "t1-freeze"), digest, ("bob-res",)))


def test_a_resolve_without_a_finished_freeze_on_this_node_starts_nothing(tmp_path: Path) -> None:
    _, _, w = _world()
    runner = JobRunner(tmp_path, generate_signing_key())
    resolution = SignedRecord(*signed_resolution(w["keys"]["sponsor"], "t1", "sponsor", "res"))
    order = TournamentOrder(RESOLVE, w["opened"], w["subs"], resolution, "t1-freeze")
    with pytest.raises(NotFound):
        runner.start(_request(order, secrets.token_hex(32), ("res",)))
    assert not any((tmp_path / "jobs").iterdir())


def test_a_metamodel_inference_job_is_checked_from_the_records_and_this_nodes_freeze(tmp_path: Path) -> None:
    """Issue 16: an inference order of a closed tournament's metamodel carries the
    tournament's signed records in the predict phase; the node recomputes the resolution
    digest over its own freeze commitments, binds the query rows to it, asks that the
    tournament closed, and runs on its own freeze job's folder. A predict phase is never
    a training job, and an inference job never runs another phase."""
    market, registry, w = _world()
    query = signed_dataset_registration(
        w["keys"]["bob"], dataset_id="q-1", provider_id="bob", rows=4, cols=1, frac_bits=FRAC_BITS,
        schema=TableSchema(("x",), ("x",), ""), share_commitments=[secrets.token_bytes(32) for _ in range(3)],
        purpose="inference")
    registry.add(query, w["keys"]["bob"].public_key().public_bytes_raw())
    regs = {d: registry.get(d).payload for d in ("a-data", "b-data", "c-data")}
    frozen = freeze_digest(w["opened"].payload, [s.payload for s in w["subs"]], regs)
    resolved = resolution_digest(frozen, COMMITMENTS, [10, 10], 1_000_000, "res", registry.get("res").payload)
    resolution = SignedRecord(*signed_resolution(w["keys"]["sponsor"], "t1", "sponsor", "res"))
    order = TournamentOrder(PREDICT, w["opened"], w["subs"], resolution, "t1-freeze")
    commitments = [c.hex() for c in registry.get("q-1").share_commitments]
    request = replace(_request(order, inference_job_digest("q-1", "t1", resolved, commitments), ("q-1",)),
                      job_id="q-1", kind=INFERENCE_JOB)
    checks = TournamentJobCheck(market, registry, lambda job: COMMITMENTS)
    jobs = JobRunner(tmp_path, generate_signing_key())
    node = NodeInference(node_index=0, jobs=jobs, market=market, registry=registry,
                         signing_key=generate_signing_key(), nonces=NonceStore(tmp_path / "nonces"),
                         tournaments=checks)
    market.tournaments["t1"] = "result"
    with pytest.raises(RuleViolation, match="once the tournament has closed"):
        node.check(request)
    market.tournaments["t1"] = "closed"
    assert node.check(request).model_dir == str(jobs.jobs_dir / "t1-freeze")
    other_node = NodeInference(node_index=0, jobs=jobs, market=market, registry=registry,
                               signing_key=generate_signing_key(), nonces=NonceStore(tmp_path / "nonces2"),
                               tournaments=TournamentJobCheck(market, registry, lambda job: COMMITMENTS[::-1]))
    with pytest.raises(IntegrityError, match="cannot reproduce"):   # other frozen shares on this node
        other_node.check(request)
    with pytest.raises(IntegrityError, match="cannot reproduce"):   # a digest over other query rows
        node.check(replace(request, job_digest=bytes.fromhex(inference_job_digest("q-1", "t1", resolved,
                                                                                  commitments[::-1]))))
    resolve = TournamentOrder(RESOLVE, w["opened"], w["subs"], resolution, "t1-freeze")
    with pytest.raises(InvalidInput, match="predict"):
        node.check(replace(request, tournament_json=resolve.to_json()))
    with pytest.raises(InvalidInput, match="only as an inference job"):
        checks.check(replace(request, kind=TRAINING_JOB))
