"""Model-share release and the job-digest check on a real node server (TLS, real JobRunner
reading a finished job from disk), with the market played by `SignedMarket`: an
in-memory stand-in for the coordinator that hands out genuinely signed round terms and
provider registrations and runs them through the node's own checks (`check_round`,
`check_provider_registration`), like the coordinator-backed `CoordinatorMarket` does.
Fast edge cases here; the end-to-end path on real processes is tests/coordinator/rounds/test_model_collection.py.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mpcnode.job_check import JobDigestCheck
from mpcnode.jobs import JobRequest, JobRunner
from mpcnode.market_view import (
    RoundFacts,
    TournamentFacts,
    check_provider_registration,
    check_round,
)
from mpcnode.model_release import ModelRelease
from mpcnode.registry import InMemoryRegistry
from mpcnode.server import NodeConfig, RunningNode, start_node
from mpcnode.worker.run import RESULT_FILE, WEIGHTS_FILE
from mutualmind.errors import (
    IntegrityError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RuleViolation,
    Unavailable,
)
from mutualmind.transport import channel_credentials, open_channel
from mutualmind.transport.pki import load_signing_key
from mutualmind.vocabulary.dataset import TableSchema
from mutualmind.vocabulary.fixed_point import FRAC_BITS
from mutualmind.vocabulary.job_digest import job_digest
from mutualmind.vocabulary.model_fetch import (
    MAX_SKEW_S,
    check_released_share,
    sign_fetch,
)
from mutualmind.vocabulary.model_spec import to_micro
from mutualmind.vocabulary.payloads import request_message
from mutualmind.vocabulary.signed_requests import (
    new_nonce,
    signed_dataset_registration,
    signed_register_provider,
)
from mutualmind.vocabulary.signing_keys import generate_signing_key, sign
from provider.client import fetch_model_share

ROUND = "r-1"
METRICS = [0.25, 0.3, 0.2]
MANIFEST = [{"name": "bias", "shape": [1, 1], "offset": 0},
            {"name": "weight", "shape": [3, 1], "offset": 1}]


@dataclass
class SignedMarket:
    """Rounds and providers as the coordinator would report them, signed for real."""

    providers: dict[str, Any] = field(default_factory=dict)
    rounds: dict[str, dict[str, Any]] = field(default_factory=dict)
    tournaments: dict[str, str] = field(default_factory=dict)   # id -> status

    def register(self, name: str, key: Ed25519PrivateKey) -> None:
        self.providers[name] = signed_register_provider(key, name)

    def open(self, sponsor_key: Ed25519PrivateKey, payload: dict[str, Any]) -> None:
        self.rounds[payload["round_id"]] = {
            "opened": json.dumps(payload), "status": "open", "job_digest": "", "metrics": [],
            "signature": sign(sponsor_key, request_message("round_opened", payload))}

    def close(self, round_id: str, digest: str, metrics_micro: list[int]) -> None:
        self.rounds[round_id].update(status="closed", job_digest=digest, metrics=metrics_micro)

    def round(self, round_id: str) -> RoundFacts:
        r = self.rounds.get(round_id)
        if r is None:
            raise NotFound(f"no round {round_id!r}")
        sponsor = json.loads(r["opened"])["sponsor"]
        return check_round(round_id, r["opened"], r["signature"], self.provider_key(sponsor),
                           status=r["status"], job_digest=r["job_digest"], metrics_micro=r["metrics"])

    def tournament_status(self, tournament_id: str) -> str:
        if tournament_id not in self.tournaments:
            raise NotFound(f"no tournament {tournament_id!r}")
        return self.tournaments[tournament_id]

    def tournament(self, tournament_id: str) -> TournamentFacts:
        return TournamentFacts(tournament_id, self.tournament_status(tournament_id), {})

    def provider_key(self, provider_id: str) -> bytes:
        p = self.providers[provider_id]
        return check_provider_registration(provider_id, p.name, p.public_key, p.nonce, p.signature)


@dataclass
class World:
    market: SignedMarket
    registry: InMemoryRegistry
    sponsor: Ed25519PrivateKey
    other: Ed25519PrivateKey
    opened: dict[str, Any]
    digest: str


def _register_dataset(registry: InMemoryRegistry, key: Ed25519PrivateKey, provider: str,
                      dataset_id: str, purpose: str) -> None:
    reg = signed_dataset_registration(
        key, dataset_id=dataset_id, provider_id=provider, rows=10, cols=2, frac_bits=FRAC_BITS,
        schema=TableSchema(("x", "y"), ("x",), "y"),
        share_commitments=[secrets.token_bytes(32) for _ in range(3)], purpose=purpose)
    registry.add(reg, key.public_key().public_bytes_raw())


@pytest.fixture
def world() -> World:
    market, registry = SignedMarket(), InMemoryRegistry()
    sponsor, other = generate_signing_key(), generate_signing_key()
    market.register("sponsor", sponsor)
    market.register("other", other)
    _register_dataset(registry, other, "other", "a-data", "training")
    _register_dataset(registry, other, "other", "b-data", "training")
    _register_dataset(registry, sponsor, "sponsor", "val", "validation")
    opened = {"round_id": ROUND, "sponsor": "sponsor", "pool": 100,
              "model_spec": {"kind": "logistic", "lr": "0.5", "epochs": 3},
              "validation_dataset": "val", "datasets": ["a-data", "b-data"],
              "slash_rate_ppm": 0, "epsilon_micro": 0, "nonce": new_nonce()}
    market.open(sponsor, opened)
    datasets = {}
    for d in ("a-data", "b-data", "val"):
        reg = registry.get(d)
        datasets[d] = {"rows": reg.rows, "cols": reg.cols,
                       "share_commitments": [c.hex() for c in reg.share_commitments]}
    return World(market, registry, sponsor, other, opened, job_digest(opened, datasets))


def _finished_job(data_dir: Path, job_id: str, round_id: str, digest: str,
                  manifest: list[dict[str, Any]] = MANIFEST) -> bytes:
    """A job directory as a worker leaves it; JobRunner reads it back after a 'restart'."""
    directory = data_dir / "jobs" / job_id
    directory.mkdir(parents=True)
    request = {"job_id": job_id, "round_id": round_id, "world_size": 3, "rank": 0,
               "master_addr": "127.0.0.1", "master_port": 29500, "dataset_ids": ["a-data", "b-data"],
               "validation_dataset_id": "val", "model_spec_json": "{}", "job_digest": digest,
               "deadline_s": 60.0, "dealer_addr": "", "gloo_interface": ""}
    (directory / "request.json").write_text(json.dumps(request))
    size = sum(int(np.prod(t["shape"])) for t in manifest)
    weights = np.random.default_rng(0).integers(-2**62, 2**62, size=size, dtype=np.int64)
    (directory / WEIGHTS_FILE).write_bytes(weights.astype("<i8").tobytes())
    (directory / RESULT_FILE).write_text(json.dumps({
        "metrics": METRICS, "metric": "log_loss", "accuracy_full": 0.9, "comm": {}, "wall_s": 1.0,
        "weights": {"tensors": manifest}}))
    return weights.astype("<i8").tobytes()


@pytest.fixture
def node(tmp_path: Path, certs_dir: Path, world: World) -> Iterator[RunningNode]:
    running = start_node(NodeConfig(0, tmp_path / "node0", certs_dir), world.registry, world.market)
    yield running
    running.stop()


def _channel(node: RunningNode) -> grpc.Channel:
    return open_channel(f"127.0.0.1:{node.public_port}", channel_credentials(node.config.certs_dir, None),
                        server_name="node0")


def test_the_sponsor_gets_the_share_of_the_accepted_job_with_a_signed_receipt(
        node: RunningNode, world: World, node_public_keys: list[bytes]) -> None:
    _finished_job(node.config.data_dir, "r-1-1-aaaaaa", ROUND, "11" * 32)   # a failed attempt's digest
    # an MLP-sized share (3.2 MB) streams in several 1 MiB messages
    big = [{"name": "bias", "shape": [1, 1], "offset": 0},
           {"name": "weight", "shape": [400_000, 1], "offset": 1}]
    data = _finished_job(node.config.data_dir, "r-1-2-bbbbbb", ROUND, world.digest, big)
    world.market.close(ROUND, world.digest, [to_micro(m) for m in METRICS])
    with _channel(node) as channel:
        share = fetch_model_share(channel, world.sponsor, "sponsor", ROUND, 0,
                                  node_public_key=node_public_keys[0], job_digest=world.digest)
        assert len(data) > 3 * (1 << 20) and share.data == data
        assert share.manifest == big
        # another registered provider asking in its own name is not the sponsor
        with pytest.raises(PermissionDenied, match="only the sponsor"):
            fetch_model_share(channel, world.other, "other", ROUND, 0,
                              node_public_key=node_public_keys[0], job_digest=world.digest)


def test_no_share_before_the_round_closes_or_without_the_accepted_job(
        node: RunningNode, world: World, node_public_keys: list[bytes]) -> None:
    with _channel(node) as channel:
        def fetch() -> Any:
            return fetch_model_share(channel, world.sponsor, "sponsor", ROUND, 0,
                                     node_public_key=node_public_keys[0], job_digest=world.digest)
        _finished_job(node.config.data_dir, "r-1-1-aaaaaa", ROUND, world.digest)
        with pytest.raises(RuleViolation, match="round_not_closed"):
            fetch()
        # closed with other revealed values than this node attested: not its job
        world.market.close(ROUND, world.digest, [1, 2, 3])
        with pytest.raises(NotFound, match="holds no trained model"):
            fetch()


def _release(node: RunningNode, world: World, now: float) -> ModelRelease:
    return ModelRelease(node_index=0, jobs=JobRunner(node.config.data_dir, generate_signing_key()),
                        market=world.market, signing_key=generate_signing_key(), clock=lambda: now)


def test_freshness_window_and_nonce_replay(node: RunningNode, world: World) -> None:
    _finished_job(node.config.data_dir, "r-1-1-aaaaaa", ROUND, world.digest)
    world.market.close(ROUND, world.digest, [to_micro(m) for m in METRICS])
    now = 1_800_000_000.0
    release = _release(node, world, now)
    edge = sign_fetch(world.sponsor, ROUND, "sponsor", 0, new_nonce(), int(now) - MAX_SKEW_S)
    assert release.release(edge).data
    with pytest.raises(PermissionDenied, match="already answered"):
        release.release(edge)
    for issued_at in (int(now) - MAX_SKEW_S - 1, int(now) + MAX_SKEW_S + 1):
        with pytest.raises(PermissionDenied, match="clock"):
            release.release(sign_fetch(world.sponsor, ROUND, "sponsor", 0, new_nonce(), issued_at))
    with pytest.raises(InvalidInput, match="nonce"):
        release.release(sign_fetch(world.sponsor, ROUND, "sponsor", 0, "ab" * 8, int(now)))


def _fetch(node: RunningNode, request: Any) -> bytes:
    """Send one hand-built signed request to `node`'s share port; the bytes it streams."""
    from mutualmind.transport import raise_from_rpc_error
    from proto import node_pb2, node_pb2_grpc

    message = node_pb2.FetchModelShareRequest(
        round_id=request.round_id, sponsor_id=request.sponsor_id, node_index=request.node_index,
        nonce=request.nonce, issued_at=request.issued_at, signature=request.signature)
    with _channel(node) as channel:
        try:
            return b"".join(m.data for m in node_pb2_grpc.ShareIntakeStub(channel)
                            .FetchModelShare(message, timeout=30))
        except grpc.RpcError as err:
            raise_from_rpc_error(err)


def test_a_request_answered_before_a_restart_is_still_a_replay_after_it(
        tmp_path: Path, certs_dir: Path, world: World) -> None:
    data_dir = tmp_path / "node0-restarts"
    data = _finished_job(data_dir, "r-1-1-aaaaaa", ROUND, world.digest)
    world.market.close(ROUND, world.digest, [to_micro(m) for m in METRICS])
    request = sign_fetch(world.sponsor, ROUND, "sponsor", 0, new_nonce(), int(time.time()))
    first = start_node(NodeConfig(0, data_dir, certs_dir), world.registry, world.market)
    try:
        assert _fetch(first, request) == data
    finally:
        first.stop()
    again = start_node(NodeConfig(0, data_dir, certs_dir), world.registry, world.market)
    try:
        with pytest.raises(PermissionDenied, match="already answered"):
            _fetch(again, request)
        fresh = sign_fetch(world.sponsor, ROUND, "sponsor", 0, new_nonce(), int(time.time()))
        assert _fetch(again, fresh) == data     # a new request is served as before
    finally:
        again.stop()


def test_nonces_are_pruned_once_they_cannot_be_fresh(tmp_path: Path) -> None:
    from mpcnode.nonce_store import NonceStore

    store = NonceStore(tmp_path / "nonces.sqlite", limit=2)
    store.claim("a" * 32, forget_after=100.0, now=10.0)
    store.claim("b" * 32, forget_after=200.0, now=10.0)
    with pytest.raises(RuleViolation, match="too_many_requests"):
        store.claim("c" * 32, forget_after=300.0, now=50.0)
    store.claim("c" * 32, forget_after=300.0, now=150.0)    # "a" has lapsed and is pruned
    with pytest.raises(PermissionDenied, match="already answered"):
        store.claim("b" * 32, forget_after=400.0, now=150.0)
    store.close()
    reopened = NonceStore(tmp_path / "nonces.sqlite", limit=2)
    with pytest.raises(PermissionDenied, match="already answered"):
        reopened.claim("c" * 32, forget_after=400.0, now=160.0)
    reopened.claim("a" * 32, forget_after=400.0, now=250.0)  # both "a" and "b" lapsed
    reopened.close()


def test_terms_or_keys_the_sponsor_did_not_sign_are_refused(node: RunningNode, world: World) -> None:
    world.market.close(ROUND, world.digest, [to_micro(m) for m in METRICS])
    now = time.time()
    release = _release(node, world, now)
    request = sign_fetch(world.sponsor, ROUND, "sponsor", 0, new_nonce(), int(now))
    # a coordinator that names another sponsor in the terms (without a new signature)
    entry = world.market.rounds[ROUND]
    forged = dict(json.loads(entry["opened"]), sponsor="other")
    entry["opened"] = json.dumps(forged)
    with pytest.raises(IntegrityError, match="not signed by its sponsor"):
        release.release(request)
    # a coordinator that swaps the sponsor's key for one it holds
    world.market.open(world.sponsor, world.opened)
    world.market.close(ROUND, world.digest, [to_micro(m) for m in METRICS])
    world.market.providers["sponsor"].public_key = world.other.public_key().public_bytes_raw()
    with pytest.raises(IntegrityError, match="not signed by the key it names"):
        release.release(request)


def test_a_node_without_a_coordinator_releases_nothing(
        tmp_path: Path, certs_dir: Path, world: World, node_public_keys: list[bytes]) -> None:
    bare = start_node(NodeConfig(1, tmp_path / "node1", certs_dir), world.registry)
    try:
        channel = open_channel(f"127.0.0.1:{bare.public_port}", channel_credentials(certs_dir, None),
                               server_name="node1")
        with channel, pytest.raises(Unavailable, match="--coordinator"):
            fetch_model_share(channel, world.sponsor, "sponsor", ROUND, 1,
                              node_public_key=node_public_keys[1], job_digest=world.digest)
    finally:
        bare.stop()


