"""A node under hostile uploads: a quota on by default, and slow streams that cannot take
its threads. Real node servers on loopback with real TLS; real trickling clients."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mpcnode.registry import InMemoryRegistry
from mpcnode.server import RunningNode
from mpcnode.upload_guard import StallPolicy, StreamLimits
from mutualmind.errors import QuotaExceeded
from mutualmind.transport import channel_credentials, open_channel
from mutualmind.vocabulary.dataset import TableSchema
from mutualmind.vocabulary.signed_requests import signed_dataset_registration
from mutualmind.vocabulary.signing_keys import generate_signing_key, public_key_bytes
from proto import node_pb2, node_pb2_grpc
from provider.client import upload_share

# small windows so the test is fast; the defaults are 10 s grace and 10 s windows
FAST_STALL = StallPolicy(grace_s=1.0, window_s=1.0, min_rate=64 * 1024)


def _register(registry: InMemoryRegistry, provider_id: str, dataset_id: str, *, rows: int, cols: int,
              commitments: list[bytes]) -> None:
    key = generate_signing_key()
    names = tuple(f"c{i}" for i in range(cols))
    registration = signed_dataset_registration(
        key, dataset_id=dataset_id, provider_id=provider_id, rows=rows, cols=cols, frac_bits=16,
        schema=TableSchema(names, names[:-1], names[-1]), share_commitments=commitments,
        purpose="training")
    registry.add(registration, public_key_bytes(key))


@dataclass
class _Share:
    """One node's share of a [rows, 3] table and the commitments to register with it."""

    data: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.data.shape[0])

    cols = 3

    @property
    def commitments(self) -> list[bytes]:  # only node 0's is checked here
        return [hashlib.sha256(self.data.tobytes()).digest()] * 3


def _shared(rows: int, seed: int) -> _Share:
    rng = np.random.default_rng(seed)  # test bytes; real shares come from os.urandom
    return _Share(rng.integers(-(2**63), 2**63 - 1, size=(rows, 3), dtype=np.int64))


def test_a_node_refuses_a_share_above_its_default_quota_before_any_byte(
    start: Callable[..., RunningNode], certs_dir: Path, registry: InMemoryRegistry
) -> None:
    """The 64 GiB share of a 2,097,152 x 4,096 table (the largest admitted): refused by a
    node started with no quota options (16 GiB per provider), before it reads a data
    byte, nothing written."""
    _register(registry, "big-co", "huge", rows=2_097_152, cols=4096, commitments=[bytes(32)] * 3)
    node = start(0)  # the default NodeConfig, as `node serve` without quota flags
    header = node_pb2.ShareHeader(dataset_id="huge", node_index=0, rows=2_097_152, cols=4096, frac_bits=16)
    sent: list[int] = []

    def messages() -> Iterator[node_pb2.ShareChunk]:
        yield node_pb2.ShareChunk(header=header, data=bytes(64 * 1024))
        for _ in range(200):  # would be 13 MB more if the node kept reading
            sent.append(1)
            yield node_pb2.ShareChunk(data=bytes(64 * 1024))

    with (open_channel(f"127.0.0.1:{node.public_port}", channel_credentials(certs_dir, None)) as channel,
          pytest.raises(grpc.RpcError) as caught):
        node_pb2_grpc.ShareIntakeStub(channel).UploadShare(messages(), timeout=30)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = caught.value.details()
    assert "68719476736" in details and "per-provider quota of 17179869184" in details, details
    assert "--provider-quota-bytes" in details
    assert list(node.store.shares_dir.iterdir()) == []


def _trickle(header: node_pb2.ShareHeader, stop: threading.Event) -> Iterator[node_pb2.ShareChunk]:
    """An upload at ~5 KB/s (1 KiB every 0.2 s): alive, but far below the minimum rate."""
    yield node_pb2.ShareChunk(header=header, data=bytes(1024))
    while not stop.wait(0.2):
        yield node_pb2.ShareChunk(data=bytes(1024))


def _upload_retrying(channel: grpc.Channel, dataset_id: str, data: np.ndarray, within: float = 3.0) -> Any:
    """Upload to node 0, retrying while the node says its upload slots are full (a refused
    stream's slot is given back as its server thread unwinds, a moment after the refusal)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return upload_share(channel, dataset_id, 0, data)
        except QuotaExceeded:
            assert time.monotonic() < deadline, "the node's upload slots never came free"
            time.sleep(0.1)


def _health(channel: grpc.Channel) -> float:
    started = time.monotonic()
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    return time.monotonic() - started


def test_trickling_uploads_cannot_take_the_node(
    start: Callable[..., RunningNode], certs_dir: Path, registry: InMemoryRegistry
) -> None:
    """8 trickling uploads of one provider (the attack that took all 8 threads): 6 are
    refused at once, 2 are cancelled for their rate; health answers and an honest upload
    of another provider succeeds within seconds, while they trickle."""
    node = start(0, stall=FAST_STALL)
    slow = _shared(20_000, seed=1)
    for i in range(8):
        _register(registry, "mallory", f"slow{i}", rows=slow.rows, cols=slow.cols,
                  commitments=list(slow.commitments))
    honest = _shared(20_000, seed=2)
    _register(registry, "hospital-a", "honest", rows=honest.rows, cols=honest.cols,
              commitments=list(honest.commitments))

    stop = threading.Event()
    with open_channel(f"127.0.0.1:{node.public_port}", channel_credentials(certs_dir, None)) as channel:
        stub = node_pb2_grpc.ShareIntakeStub(channel)
        started = time.monotonic()
        futures = [stub.UploadShare.future(_trickle(node_pb2.ShareHeader(
            dataset_id=f"slow{i}", node_index=0, rows=slow.rows, cols=slow.cols, frac_bits=16), stop),
            timeout=30) for i in range(8)]
        try:
            time.sleep(0.5)  # every trickle has started (or been refused)
            assert _health(channel) < 1.0
            receipt = _upload_retrying(channel, "honest", honest.data)
            assert receipt.bytes_received == honest.rows * honest.cols * 8
            assert time.monotonic() - started < 5.0
            codes = []
            for future in futures:
                with pytest.raises(grpc.RpcError) as caught:
                    future.result(timeout=10)
                codes.append(caught.value.code())
            assert time.monotonic() - started < 8.0
        finally:
            stop.set()
        assert sorted(c.name for c in codes) == ["CANCELLED"] * 2 + ["RESOURCE_EXHAUSTED"] * 6
        assert _health(channel) < 1.0
    assert [m.dataset_id for m in node.store.list()] == ["honest"]
    assert not any(p.name.startswith(".tmp-") for p in node.store.shares_dir.iterdir())


def test_many_providers_fill_the_upload_slots_but_not_the_threads(
    start: Callable[..., RunningNode], certs_dir: Path, registry: InMemoryRegistry
) -> None:
    """Trickles from 4 providers: only `total` (6 of 8 threads) run; the rest are refused
    with a message saying to retry, health still answers, and once the slow ones are
    evicted an honest upload goes through."""
    node = start(0, stall=FAST_STALL, streams=StreamLimits(per_provider=2))
    slow = _shared(20_000, seed=3)
    for i in range(8):
        _register(registry, f"sybil{i // 2}", f"s{i}", rows=slow.rows, cols=slow.cols,
                  commitments=list(slow.commitments))
    honest = _shared(2_000, seed=4)
    _register(registry, "hospital-b", "honest", rows=honest.rows, cols=honest.cols,
              commitments=list(honest.commitments))
    stop = threading.Event()
    with open_channel(f"127.0.0.1:{node.public_port}", channel_credentials(certs_dir, None)) as channel:
        stub = node_pb2_grpc.ShareIntakeStub(channel)
        futures = [stub.UploadShare.future(_trickle(node_pb2.ShareHeader(
            dataset_id=f"s{i}", node_index=0, rows=slow.rows, cols=slow.cols, frac_bits=16), stop),
            timeout=30) for i in range(8)]
        try:
            time.sleep(0.5)
            assert _health(channel) < 1.0
            with pytest.raises(QuotaExceeded, match="already receives 6 uploads"):
                upload_share(channel, "honest", 0, honest.data)
            for future in futures:
                with pytest.raises(grpc.RpcError):
                    future.result(timeout=10)
        finally:
            stop.set()
        # the evicted streams' slots free as their server threads unwind: retry, as a client does
        assert _upload_retrying(channel, "honest", honest.data).bytes_received == honest.rows * 24
    assert [m.dataset_id for m in node.store.list()] == ["honest"]
