"""Client retry policy and keepalive, with real TLS servers on 127.0.0.1.

A call issued while its server is still down is retried (UNAVAILABLE before any handler
ran) and succeeds once the server is up, without wait_for_ready; a server that never
comes fails UNAVAILABLE within the retry budget; an UNAVAILABLE raised by a handler is
not retried (the handler already acted); an idle channel with keepalive pings is not
dropped by a server that permits them, and is by one that does not.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from mutualmind.errors import Unavailable
from mutualmind.transport import (
    RunningServer,
    build_server,
    channel_credentials,
    open_channel,
    server_credentials,
)
from mutualmind.transport.channel import channel_options
from mutualmind.transport.options import (
    RETRY_INITIAL_BACKOFF_S,
    RETRY_MAX_ATTEMPTS,
    RETRY_MAX_BACKOFF_S,
    SERVER_OPTIONS,
)
from proto import admin_pb2, admin_pb2_grpc
from tests.transport.conftest import ADMIN_SERVICE, RecordingAdmin

# The most the retry policy can wait in all: backoffs 0.3, 0.6, 1.2, 1.2 s (each jittered down).
RETRY_BUDGET_S = sum(min(RETRY_INITIAL_BACKOFF_S * 2 ** i, RETRY_MAX_BACKOFF_S)
                     for i in range(RETRY_MAX_ATTEMPTS - 1))


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_admin(cluster_dir: Path, port: int = 0,
                overrides: tuple[tuple[str, int], ...] = ()) -> tuple[RunningServer, RecordingAdmin]:
    admin = RecordingAdmin()
    running = build_server(
        [(admin_pb2_grpc.add_AdminServicer_to_server, admin)], address=f"127.0.0.1:{port}",
        credentials=server_credentials(cluster_dir, "coordinator", require_client_cert=True),
        service_names=[ADMIN_SERVICE], max_workers=2, overrides=overrides)
    return running, admin


def test_no_client_opens_a_channel_but_through_open_channel() -> None:
    """`open_channel` is the one place a channel is made, so every client (CLI, roles,
    the MPC data plane) gets its retry policy and keepalive: no other module calls grpc's
    channel constructors."""
    root = Path(__file__).resolve().parents[2]
    makers = re.compile(r"\b(secure_channel|insecure_channel|aio\.\w*channel)\(")
    sources = [p for package in ("mutualmind", "coordinator", "provider", "mpcnode", "ledger", "bench")
               for p in (root / package).rglob("*.py")]
    assert len(sources) > 100
    found = sorted(str(p.relative_to(root)) for p in sources if makers.search(p.read_text()))
    # bench/grpc_floor.py measures gRPC itself: its no-TLS baseline needs a plain channel
    assert found == ["bench/grpc_floor.py", "mutualmind/transport/channel.py"], found


@pytest.fixture
def servers() -> Iterator[list[RunningServer]]:
    started: list[RunningServer] = []
    yield started
    for running in started:
        running.stop(0).wait()


def test_every_channel_carries_retry_policy_and_keepalive() -> None:
    options = dict(channel_options(server_name="node0"))
    assert options["grpc.enable_retries"] == 1
    policy = json.loads(str(options["grpc.service_config"]))["methodConfig"][0]["retryPolicy"]
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert policy["maxAttempts"] == RETRY_MAX_ATTEMPTS
    assert options["grpc.keepalive_time_ms"] > 0
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.ssl_target_name_override"] == "node0"
    # The servers accept pings as often as clients send them (else GOAWAY too_many_pings).
    server = dict(SERVER_OPTIONS)
    assert server["grpc.http2.min_ping_interval_without_data_ms"] <= options["grpc.keepalive_time_ms"]
    assert server["grpc.keepalive_permit_without_calls"] == 1
    shorter = dict(channel_options(overrides=[("grpc.keepalive_time_ms", 1000)]))
    assert shorter["grpc.keepalive_time_ms"] == 1000


def test_call_to_a_server_that_starts_late_is_retried(cluster_dir: Path,
                                                       servers: list[RunningServer]) -> None:
    port = unused_port()
    channel = open_channel(f"127.0.0.1:{port}", channel_credentials(cluster_dir, "admin"),
                           server_name="coordinator")
    refused = threading.Event()
    channel.subscribe(lambda state: state == grpc.ChannelConnectivity.TRANSIENT_FAILURE
                      and refused.set())
    outcome: dict[str, Any] = {}

    def call() -> None:
        started = time.monotonic()
        try:
            outcome["reply"] = admin_pb2_grpc.AdminStub(channel).ListNodes(
                admin_pb2.ListNodesRequest(), timeout=30)
        except grpc.RpcError as err:
            outcome["error"] = err
        outcome["elapsed"] = time.monotonic() - started

    with channel:
        caller = threading.Thread(target=call)
        issued = time.monotonic()
        caller.start()
        # The first attempt was refused (nothing listens yet); only then start the server.
        # (Retry waits are jittered down to random fractions of 0.3, 0.6, 1.2, 1.2 s, so a
        # fixed delay of ~1 s would make this test fail now and then by chance.)
        assert refused.wait(5), "the first attempt never failed"
        running, admin = start_admin(cluster_dir, port)
        servers.append(running)
        up_after = time.monotonic() - issued
        caller.join(30)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["reply"].nodes[0].name == "admin"
    assert admin.calls == 1
    assert outcome["elapsed"] >= up_after
    assert outcome["elapsed"] < RETRY_BUDGET_S + 3


def test_server_that_never_comes_fails_unavailable_in_bounded_time(cluster_dir: Path) -> None:
    port = unused_port()
    with open_channel(f"127.0.0.1:{port}", channel_credentials(cluster_dir, "admin"),
                      server_name="coordinator") as channel:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            admin_pb2_grpc.AdminStub(channel).ListNodes(admin_pb2.ListNodesRequest(), timeout=30)
        elapsed = time.monotonic() - started
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert elapsed < RETRY_BUDGET_S + 3


def test_unavailable_from_a_handler_is_not_retried(cluster_dir: Path,
                                                    servers: list[RunningServer]) -> None:
    running, admin = start_admin(cluster_dir)
    servers.append(running)
    admin.to_raise = Unavailable("node1 is down; the mint was not recorded")
    with open_channel(f"127.0.0.1:{running.port}", channel_credentials(cluster_dir, "admin"),
                      server_name="coordinator") as channel:
        with pytest.raises(grpc.RpcError) as caught:
            admin_pb2_grpc.AdminStub(channel).Mint(
                admin_pb2.MintRequest(amount=5), timeout=30)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "node1 is down" in (caught.value.details() or "")
    assert admin.calls == 1  # the handler ran once: a retry would run it again


@pytest.mark.parametrize("server_permit_ms, dropped", [(500, False), (10_000, True)])
def test_idle_channel_with_keepalive(cluster_dir: Path, servers: list[RunningServer],
                                     server_permit_ms: int, dropped: bool) -> None:
    """Client pings every second while idle; a server permitting that keeps the
    connection, one permitting only every 10 s (3 strikes) sends GOAWAY."""
    running, admin = start_admin(cluster_dir, overrides=(
        ("grpc.http2.min_ping_interval_without_data_ms", server_permit_ms),))
    servers.append(running)
    states: list[grpc.ChannelConnectivity] = []
    with open_channel(f"127.0.0.1:{running.port}", channel_credentials(cluster_dir, "admin"),
                      server_name="coordinator",
                      overrides=[("grpc.keepalive_time_ms", 1000),
                                 ("grpc.keepalive_timeout_ms", 2000)]) as channel:
        stub = admin_pb2_grpc.AdminStub(channel)
        stub.ListNodes(admin_pb2.ListNodesRequest(), timeout=10)
        channel.subscribe(states.append)
        time.sleep(6)   # idle: only keepalive pings flow
        stub.ListNodes(admin_pb2.ListNodesRequest(), timeout=10)
    left_ready = [s for s in states if s != grpc.ChannelConnectivity.READY]
    assert bool(left_ready) is dropped, states
    assert admin.calls == 2
