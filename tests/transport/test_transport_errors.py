"""Typed errors cross the wire intact; unexpected ones arrive as INTERNAL without internals.

A real mTLS server's servicer raises; the client sees the gRPC status from the one table,
the google.rpc.Status ErrorInfo detail, and `raise_from_rpc_error` rebuilds the typed
error with its message (and, for RuleViolation, its rule).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from mutualmind.errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    ErrorCode,
    IntegrityError,
    InvalidInput,
    MutualMindError,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    RuleViolation,
    Unavailable,
)
from mutualmind.transport import (
    MAX_MESSAGE_BYTES,
    RunningServer,
    channel_credentials,
    raise_from_rpc_error,
)
from mutualmind.transport.status import ERROR_DOMAIN, STATUS_TABLE
from proto import admin_pb2, admin_pb2_grpc, node_pb2, node_pb2_grpc

TYPED_ERRORS: list[tuple[MutualMindError, grpc.StatusCode]] = [
    (InvalidInput("amount must be positive; got -3"), grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound("no provider p9; register it first"), grpc.StatusCode.NOT_FOUND),
    (AlreadyExists("dataset d1 is already stored"), grpc.StatusCode.ALREADY_EXISTS),
    (PermissionDenied("signature does not verify"), grpc.StatusCode.PERMISSION_DENIED),
    (RuleViolation("insufficient_balance", "p1 has 3, needs 5"),
     grpc.StatusCode.FAILED_PRECONDITION),
    (QuotaExceeded("share is 9 GiB, quota 1 GiB"), grpc.StatusCode.RESOURCE_EXHAUSTED),
    (IntegrityError("share hash differs from commitment"), grpc.StatusCode.DATA_LOSS),
    (Unavailable("node2 is down; retry later"), grpc.StatusCode.UNAVAILABLE),
    (Aborted("round r1 was aborted"), grpc.StatusCode.ABORTED),
    (DeadlineExceeded("job j1 ran past 60 s"), grpc.StatusCode.DEADLINE_EXCEEDED),
]


def call_error(call: Callable[..., Any], request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=10)
    return info.value


def error_info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(err)
    assert status is not None, "no google.rpc.Status in the trailers"
    infos = []
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        assert detail.Unpack(info)
        infos.append(info)
    assert len(infos) == 1
    return infos[0]


def test_table_covers_every_error_code() -> None:
    assert set(STATUS_TABLE) == set(ErrorCode)
    assert {err.code for err, _ in TYPED_ERRORS} == set(ErrorCode) - {ErrorCode.INTERNAL}


@pytest.mark.parametrize("raised,status", TYPED_ERRORS, ids=lambda v: type(v).__name__)
def test_typed_error_crosses_the_wire(raised: MutualMindError, status: grpc.StatusCode,
                                      cluster_server: RunningServer, admin_servicer: Any,
                                      admin_client: Any) -> None:
    admin_servicer.to_raise = raised
    try:
        err = call_error(admin_client(cluster_server.port).Mint, admin_pb2.MintRequest())
    finally:
        admin_servicer.to_raise = None
    assert err.code() == status
    assert err.details() == raised.message
    info = error_info(err)
    assert (info.domain, info.reason) == (ERROR_DOMAIN, raised.code.name)
    assert info.metadata["code"] == raised.code.value
    with pytest.raises(MutualMindError) as rebuilt:
        raise_from_rpc_error(err)
    assert type(rebuilt.value) is type(raised)
    assert rebuilt.value.message == raised.message
    assert rebuilt.value.code == raised.code
    assert rebuilt.value.__cause__ is err
    if isinstance(raised, RuleViolation):
        assert isinstance(rebuilt.value, RuleViolation)
        assert rebuilt.value.rule == raised.rule == info.metadata["rule"]


def test_unexpected_exception_is_internal_without_internals(
        cluster_server: RunningServer, admin_servicer: Any, admin_client: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    admin_servicer.to_raise = KeyError("/var/lib/secret/ledger.sqlite row 42")
    try:
        with caplog.at_level(logging.ERROR, logger="mutualmind.transport.interceptor"):
            err = call_error(admin_client(cluster_server.port).Mint, admin_pb2.MintRequest())
    finally:
        admin_servicer.to_raise = None
    assert err.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in err.details() and "KeyError" not in err.details()
    assert "/mutualmind.v1.Admin/Mint" in err.details() and "incident" in err.details()
    assert error_info(err).reason == "INTERNAL"
    with pytest.raises(MutualMindError) as rebuilt:
        raise_from_rpc_error(err)
    assert rebuilt.value.code == ErrorCode.INTERNAL
    # The operator finds the traceback under the same incident id.
    incident = err.details().split("incident ")[1].split(")")[0]
    logged = [r for r in caplog.records if incident in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert "secret" in str(logged[0].exc_info[1])


def test_servicer_abort_keeps_its_own_status(cluster_server: RunningServer,
                                             admin_client: Any) -> None:
    err = call_error(admin_client(cluster_server.port).Mint,
                     admin_pb2.MintRequest(memo="abort-itself"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert err.details() == "no such provider p1"
    with pytest.raises(NotFound, match="no such provider p1"):
        raise_from_rpc_error(err)


def test_error_in_client_stream_handler(public_server: RunningServer, intake_servicer: Any,
                                        open_local: Any, cluster_dir: Any) -> None:
    intake_servicer.to_raise = IntegrityError("share of d1 does not match commitment 0")
    try:
        channel = open_local(public_server.port, channel_credentials(cluster_dir, None))
        err = call_error(node_pb2_grpc.ShareIntakeStub(channel).UploadShare,
                         iter([node_pb2.ShareChunk(data=b"\x02" * 10)]))
    finally:
        intake_servicer.to_raise = None
    assert err.code() == grpc.StatusCode.DATA_LOSS
    with pytest.raises(IntegrityError, match="does not match commitment"):
        raise_from_rpc_error(err)


def test_message_over_the_limit_is_refused(cluster_server: RunningServer,
                                           admin_servicer: Any, admin_client: Any,
                                           cluster_dir: Any) -> None:
    before = admin_servicer.calls
    request = admin_pb2.MintRequest(memo="x" * (MAX_MESSAGE_BYTES + 1))
    # Our own channel refuses to send it ...
    err = call_error(admin_client(cluster_server.port).Mint, request)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(QuotaExceeded, match="smaller messages"):
        raise_from_rpc_error(err)
    # ... and the server refuses it from a client without that limit.
    with grpc.secure_channel(f"127.0.0.1:{cluster_server.port}",
                             channel_credentials(cluster_dir, "admin"),
                             options=[("grpc.max_send_message_length", -1)]) as channel:
        err = call_error(admin_pb2_grpc.AdminStub(channel).Mint, request)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert admin_servicer.calls == before


def test_unreachable_server_is_unavailable(admin_client: Any) -> None:
    import socket
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    err = call_error(admin_client(port).ListNodes, admin_pb2.ListNodesRequest())
    with pytest.raises(Unavailable, match="is the server running"):
        raise_from_rpc_error(err)


def test_unreachable_blames_the_link_only_when_no_handler_answered(
        cluster_server: RunningServer, admin_servicer: Any, admin_client: Any) -> None:
    import socket

    from mutualmind.transport import call

    def blame(code: str) -> Unavailable:
        return Unavailable(f"node7 cannot be reached ({code})")

    with socket.socket() as probe:  # a port nobody listens on: the caller's words
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(Unavailable, match=r"node7 cannot be reached \(UNAVAILABLE\)"):
        call(admin_client(port), "ListNodes", admin_pb2.ListNodesRequest(), timeout=10,
             unreachable=blame)
    # the server was reached and its handler answered Unavailable: its words stand
    admin_servicer.to_raise = Unavailable("node2 is down; retry later")
    try:
        with pytest.raises(Unavailable) as caught:
            call(admin_client(cluster_server.port), "Mint", admin_pb2.MintRequest(), timeout=10,
                 unreachable=blame)
    finally:
        admin_servicer.to_raise = None
    assert caught.value.message == "node2 is down; retry later"
