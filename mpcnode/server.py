"""Start a node: a public TLS port for share uploads and a mutual-TLS cluster port.

Two servers because one grpc.Server serves every service on every port it has: the
public port (server-side TLS only; providers are outside the cluster and prove
themselves with signatures) must not expose NodeControl, and the cluster port requires
a certificate from the cluster CA. Both get health, reflection, limits and keepalive
from `mutualmind.transport.build_server`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mpcnode.inference_jobs import NodeInference
from mpcnode.inference_retention import RETENTION_S, InferenceRetention
from mpcnode.job_check import JobDigestCheck
from mpcnode.jobs import JobRunner
from mpcnode.market_view import MarketView
from mpcnode.model_release import ModelRelease
from mpcnode.nonce_store import NONCE_FILE, NonceStore
from mpcnode.registry import DatasetRegistry
from mpcnode.servicer import NodeControlServicer, ShareIntakeServicer
from mpcnode.share_intake import ShareIntake
from mpcnode.share_store import ShareStore
from mpcnode.tournament_check import TournamentJobCheck
from mpcnode.upload_guard import StallPolicy, StreamLimits, UploadGuard
from mpcnode.witness import Witness
from mpcnode.worker.job_spec import DEFAULT_BUDGET_BYTES
from mutualmind.errors import InvalidInput
from mutualmind.transport import RunningServer, build_server, server_credentials
from mutualmind.transport.pki import load_manifest, load_signing_key
from mutualmind.vocabulary.quotas import StorageQuota
from proto import node_pb2, node_pb2_grpc

SHARE_INTAKE_SERVICE = node_pb2.DESCRIPTOR.services_by_name["ShareIntake"].full_name
NODE_CONTROL_SERVICE = node_pb2.DESCRIPTOR.services_by_name["NodeControl"].full_name
_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeConfig:
    """Everything a node needs to start; addresses with port 0 pick a free port."""

    node_index: int
    data_dir: Path
    certs_dir: Path
    public_address: str = "127.0.0.1:0"
    cluster_address: str = "127.0.0.1:0"
    quota: StorageQuota = StorageQuota()  # share bytes held: in total and per provider
    max_workers: int = 8
    stall: StallPolicy = StallPolicy()  # when a slow upload is cancelled
    streams: StreamLimits = StreamLimits()  # concurrent uploads: per provider and in total
    worker_memory_bytes: int = DEFAULT_BUDGET_BYTES  # per MPC worker process (memory_budget)
    ledger_vkey: str | None = None  # the coordinator's checkpoint key; None: pinned on first use
    # MPC workers started ahead of their jobs (`mpcnode.ready_workers`); `node serve`
    # defaults to 1, the library to 0 so that tests which run no job start no torch
    ready_workers: int = 0
    # how long an order's query and prediction shares stay after this node delivered
    # them (`mpcnode.inference_retention`)
    inference_retention_s: float = RETENTION_S

    def __post_init__(self) -> None:
        # absolute from here on: job specs hand these folders to MPC workers, and a ready
        # worker (started ahead, `mpcnode.ready_workers`) refuses a relative path, which it
        # would read against its own working directory (`node serve --data-dir node-data`)
        object.__setattr__(self, "data_dir", Path(self.data_dir).absolute())
        object.__setattr__(self, "certs_dir", Path(self.certs_dir).absolute())

    @property
    def member_name(self) -> str:
        return f"node{self.node_index}"


@dataclass
class RunningNode:
    """A started node: both servers, their ports, and its share store."""

    config: NodeConfig
    public: RunningServer
    cluster: RunningServer
    store: ShareStore
    jobs: JobRunner | None = None
    release: ModelRelease | None = None
    retention: InferenceRetention | None = None

    @property
    def public_port(self) -> int:
        return self.public.port

    @property
    def cluster_port(self) -> int:
        return self.cluster.port

    def stop(self, grace: float | None = 2.0) -> None:
        """Stop both servers and wait until they are down."""
        if self.retention is not None:
            self.retention.stop()
        if self.jobs is not None:
            self.jobs.close()  # no MPC worker outlives its node
        events = [self.public.stop(grace), self.cluster.stop(grace)]
        for event in events:
            event.wait()
        if self.release is not None:
            self.release.close()  # after the servers: no request is between claim and answer

    def wait(self) -> None:
        self.public.wait()


def start_node(config: NodeConfig, registry: DatasetRegistry,
               market: MarketView | None = None) -> RunningNode:
    """Open the store (clearing temp dirs a crash left), then start both servers.

    With `market` (the coordinator's view of rounds and providers, as `node serve` always
    passes) the node checks every job's digest before it runs it and releases model
    shares to a closed round's sponsor. Without it (tests and benchmarks that drive a node
    with no coordinator) it runs jobs unchecked and refuses every model-share request.
    """
    if config.node_index < 0:
        raise InvalidInput(f"node index must be 0 or more, got {config.node_index}")
    store = ShareStore(config.data_dir)
    store.remove_stale_temp()
    signing_key = load_signing_key(Path(config.certs_dir), config.node_index)
    intake = ShareIntake(
        node_index=config.node_index,
        store=store,
        registry=registry,
        signing_key=signing_key,
        quota=config.quota,
    )
    jobs = JobRunner(config.data_dir, signing_key, worker_memory_bytes=config.worker_memory_bytes,
                     certs_dir=config.certs_dir, ready_workers=config.ready_workers)
    witness = Witness(config.data_dir, load_manifest(Path(config.certs_dir)).node_name(config.node_index),
                      signing_key, pinned_vkey=config.ledger_vkey)
    release = job_check = inference = retention = None
    if market is not None:
        nonces = NonceStore(jobs.data_dir / NONCE_FILE)   # one store: a nonce is single-use
        release = ModelRelease(node_index=config.node_index, jobs=jobs, market=market,
                               signing_key=signing_key, nonces=nonces)
        tournament_check = TournamentJobCheck(market, registry, jobs.frozen_commitments)
        job_check = JobDigestCheck(market, registry, tournament_check)
        inference = NodeInference(node_index=config.node_index, jobs=jobs, market=market,
                                  registry=registry, signing_key=signing_key, nonces=nonces,
                                  tournaments=tournament_check)
        retention = InferenceRetention(store, jobs, retention_s=config.inference_retention_s)
    else:
        _LOG.warning("node%d has no coordinator link: job digests are not checked and model "
                     "shares cannot be collected", config.node_index)
    try:
        public = build_server(
            [(node_pb2_grpc.add_ShareIntakeServicer_to_server,
              ShareIntakeServicer(intake, UploadGuard(config.stall, config.streams.for_pool(config.max_workers)),
                                  release, inference))],
            address=config.public_address,
            credentials=server_credentials(Path(config.certs_dir), config.member_name, require_client_cert=False),
            service_names=[SHARE_INTAKE_SERVICE],
            max_workers=config.max_workers,
        )
    except BaseException:
        jobs.close()  # no ready worker outlives a node that did not start
        raise
    try:
        cluster = build_server(
            [(node_pb2_grpc.add_NodeControlServicer_to_server,
              NodeControlServicer(store, jobs, job_check, witness, inference))],
            address=config.cluster_address,
            credentials=server_credentials(Path(config.certs_dir), config.member_name, require_client_cert=True),
            service_names=[NODE_CONTROL_SERVICE],
            max_workers=config.max_workers,
        )
    except BaseException:
        public.stop(None).wait()
        jobs.close()
        raise
    if retention is not None:
        retention.start()
    return RunningNode(config=config, public=public, cluster=cluster, store=store, jobs=jobs,
                       release=release, retention=retention)