def test_the_sponsor_rejects_a_receipt_that_does_not_match(certs_dir: Path, world: World) -> None:
    key = load_signing_key(certs_dir, 0)
    public = key.public_key().public_bytes_raw()
    data = b"\x01" * 32
    from mutualmind.vocabulary.canonical_json import canonical_json
    from mutualmind.vocabulary.model_fetch import receipt_payload

    nonce = new_nonce()
    receipt = canonical_json(receipt_payload(round_id=ROUND, job_digest=world.digest, node_index=0,
                                             sponsor_id="sponsor", nonce=nonce, data=data,
                                             manifest=MANIFEST))
    args: dict[str, Any] = dict(round_id=ROUND, job_digest=world.digest, node_index=0,
                                sponsor_id="sponsor", nonce=nonce)
    assert check_released_share(data, receipt, sign(key, receipt), public, **args) == MANIFEST
    with pytest.raises(IntegrityError, match="sha256"):
        check_released_share(b"\x02" + data[1:], receipt, sign(key, receipt), public, **args)
    with pytest.raises(IntegrityError, match="nonce"):
        check_released_share(data, receipt, sign(key, receipt), public, **{**args, "nonce": new_nonce()})
    with pytest.raises(IntegrityError, match="not signed by node 0"):
        check_released_share(data, receipt, sign(generate_signing_key(), receipt), public, **args)


