"""Share uploads over real TLS gRPC to 3 real nodes: the round trip and every refusal."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from scipy import stats

from mpcnode.registry import InMemoryRegistry
from mpcnode.server import SHARE_INTAKE_SERVICE, RunningNode
from mpcnode.share_store import ShareStore
from mutualmind.errors import (
    AlreadyExists,
    IntegrityError,
    InvalidInput,
    MutualMindError,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
)
from mutualmind.transport import raise_from_rpc_error
from mutualmind.vocabulary.dataset import TableSchema
from mutualmind.vocabulary.share_receipt import verify_receipt
from mutualmind.vocabulary.signed_requests import signed_dataset_registration
from proto import node_pb2, node_pb2_grpc
from provider.client import upload_share, upload_shares
from provider.sharing import (
    Table,
    encode_fixed_point,
    load_sklearn,
    prescale,
    recombine,
    share_table,
)

Provider = Any  # the `provider` fixture in conftest.py (key + provider id)


def _register(registry: InMemoryRegistry, provider: Provider, dataset_id: str, shared, purpose: str = "training"):
    registration = signed_dataset_registration(
        provider.key,
        dataset_id=dataset_id,
        provider_id=provider.provider_id,
        rows=shared.rows,
        cols=shared.cols,
        frac_bits=shared.frac_bits,
        schema=shared.schema,
        share_commitments=list(shared.commitments),
        purpose=purpose,
    )
    registry.add(registration, provider.public_key)
    return registration


def _snapshot(node: RunningNode) -> list[str]:
    shares = node.store.shares_dir
    return sorted(str(p.relative_to(shares)) for p in shares.rglob("*"))


def _small_table(rows: int = 64, seed: int = 0) -> Table:
    values = np.random.default_rng(seed).normal(0.0, 10.0, size=(rows, 3))
    return Table(values, TableSchema(("a", "b", "y"), ("a", "b"), "y"))


def _status(err: MutualMindError) -> grpc.StatusCode:
    cause = err.__cause__
    assert isinstance(cause, grpc.RpcError)
    return cause.code()


def test_round_trip_over_three_nodes(
    nodes: list[RunningNode],
    public_channels: list[grpc.Channel],
    registry: InMemoryRegistry,
    provider: Provider,
    node_public_keys: list[bytes],
) -> None:
    table = load_sklearn("breast_cancer")
    shared = share_table(table, 3)
    _register(registry, provider, "breast-cancer", shared)
    seen: dict[int, int] = {}
    receipts = upload_shares(
        public_channels, "breast-cancer", shared, node_public_keys=node_public_keys,
        progress=lambda node, sent: seen.__setitem__(node, sent), chunk_bytes=32 * 1024,
    )
    size = table.rows * table.cols * 8
    assert seen == {0: size, 1: size, 2: size}
    assert [r.bytes_received for r in receipts] == [size] * 3
    assert all(verify_receipt(r, node_public_keys[i]) for i, r in enumerate(receipts))
    assert not verify_receipt(receipts[0], node_public_keys[1])

    stored = [ShareStore(n.config.data_dir).load("breast-cancer") for n in nodes]
    assert np.array_equal(recombine([s.data for s in stored]), encode_fixed_point(prescale(table.values, shared.column_exponents)))
    for i, s in enumerate(stored):
        assert s.meta.node_index == i and s.meta.commitment == shared.commitments[i]
        assert s.meta.schema == table.schema and s.meta.provider_id == provider.provider_id
    # no single node's share is the data: its bytes are uniform
    one = stored[1].data
    counts = np.bincount(one.view(np.uint8).ravel(), minlength=256)
    assert stats.chisquare(counts).pvalue > 1e-4
    assert abs(np.unpackbits(one.view(np.uint8)).mean() - 0.5) < 0.01


def test_node_share_distribution_does_not_depend_on_the_data(
    nodes: list[RunningNode], public_channels: list[grpc.Channel], registry: InMemoryRegistry, provider: Provider
) -> None:
    zeros = Table(np.zeros((2000, 3)), TableSchema(("a", "b", "y"), ("a", "b"), "y"))
    other = _small_table(rows=2000, seed=3)
    for name, table in (("zeros", zeros), ("other", other)):
        shared = share_table(table, 3)
        _register(registry, provider, name, shared)
        upload_shares(public_channels, name, shared)
    for node in nodes:
        a = node.store.load("zeros").data.ravel()
        b = node.store.load("other").data.ravel()
        assert stats.ks_2samp(a, b).pvalue > 1e-4
    plain_a, plain_b = encode_fixed_point(zeros.values).ravel(), encode_fixed_point(other.values).ravel()
    assert stats.ks_2samp(plain_a, plain_b).pvalue < 1e-10


def _messages(header: node_pb2.ShareHeader | None, payload: bytes, chunk: int = 4096) -> Iterator[node_pb2.ShareChunk]:
    first = True
    for start in range(0, max(len(payload), 1), chunk):
        part = payload[start : start + chunk]
        if first and header is not None:
            yield node_pb2.ShareChunk(header=header, data=part)
        else:
            yield node_pb2.ShareChunk(data=part)
        first = False


def _raw_upload(channel: grpc.Channel, messages: Iterator[node_pb2.ShareChunk]) -> node_pb2.UploadReceipt:
    try:
        return node_pb2_grpc.ShareIntakeStub(channel).UploadShare(messages, timeout=30)
    except grpc.RpcError as err:
        raise_from_rpc_error(err)


def _header(shared, dataset_id: str, node_index: int = 0, **override: int) -> node_pb2.ShareHeader:
    fields = dict(rows=shared.rows, cols=shared.cols, frac_bits=shared.frac_bits)
    fields.update(override)
    return node_pb2.ShareHeader(dataset_id=dataset_id, node_index=node_index, **fields)


@pytest.fixture
def registered(registry: InMemoryRegistry, provider: Provider):
    shared = share_table(_small_table(), 3)
    _register(registry, provider, "ds", shared)
    return shared


@pytest.mark.parametrize(
    "case, error, status, message",
    [
        ("short", InvalidInput, grpc.StatusCode.INVALID_ARGUMENT, "ended after 1528 of 1536 bytes"),
        ("long", InvalidInput, grpc.StatusCode.INVALID_ARGUMENT, "longer than rows\\*cols\\*8 = 1536"),
        ("tampered", IntegrityError, grpc.StatusCode.DATA_LOSS, "does not match its registered commitment"),
        ("wrong-node", InvalidInput, grpc.StatusCode.INVALID_ARGUMENT, "this is node 0, the upload header is for node 1"),
        ("no-header", InvalidInput, grpc.StatusCode.INVALID_ARGUMENT, "must carry the ShareHeader"),
        ("empty", InvalidInput, grpc.StatusCode.INVALID_ARGUMENT, "must carry the ShareHeader"),
        ("second-header", InvalidInput, grpc.StatusCode.INVALID_ARGUMENT, "only the first message"),
        ("wrong-rows", InvalidInput, grpc.StatusCode.INVALID_ARGUMENT, "rows 63 \\(registered 64\\)"),
        ("unknown", NotFound, grpc.StatusCode.NOT_FOUND, "dataset 'nope' is not registered"),
        ("bad-id", InvalidInput, grpc.StatusCode.INVALID_ARGUMENT, "dataset id '../x' is not valid"),
    ],
)
def test_refusals_leave_the_store_unchanged(
    nodes: list[RunningNode], public_channels: list[grpc.Channel], registered, case: str,
    error: type[MutualMindError], status: grpc.StatusCode, message: str,
) -> None:
    share = registered.shares[0].tobytes()
    header = _header(registered, "ds")
    messages = {
        "short": lambda: _messages(header, share[:-8]),
        "long": lambda: _messages(header, share + b"\0" * 8),
        "tampered": lambda: _messages(header, registered.shares[1].tobytes()),
        "wrong-node": lambda: _messages(_header(registered, "ds", node_index=1), registered.shares[1].tobytes()),
        "no-header": lambda: _messages(None, share),
        "empty": lambda: iter(()),
        "second-header": lambda: iter([node_pb2.ShareChunk(header=header, data=share[:8]),
                                       node_pb2.ShareChunk(header=header, data=share[8:])]),
        "wrong-rows": lambda: _messages(_header(registered, "ds", rows=63), share[:-24]),
        "unknown": lambda: _messages(_header(registered, "nope"), share),
        "bad-id": lambda: _messages(_header(registered, "../x"), share),
    }[case]
    before = _snapshot(nodes[0])
    with pytest.raises(error, match=message) as caught:
        _raw_upload(public_channels[0], messages())
    assert _status(caught.value) == status
    assert _snapshot(nodes[0]) == before == []
    # and the refused attempt did not burn the id: the right share is still accepted
    if case not in ("unknown", "bad-id"):
        assert upload_share(public_channels[0], "ds", 0, registered.shares[0]).bytes_received == len(share)


def test_second_upload_is_refused_and_first_kept(
    nodes: list[RunningNode], public_channels: list[grpc.Channel], registered
) -> None:
    upload_share(public_channels[0], "ds", 0, registered.shares[0])
    before = _snapshot(nodes[0])
    with pytest.raises(AlreadyExists, match="already holds a share of dataset 'ds'") as caught:
        upload_share(public_channels[0], "ds", 0, registered.shares[0])
    assert _status(caught.value) == grpc.StatusCode.ALREADY_EXISTS
    assert _snapshot(nodes[0]) == before
    assert np.array_equal(nodes[0].store.load("ds").data, registered.shares[0])


def test_share_above_quota_is_refused(
    start: Callable[..., RunningNode], certs_dir: Path, registered
) -> None:
    from mutualmind.transport import channel_credentials, open_channel
    from mutualmind.vocabulary.quotas import StorageQuota

    node = start(0, quota=StorageQuota(node_bytes=1535))
    with open_channel(f"127.0.0.1:{node.public_port}", channel_credentials(certs_dir, None)) as channel:
        with pytest.raises(QuotaExceeded, match="1536 bytes, above this node's quota of 1535") as caught:
            upload_share(channel, "ds", 0, registered.shares[0])
        assert _status(caught.value) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _snapshot(node) == []


def test_cancelled_stream_leaves_nothing(
    nodes: list[RunningNode], public_channels: list[grpc.Channel], registry: InMemoryRegistry, provider: Provider
) -> None:
    shared = share_table(_small_table(rows=20000), 3)
    _register(registry, provider, "big", shared)
    share = shared.shares[0].tobytes()
    sent_some, hold = threading.Event(), threading.Event()

    def messages() -> Iterator[node_pb2.ShareChunk]:
        for i, message in enumerate(_messages(_header(shared, "big"), share, chunk=64 * 1024)):
            if i == 3:
                sent_some.set()
                hold.wait(10)
            yield message

    future = node_pb2_grpc.ShareIntakeStub(public_channels[0]).UploadShare.future(messages(), timeout=30)
    assert sent_some.wait(10)
    temp_seen = _wait_for(lambda: any(p.name.startswith(".tmp-") for p in nodes[0].store.shares_dir.iterdir()))
    assert temp_seen, "the upload never started writing"
    future.cancel()
    hold.set()
    assert _wait_for(lambda: _snapshot(nodes[0]) == []), _snapshot(nodes[0])
    assert not nodes[0].store.has("big")
    assert upload_share(public_channels[0], "big", 0, shared.shares[0]).bytes_received == len(share)


def test_stalled_upload_is_cancelled_by_the_node(
    start: Callable[..., RunningNode], certs_dir: Path, registry: InMemoryRegistry, provider: Provider
) -> None:
    from mpcnode.upload_guard import StallPolicy
    from mutualmind.transport import channel_credentials, open_channel

    node = start(0, stall=StallPolicy(grace_s=0.2, window_s=0.5, min_rate=128 * 1024))
    shared = share_table(_small_table(rows=20000), 3)
    _register(registry, provider, "slow", shared)
    share = shared.shares[0].tobytes()
    stop = threading.Event()

    def trickle() -> Iterator[node_pb2.ShareChunk]:
        for i, message in enumerate(_messages(_header(shared, "slow"), share, chunk=1024)):
            if stop.is_set():
                return
            if i > 0:
                time.sleep(0.05)  # ~20 KiB/s: under 128 KiB/s
            yield message

    with open_channel(f"127.0.0.1:{node.public_port}", channel_credentials(certs_dir, None)) as channel:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            node_pb2_grpc.ShareIntakeStub(channel).UploadShare(trickle(), timeout=30)
        stop.set()
        assert caught.value.code() == grpc.StatusCode.CANCELLED
        assert time.monotonic() - started < 10
        assert _wait_for(lambda: _snapshot(node) == [])
        # a stream at full speed is not affected by the policy
        assert upload_share(channel, "slow", 0, shared.shares[0]).bytes_received == len(share)


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `condition`; a dir vanishing under a listing (cleanup racing it) means "not yet"."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    return condition()


def test_forged_registration_is_refused_by_the_registry(registry: InMemoryRegistry, provider: Provider) -> None:
    shared = share_table(_small_table(), 3)
    registration = _register(registry, provider, "ok", shared)
    registration.rows += 1  # changed after signing
    with pytest.raises(PermissionDenied, match="not signed by provider"):
        registry.add(registration, provider.public_key)
    with pytest.raises(NotFound):
        registry.get("forged")


def test_public_port_serves_health_and_no_node_control(
    nodes: list[RunningNode], public_channels: list[grpc.Channel]
) -> None:
    health = health_pb2_grpc.HealthStub(public_channels[0])
    reply = health.Check(health_pb2.HealthCheckRequest(service=SHARE_INTAKE_SERVICE), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as caught:
        node_pb2_grpc.NodeControlStub(public_channels[0]).ListDatasets(node_pb2.ListDatasetsRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED

