"""Start a coordinator: the ledger, the market and rounds logic, and two gRPC servers.

The public server (server-side TLS) serves the Market API to providers and nodes; the
cluster server (mutual TLS) serves the Admin API to admin certificates. The ledger file
is the store of record: on first start it is created with genesis and one
node_registered entry per node of the cluster manifest; on every later start it is
replayed, its node keys checked against the manifest, and any round that was running
when the coordinator stopped is aborted (`Rounds.recover`), a tournament job that was
running counts as failed and a tournament result without its settlement is settled
(`Tournaments.recover`). Each checkpoint it signs is
sent to the nodes to cosign (`coordinator.witnesses`) when its link to them is the real one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from coordinator.admin_servicer import AdminServicer
from coordinator.cluster_link import ClusterLink, NodeEndpoint
from coordinator.dealer_client import START_RETRY_S
from coordinator.inference import InferenceOrders
from coordinator.market import Market
from coordinator.market_servicer import MarketServicer
from coordinator.ownership import pay_all_dividends
from coordinator.rounds import LifecyclePolicy, Rounds
from coordinator.tournaments import Tournaments
from coordinator.witnesses import CheckpointWitnesses, WitnessLink
from ledger import Ledger
from ledger.cosignature import Cosigner
from mutualmind.errors import IntegrityError, InvalidInput
from mutualmind.transport import RunningServer, build_server, server_credentials
from mutualmind.transport.pki import load_manifest
from mutualmind.vocabulary.fixed_point import FRAC_BITS
from mutualmind.vocabulary.model_spec import WORKLOAD_RULES
from mutualmind.vocabulary.quotas import StorageQuota
from mutualmind.vocabulary.signing_keys import (
    generate_signing_key,
    load_private_key,
    save_private_key,
)
from mutualmind.vocabulary.states import EntryKind
from proto import admin_pb2, admin_pb2_grpc, market_pb2, market_pb2_grpc

log = logging.getLogger(__name__)

MARKET_SERVICE = market_pb2.DESCRIPTOR.services_by_name["Market"].full_name
ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name
LEDGER_FILE = "ledger.db"
KEY_FILE = "coordinator.signing.key"
DIVIDEND_PERIOD_S = 3600.0  # owners are paid hourly by default


@dataclass(frozen=True)
class CoordinatorConfig:
    certs_dir: Path
    data_dir: Path
    nodes: tuple[NodeEndpoint, ...]
    dealer_address: str
    public_address: str = "127.0.0.1:0"
    cluster_address: str = "127.0.0.1:0"
    mpc_ports: range = field(default=range(29500, 29600))
    origin: str = "mutualmind.local/ledger"
    quota: StorageQuota = StorageQuota()  # the nodes' quotas, applied at registration
    lifecycle: LifecyclePolicy = field(default_factory=LifecyclePolicy)
    sweep_interval_s: float = 60.0   # how often expired / failed rounds are looked for
    checkpoint_interval_s: float = 2.0  # a grown log gets a signed head within about this long
    # the settlement period: every model's fees go to its owners in one group commit this
    # often (coordinator.ownership.pay_all_dividends); 0: only on demand (PayDividend)
    dividend_period_s: float = DIVIDEND_PERIOD_S
    # node i's public address as providers elsewhere reach it (ListNodes); empty: nodes[i]'s
    advertised: tuple[str, ...] = ()
    # how long a round's start retries an unreachable dealer before the run fails
    dealer_start_retry_s: float = START_RETRY_S


class PeriodicTask:
    """A daemon thread that calls `task` every `interval_s` seconds until stopped.

    Used for the round sweep (an expired round is aborted even when nobody asks about it),
    the dividend period (every model's fees paid to its owners) and checkpoint signing (a grown log gets a signed head within seconds; it signs
    through `Ledger.checkpoint_if_grown`, which takes the ledger's writer mutex, so a note
    never lands between an append's rows). A failing tick is logged and tried again next
    time: it must never kill the coordinator.
    """

    def __init__(self, task: Callable[[], object], interval_s: float, *, name: str) -> None:
        self._task = task
        self._interval_s = interval_s
        self._name = name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for the thread, so no tick runs after what it uses is closed."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._task()
            except Exception:  # retried at the next tick
                log.exception("%s failed", self._name)


@dataclass
class RunningCoordinator:
    config: CoordinatorConfig
    ledger: Ledger
    rounds: Rounds
    public: RunningServer
    cluster: RunningServer
    link: ClusterLink
    aborted_on_start: list[str]
    sweeper: PeriodicTask | None = None
    signer: PeriodicTask | None = None
    witnesses: CheckpointWitnesses | None = None
    tournaments: Tournaments | None = None
    dividends: PeriodicTask | None = None   # None: the dividend period is off

    @property
    def public_port(self) -> int:
        return self.public.port

    @property
    def cluster_port(self) -> int:
        return self.cluster.port

    def stop(self, grace: float | None = 2.0) -> None:
        for task in (self.sweeper, self.dividends):
            if task is not None:
                task.stop()
        for event in (self.public.stop(grace), self.cluster.stop(grace)):
            event.wait()
        if self.witnesses is not None:
            self.witnesses.close()  # before the link: no cosigning round starts on closed channels
        close = getattr(self.link, "close", None)
        if close is not None:
            close()
        if self.signer is not None:
            self.signer.stop()  # after the servers: a last append may still be signed above
        self.ledger.close()


def open_or_create_ledger(config: CoordinatorConfig) -> Ledger:
    """Open the coordinator's ledger, creating it (genesis + nodes) on first start."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    key_path = config.data_dir / KEY_FILE
    if not key_path.exists():
        save_private_key(generate_signing_key(), key_path)
    key = load_private_key(key_path)
    manifest_nodes = load_manifest(config.certs_dir).nodes
    if len(manifest_nodes) != len(config.nodes):
        raise InvalidInput(f"the cluster manifest lists {len(manifest_nodes)} nodes but "
                           f"{len(config.nodes)} node addresses were given")
    path = config.data_dir / LEDGER_FILE
    if not path.exists():
        ledger = Ledger.create(path, key, params={"nodes": len(manifest_nodes), "frac_bits": FRAC_BITS,
                                                  "workload_rules": WORKLOAD_RULES}, origin=config.origin)
        ledger.append_many([
            (EntryKind.NODE_REGISTERED, {"node_index": m.node_index, "name": m.name,
                                 "signing_key": (m.signing_public_key or b"").hex()}, None)
            for m in manifest_nodes])
        return ledger
    ledger = Ledger.open(path, key)
    for m in manifest_nodes:
        if m.node_index is None or ledger.state.nodes.get(m.node_index) != m.signing_public_key:
            ledger.close()
            raise IntegrityError(f"node {m.node_index}'s signing key in the cluster manifest "
                                 "differs from the one on the ledger; wrong --certs folder?")
    return ledger


def start_coordinator(config: CoordinatorConfig, link: ClusterLink | None = None) -> RunningCoordinator:
    ledger = open_or_create_ledger(config)
    try:
        if link is None:
            from coordinator.cluster_link_client import GrpcClusterLink
            link = GrpcClusterLink(list(config.nodes), config.dealer_address, config.certs_dir,
                                   dealer_start_retry_s=config.dealer_start_retry_s)
        manifest_nodes = load_manifest(config.certs_dir).nodes
        names = [m.name for m in manifest_nodes]
        witnesses = None
        if isinstance(link, WitnessLink):  # in-process test links without nodes have no witnesses
            witnesses = CheckpointWitnesses(
                ledger, link, [Cosigner(m.name, m.signing_public_key or b"") for m in manifest_nodes])
        addresses = list(config.advertised) or [n.public_address for n in config.nodes]
        market = Market(ledger, node_count=len(config.nodes), quota=config.quota,
                        node_addresses=list(zip(names, addresses)))
        rounds = Rounds(ledger, link, config.data_dir / "rounds", mpc_ports=config.mpc_ports,
                        policy=config.lifecycle)
        tournaments = Tournaments(ledger, rounds, config.data_dir / "tournaments")
        aborted = rounds.recover() + tournaments.recover() + rounds.sweep() + tournaments.sweep()
        inference = InferenceOrders(ledger, rounds, tournaments=tournaments)
        inference.recover()
        public = build_server(
            [(market_pb2_grpc.add_MarketServicer_to_server,
              MarketServicer(market, rounds, witnesses, tournaments, inference))],
            address=config.public_address,
            credentials=server_credentials(config.certs_dir, "coordinator",
                                           require_client_cert=False),
            service_names=[MARKET_SERVICE])
        try:
            cluster = build_server(
                [(admin_pb2_grpc.add_AdminServicer_to_server, AdminServicer(market, rounds, link, tournaments))],
                address=config.cluster_address,
                credentials=server_credentials(config.certs_dir, "coordinator",
                                               require_client_cert=True),
                service_names=[ADMIN_SERVICE])
        except BaseException:
            public.stop(0)
            raise
    except BaseException:
        ledger.close()
        raise
    def sweep() -> None:
        rounds.sweep()
        tournaments.sweep()

    sweeper = PeriodicTask(sweep, config.sweep_interval_s, name="round-sweeper")
    sweeper.start()

    def sign_checkpoint() -> None:
        ledger.checkpoint_if_grown()
        if witnesses is not None:
            witnesses.cosign_newest()  # also heads signed by a round close or a request

    signer = PeriodicTask(sign_checkpoint, config.checkpoint_interval_s, name="checkpoint-signer")
    signer.start()
    dividends = None
    if config.dividend_period_s > 0:
        dividends = PeriodicTask(lambda: pay_all_dividends(ledger), config.dividend_period_s,
                                 name="dividend-payer")
        dividends.start()
    return RunningCoordinator(config, ledger, rounds, public, cluster, link, aborted, sweeper, signer,
                              witnesses, tournaments, dividends)