# -- the job-digest check ---------------------------------------------------------------

def _job(world: World, **overrides: Any) -> JobRequest:
    from mutualmind.vocabulary.canonical_json import canonical_json

    fields: dict[str, Any] = dict(
        job_id="r-1-1-cccccc", round_id=ROUND, world_size=3, rank=0, master_addr="127.0.0.1",
        master_port=29500, dataset_ids=("a-data", "b-data"), validation_dataset_id="val",
        model_spec_json=canonical_json(world.opened["model_spec"]).decode(),
        job_digest=bytes.fromhex(world.digest), deadline_s=60.0, beacon=bytes(32))
    fields.update(overrides)
    return JobRequest(**fields)


def test_job_digest_check_accepts_the_round_and_refuses_everything_else(world: World) -> None:
    check = JobDigestCheck(world.market, world.registry)
    check.check(_job(world))                                  # the honest job passes
    with pytest.raises(IntegrityError, match="cannot reproduce"):
        check.check(_job(world, job_digest=bytes(32)))
    with pytest.raises(IntegrityError, match="model spec"):
        check.check(_job(world, model_spec_json='{"epochs":3,"kind":"logistic","lr":0.5}'))
    with pytest.raises(IntegrityError, match="training datasets"):
        check.check(_job(world, dataset_ids=("b-data", "a-data")))
    with pytest.raises(NotFound):
        check.check(_job(world, round_id="nope"))
    world.market.close(ROUND, world.digest, [1, 2, 3])
    with pytest.raises(RuleViolation, match="round_not_runnable"):
        check.check(_job(world))


def test_a_refused_start_job_leaves_no_job_behind(node: RunningNode, world: World) -> None:
    from proto import node_pb2, node_pb2_grpc

    channel = open_channel(f"127.0.0.1:{node.cluster_port}",
                           channel_credentials(node.config.certs_dir, "admin"), server_name="node0")
    job = _job(world, job_digest=bytes(32))
    spec = node_pb2.JobSpec(job_id=job.job_id, round_id=job.round_id, world_size=3, rank=0,
                            master_addr="127.0.0.1", master_port=29500, dataset_ids=list(job.dataset_ids),
                            validation_dataset_id="val", model_spec_json=job.model_spec_json,
                            job_digest=job.job_digest, deadline_s=60.0, beacon=job.beacon)
    with channel:
        with pytest.raises(grpc.RpcError) as err:
            node_pb2_grpc.NodeControlStub(channel).StartJob(spec, timeout=10)
    assert err.value.code() == grpc.StatusCode.DATA_LOSS
    assert "cannot reproduce" in err.value.details()
    assert not (node.config.data_dir / "jobs" / job.job_id).exists()
