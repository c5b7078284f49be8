"""Generated hostile requests against every public RPC of a live cluster.

A real coordinator (ledger on SQLite) and 3 real nodes, every call over real TLS on
loopback: the coordinator's Market API and each node's public ShareIntake API. Hypothesis
generates strings (unicode, path tricks, huge), sizes and integers at the int64/uint64
edges, lists long and short, raw bytes, broken streams, and replays of valid signed
requests. Every request must end with a clear status (never INTERNAL or UNKNOWN, always
a message), leave the ledger unchanged (size and Merkle root) and the nodes' share
directories as they were; the ledger still verifies at the end.

The numbers (requests sent, requests that found something) are printed at the end of
the module (`pytest -s`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from coordinator.cluster_link import NodeEndpoint
from coordinator.server import CoordinatorConfig, RunningCoordinator, start_coordinator
from ledger import verify_ledger
from mpcnode.coordinator_client import CoordinatorMarket, CoordinatorRegistry
from mpcnode.server import NodeConfig, RunningNode, start_node
from mutualmind.transport import channel_credentials, open_channel
from mutualmind.transport.pki import create_cluster
from mutualmind.vocabulary.dataset import TableSchema
from mutualmind.vocabulary.signed_requests import signed_register_provider, signed_stake
from mutualmind.vocabulary.signing_keys import generate_signing_key
from proto import common_pb2, market_pb2, market_pb2_grpc, node_pb2, node_pb2_grpc
from provider.client import MarketClient, upload_shares
from provider.sharing import SharedTable
from tests.provider.conftest import NoJobsLink

NODES = 3
SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FORBIDDEN = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)


@dataclass
class Live:
    """The running cluster, stubs to its public ports, and what a fuzzed call may not change."""

    coordinator: RunningCoordinator
    nodes: list[RunningNode]
    market: market_pb2_grpc.MarketStub
    intake: list[node_pb2_grpc.ShareIntakeStub]
    replays: dict[str, Any]
    sent: int = 0
    findings: list[str] = field(default_factory=list)

    def snapshot(self) -> tuple[int, bytes, list[list[str]]]:
        ledger = self.coordinator.ledger
        shares = [sorted(p.name for p in n.store.shares_dir.iterdir()) for n in self.nodes]
        return ledger.size, ledger.root_hash(), shares


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("fuzz")
    certs = root / "certs"
    create_cluster(certs, NODES)
    endpoints = tuple(NodeEndpoint(index=i, name=f"node{i}", public_address="127.0.0.1:1",
                                   cluster_address="127.0.0.1:1") for i in range(NODES))
    coordinator = start_coordinator(
        CoordinatorConfig(certs_dir=certs, data_dir=root / "coordinator", nodes=endpoints,
                          dealer_address="127.0.0.1:1"), link=NoJobsLink(endpoints))
    channels: list[grpc.Channel] = []
    nodes: list[RunningNode] = []
    try:
        market_address = f"127.0.0.1:{coordinator.public_port}"
        for i in range(NODES):
            channel = open_channel(market_address, channel_credentials(certs, f"node{i}"))
            channels.append(channel)
            nodes.append(start_node(NodeConfig(node_index=i, data_dir=root / f"node{i}", certs_dir=certs),
                                    CoordinatorRegistry(channel), CoordinatorMarket(channel)))
        public = channel_credentials(certs, None)
        provider_channel = open_channel(market_address, public)
        node_channels = [open_channel(f"127.0.0.1:{n.public_port}", public) for n in nodes]
        channels += [provider_channel, *node_channels]
        live = Live(coordinator, nodes, market_pb2_grpc.MarketStub(provider_channel),
                    [node_pb2_grpc.ShareIntakeStub(c) for c in node_channels], {})
        _populate(live, provider_channel, node_channels)
        yield live
        print(f"\nfuzz: {live.sent} requests sent, {len(live.findings)} found something")
        for finding in live.findings[:20]:
            print("  ", finding)
    finally:
        for node in nodes:
            node.stop(grace=None)
        for channel in channels:
            channel.close()
        coordinator.stop(grace=None)


def _populate(live: Live, channel: grpc.Channel, node_channels: list[grpc.Channel]) -> None:
    """A provider with a registered, uploaded, staked dataset; its valid signed requests
    are kept to be replayed."""
    key = generate_signing_key()
    client = MarketClient(channel, key, "alice")
    register = signed_register_provider(key, "alice")
    live.market.RegisterProvider(register, timeout=10)
    rng = np.random.default_rng(0)  # test bytes (real shares come from os.urandom)
    shares = [rng.integers(-(2**63), 2**63 - 1, size=(40, 3), dtype=np.int64) for _ in range(NODES)]
    shared = SharedTable(schema=TableSchema(("a", "b", "y"), ("a", "b"), "y"), rows=40, cols=3,
                         frac_bits=16, shares=shares,
                         commitments=[hashlib.sha256(s.tobytes()).digest() for s in shares])
    registration, _ = client.register_dataset("alice-ds", shared)
    upload_shares(node_channels, "alice-ds", shared)
    live.coordinator.ledger.append("mint", {"to": "alice", "amount": 10, "memo": "fuzz"})
    stake = signed_stake(key, "alice", "alice-ds", 10)
    live.market.Stake(stake, timeout=10)
    live.replays.update(register=register, registration=registration, stake=stake,
                        share0=shared.shares[0].tobytes(),
                        header0=node_pb2.ShareHeader(dataset_id="alice-ds", node_index=0, rows=shared.rows,
                                                     cols=shared.cols, frac_bits=16))


def _fire(live: Live, name: str, call: Callable[[], Any]) -> None:
    """Send one request; record (and then fail on) anything but a clear refusal."""
    before = live.snapshot()
    live.sent += 1
    problem = None
    try:
        call()
    except grpc.RpcError as err:
        if err.code() in FORBIDDEN:
            problem = f"{name}: {err.code().name}: {err.details()}"
        elif not (err.details() or "").strip():
            problem = f"{name}: {err.code().name} with no message"
    except ValueError as err:  # the client could not even encode it: a test bug, not a finding
        raise AssertionError(f"{name}: request not encodable: {err}") from err
    if problem is None and live.snapshot() != before:
        problem = f"{name}: the ledger or a node's shares changed"
    if problem is not None:
        live.findings.append(problem)  # reported by `_fuzz` once the run is over


def _fuzz(live: Live, run: Callable[[], None]) -> None:
    """Run one generated campaign; fail listing what it found (after all its requests)."""
    before = len(live.findings)
    run()
    found = live.findings[before:]
    assert not found, f"{len(found)} requests found something:\n" + "\n".join(found[:10])


# -- strategies ---------------------------------------------------------------------

UTF8 = st.characters(blacklist_categories=("Cs",))  # proto3 strings are valid UTF-8
SPECIAL_STRINGS = ["", "alice", "alice-ds", "../x", "..", "../../etc/passwd", "/etc/passwd",
                   "a" * 129, "a" * 65, "\x00", "\u202egnp.exe", "𝕏" * 40, "r1", "%s%n%x",
                   "a/b", "con", "x" * 5000, " alice", "alice\n", "DROP TABLE entries;--"]
strings = st.one_of(st.sampled_from(SPECIAL_STRINGS), st.text(UTF8, max_size=80),
                    st.builds(lambda n, c: c * n, st.integers(0, 400_000), st.sampled_from("a€𝕏")))
INT64_EDGES = [0, 1, -1, 2**31 - 1, 2**31, 2**62 - 1, 2**62, 2**63 - 1, -(2**63), -(2**62)]
int64s = st.one_of(st.sampled_from(INT64_EDGES), st.integers(-(2**63), 2**63 - 1))
uint64s = st.one_of(st.sampled_from([0, 1, 2, 5, 2**32, 2**63 - 1, 2**63, 2**64 - 1]),
                    st.integers(0, 2**64 - 1))
uint32s = st.one_of(st.sampled_from([0, 1, 2, 3, 16, 2**31 - 1, 2**32 - 1]), st.integers(0, 2**32 - 1))
blobs = st.one_of(st.sampled_from([b"", bytes(32), bytes(64), b"\xff" * 64, bytes(65)]),
                  st.binary(max_size=100))
string_lists = st.one_of(st.lists(strings, max_size=6),
                         st.builds(lambda n: [f"c{i}" for i in range(n)], st.integers(0, 20_000)))
json_texts = st.one_of(
    st.sampled_from(["", "{}", "[]", "null", "1e999999", "NaN", '{"kind": "logistic"}',
                     '{"kind": "evil", "epochs": 1000000000}', "[" * 100_000 + "]" * 100_000,
                     '{"a":' * 50_000 + "1" + "}" * 50_000, '{"lr": "abc"}', '"\\ud800"']),
    strings)


def auths() -> st.SearchStrategy[common_pb2.ProviderAuth]:
    return st.builds(common_pb2.ProviderAuth, provider_id=strings, nonce=strings, signature=blobs)


# -- the Market API -----------------------------------------------------------------

DEEP_ARRAY = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 50_000 + "1" + "}" * 50_000
HUGE_INT = '{"epochs": ' + "9" * 5000 + "}"


def test_register_provider(live: Live) -> None:
    @SETTINGS
    @given(name=strings, key=blobs, nonce=strings, signature=blobs)
    @example(name="alice", key=bytes(32), nonce="a" * 32, signature=bytes(64))
    @example(name="x" * 400_000, key=b"", nonce="", signature=b"")
    def run(name: str, key: bytes, nonce: str, signature: bytes) -> None:
        request = market_pb2.RegisterProviderRequest(name=name, public_key=key, nonce=nonce, signature=signature)
        _fire(live, "RegisterProvider", lambda: live.market.RegisterProvider(request, timeout=20))

    _fuzz(live, run)


def test_register_dataset(live: Live) -> None:
    @SETTINGS
    @given(dataset_id=strings, provider_id=strings, rows=uint64s, cols=uint64s, frac_bits=uint32s,
           columns=string_lists, features=string_lists, label=strings,
           commitments=st.lists(blobs, max_size=5), nonce=strings, signature=blobs, purpose=strings)
    @example(dataset_id="huge", provider_id="alice", rows=2_097_152, cols=4096, frac_bits=16,
             columns=[f"c{i}" for i in range(4096)], features=[f"c{i}" for i in range(4095)],
             label="c4095", commitments=[bytes(32)] * 3, nonce="a" * 32, signature=bytes(64),
             purpose="training")
    @example(dataset_id="wide", provider_id="alice", rows=1, cols=2, frac_bits=16,
             columns=["x" * 1_000_000, "y"], features=["x" * 1_000_000], label="y",
             commitments=[bytes(32)] * 3, nonce="a" * 32, signature=bytes(64), purpose="training")
    @example(dataset_id="x", provider_id="alice", rows=2**64 - 1, cols=2**64 - 1, frac_bits=2**32 - 1,
             columns=[], features=[], label="", commitments=[], nonce="", signature=b"", purpose="")
    def run(dataset_id: str, provider_id: str, rows: int, cols: int, frac_bits: int, columns: list[str],
            features: list[str], label: str, commitments: list[bytes], nonce: str, signature: bytes,
            purpose: str) -> None:
        request = common_pb2.DatasetRegistration(
            dataset_id=dataset_id, provider_id=provider_id, rows=rows, cols=cols, frac_bits=frac_bits,
            schema=common_pb2.ColumnSchema(columns=columns, feature_columns=features, label_column=label),
            share_commitments=commitments, nonce=nonce, signature=signature, purpose=purpose)
        _fire(live, "RegisterDataset", lambda: live.market.RegisterDataset(request, timeout=20))

    _fuzz(live, run)


def test_stake_and_unstake(live: Live) -> None:
    @SETTINGS
    @given(dataset_id=strings, amount=int64s, auth=auths(), unstake=st.booleans())
    @example(dataset_id="alice-ds", amount=2**63 - 1, auth=common_pb2.ProviderAuth(
        provider_id="alice", nonce="a" * 32, signature=bytes(64)), unstake=False)
    @example(dataset_id="alice-ds", amount=-(2**63), auth=common_pb2.ProviderAuth(), unstake=True)
    def run(dataset_id: str, amount: int, auth: Any, unstake: bool) -> None:
        request = market_pb2.StakeRequest(dataset_id=dataset_id, amount=amount, auth=auth)
        method = live.market.Unstake if unstake else live.market.Stake
        _fire(live, "Unstake" if unstake else "Stake", lambda: method(request, timeout=20))

    _fuzz(live, run)


def test_open_round(live: Live) -> None:
    alice = common_pb2.ProviderAuth(provider_id="alice", nonce="a" * 32, signature=bytes(64))

    @SETTINGS
    @given(round_id=strings, pool=int64s, spec=json_texts, validation=strings, datasets=string_lists,
           slash=int64s, epsilon=int64s, auth=auths())
    @example(round_id="r1", pool=1, spec=DEEP_ARRAY, validation="alice-ds", datasets=["alice-ds"],
             slash=0, epsilon=0, auth=alice)
    @example(round_id="r1", pool=1, spec=DEEP_OBJECT, validation="alice-ds", datasets=["alice-ds"],
             slash=0, epsilon=0, auth=alice)
    @example(round_id="r1", pool=1, spec=HUGE_INT, validation="alice-ds", datasets=["alice-ds"],
             slash=0, epsilon=0, auth=alice)
    @example(round_id="r1", pool=-(2**63), spec="{}", validation="alice-ds", datasets=["alice-ds"] * 300,
             slash=2**63 - 1, epsilon=-(2**63), auth=alice)
    def run(round_id: str, pool: int, spec: str, validation: str, datasets: list[str], slash: int,
            epsilon: int, auth: Any) -> None:
        request = market_pb2.OpenRoundRequest(
            round_id=round_id, pool=pool, model_spec_json=spec, validation_dataset=validation,
            datasets=datasets, slash_rate_ppm=slash, epsilon_micro=epsilon, auth=auth)
        _fire(live, "OpenRound", lambda: live.market.OpenRound(request, timeout=20))

    _fuzz(live, run)


def test_lookups_by_id(live: Live) -> None:
    @SETTINGS
    @given(which=st.sampled_from(["GetDataset", "GetBalance", "GetRound", "GetProvider", "ListNodes",
                                  "ListDatasets", "GetProviderHistory", "ListRounds"]), value=strings)
    @example(which="ListDatasets", value="alice")
    @example(which="ListRounds", value="open")
    @example(which="ListRounds", value="../probe")
    @example(which="GetProviderHistory", value="alice")
    @example(which="GetRound", value="../probe")
    @example(which="GetRound", value="../../coordinator/ledger")
    @example(which="GetDataset", value="alice-ds")
    @example(which="GetProvider", value="alice")
    @example(which="GetBalance", value="alice")
    def run(which: str, value: str) -> None:
        request = {
            "GetDataset": lambda: market_pb2.GetDatasetRequest(dataset_id=value),
            "GetBalance": lambda: market_pb2.BalanceRequest(provider_id=value),
            "GetRound": lambda: market_pb2.GetRoundRequest(round_id=value),
            "GetProvider": lambda: market_pb2.GetProviderRequest(provider_id=value),
            "ListNodes": lambda: market_pb2.DirectoryNodesRequest(),
            "ListDatasets": lambda: market_pb2.CatalogRequest(provider_id=value,
                                                              offset=len(value) * 2**26 % 2**32),
            "GetProviderHistory": lambda: market_pb2.ProviderHistoryRequest(
                provider_id=value, limit=len(value) * 2**26 % 2**32),
            "ListRounds": lambda: market_pb2.RoundsRequest(status=value, offset=len(value) * 2**26 % 2**32),
        }[which]()
        _fire(live, which, lambda: getattr(live.market, which)(request, timeout=20))

    _fuzz(live, run)


def test_ledger_reads(live: Live) -> None:
    @SETTINGS
    @given(which=st.sampled_from(["ListEntries", "GetInclusionProof", "GetConsistencyProof", "GetCheckpoint"]),
           a=uint64s, b=uint64s, limit=uint32s, kind=strings, party=strings)
    @example(which="ListEntries", a=2**64 - 1, b=0, limit=2**32 - 1, kind="", party="")
    @example(which="GetInclusionProof", a=2**64 - 1, b=2**64 - 1, limit=0, kind="", party="")
    @example(which="GetConsistencyProof", a=2**63, b=2**64 - 1, limit=0, kind="", party="")
    def run(which: str, a: int, b: int, limit: int, kind: str, party: str) -> None:
        request = {
            "ListEntries": lambda: market_pb2.ListEntriesRequest(start=a, limit=limit, kind=kind, party=party),
            "GetInclusionProof": lambda: market_pb2.InclusionProofRequest(index=a, tree_size=b),
            "GetConsistencyProof": lambda: market_pb2.ConsistencyProofRequest(size1=a, size2=b),
            "GetCheckpoint": lambda: market_pb2.CheckpointRequest(),
        }[which]()
        _fire(live, which, lambda: getattr(live.market, which)(request, timeout=20))

    _fuzz(live, run)


def test_replays_of_valid_signed_requests(live: Live) -> None:
    replays = live.replays
    calls = {
        "register": lambda: live.market.RegisterProvider(replays["register"], timeout=20),
        "registration": lambda: live.market.RegisterDataset(replays["registration"], timeout=20),
        "stake": lambda: live.market.Stake(replays["stake"], timeout=20),
        "unstake-with-stake-signature": lambda: live.market.Unstake(replays["stake"], timeout=20),
    }

    def run() -> None:
        for _ in range(5):
            for name, call in calls.items():
                _fire(live, f"replay {name}", call)

    _fuzz(live, run)


# -- a node's public ShareIntake API -------------------------------------------------

headers = st.builds(node_pb2.ShareHeader, dataset_id=strings, node_index=uint32s, rows=uint64s,
                    cols=uint64s, frac_bits=uint32s)


def test_upload_share(live: Live) -> None:
    @SETTINGS
    @given(node=st.integers(0, NODES - 1), header=st.one_of(st.none(), headers),
           chunks=st.lists(blobs, max_size=4), second_header=st.booleans(), replay=st.booleans())
    @example(node=0, header=None, chunks=[], second_header=False, replay=True)
    @example(node=1, header=None, chunks=[], second_header=False, replay=True)
    @example(node=0, header=node_pb2.ShareHeader(dataset_id="alice-ds", node_index=0, rows=2**64 - 1,
                                                 cols=2**64 - 1, frac_bits=2**32 - 1),
             chunks=[b"\x00" * 100], second_header=True, replay=False)
    def run(node: int, header: Any, chunks: list[bytes], second_header: bool, replay: bool) -> None:
        if replay:  # a valid upload of a share the node already holds, or to the wrong node
            header, chunks = live.replays["header0"], [live.replays["share0"]]
        messages = [node_pb2.ShareChunk(header=header) if header is not None else node_pb2.ShareChunk()]
        messages += [node_pb2.ShareChunk(data=c) for c in chunks]
        if second_header and header is not None:
            messages.append(node_pb2.ShareChunk(header=header))
        _fire(live, "UploadShare", lambda: live.intake[node].UploadShare(iter(messages), timeout=20))

    _fuzz(live, run)


def test_fetch_model_share(live: Live) -> None:
    @SETTINGS
    @given(node=st.integers(0, NODES - 1), round_id=strings, sponsor=strings, node_index=uint32s,
           nonce=strings, issued_at=int64s, signature=blobs)
    @example(node=0, round_id="../x", sponsor="alice", node_index=0, nonce="ab" * 16,
             issued_at=-(2**63), signature=bytes(64))
    @example(node=2, round_id="r1", sponsor="alice", node_index=2, nonce="ab" * 16,
             issued_at=2**63 - 1, signature=bytes(64))
    def run(node: int, round_id: str, sponsor: str, node_index: int, nonce: str, issued_at: int,
            signature: bytes) -> None:
        request = node_pb2.FetchModelShareRequest(round_id=round_id, sponsor_id=sponsor, node_index=node_index,
                                                  nonce=nonce, issued_at=issued_at, signature=signature)
        _fire(live, "FetchModelShare", lambda: list(live.intake[node].FetchModelShare(request, timeout=20)))

    _fuzz(live, run)


def test_the_ledger_still_verifies(live: Live) -> None:
    """Last: after every fuzzed request the ledger holds exactly the set-up entries and
    verifies (hashes, signatures, replayed balances)."""
    report = verify_ledger(live.coordinator.ledger.path)
    assert report.ok, report.error
    assert {e.kind for e in live.coordinator.ledger.entries(limit=None)} <= {
        "genesis", "node_registered", "provider_registered", "dataset_registered", "mint", "stake"}
    assert live.sent > 500 and live.findings == []
