"""The one table from MutualMind's ErrorCode to gRPC status, in both directions.

Servers turn a typed `MutualMindError` into a gRPC status whose details are a
google.rpc.Status carrying an ErrorInfo (domain "mutualmind", reason = the ErrorCode),
so a client can rebuild the very same typed error with `raise_from_rpc_error` and the
CLI can print its message and exit with its code. Statuses that carry no ErrorInfo
(connection refused, TLS handshake failure, deadline, message too large) are mapped by
their gRPC code alone, so callers only ever catch `MutualMindError`; a handshake that
failed because the server's certificate does not name the member the channel was opened
for becomes `IdentityMismatch` (never retried).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from mutualmind.errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    ErrorCode,
    IdentityMismatch,
    IntegrityError,
    InvalidInput,
    MutualMindError,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    RuleViolation,
    Unavailable,
)

ERROR_DOMAIN = "mutualmind"
# gRPC's retry pushback trailer: a negative value means "do not retry this call".
NO_RETRY_TRAILER = ("grpc-retry-pushback-ms", "-1")
MAX_MESSAGE_CHARS = 2000  # the message travels in an HTTP/2 header; keep it bounded

# ErrorCode -> (gRPC status, typed error class a client rebuilds).
STATUS_TABLE: dict[ErrorCode, tuple[grpc.StatusCode, type[MutualMindError]]] = {
    ErrorCode.INVALID_INPUT: (grpc.StatusCode.INVALID_ARGUMENT, InvalidInput),
    ErrorCode.NOT_FOUND: (grpc.StatusCode.NOT_FOUND, NotFound),
    ErrorCode.ALREADY_EXISTS: (grpc.StatusCode.ALREADY_EXISTS, AlreadyExists),
    ErrorCode.PERMISSION_DENIED: (grpc.StatusCode.PERMISSION_DENIED, PermissionDenied),
    ErrorCode.RULE_VIOLATION: (grpc.StatusCode.FAILED_PRECONDITION, RuleViolation),
    ErrorCode.QUOTA_EXCEEDED: (grpc.StatusCode.RESOURCE_EXHAUSTED, QuotaExceeded),
    ErrorCode.INTEGRITY: (grpc.StatusCode.DATA_LOSS, IntegrityError),
    ErrorCode.UNAVAILABLE: (grpc.StatusCode.UNAVAILABLE, Unavailable),
    ErrorCode.ABORTED: (grpc.StatusCode.ABORTED, Aborted),
    ErrorCode.DEADLINE: (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceeded),
    ErrorCode.INTERNAL: (grpc.StatusCode.INTERNAL, MutualMindError),
}

# What grpc's TLS stack says when the server certificate lacks the name the channel was
# opened for (`open_channel(..., server_name=...)`): the handshake failed, nothing was sent.
_HOSTNAME_CHECK_FAILED = "Hostname Verification Check failed"

# For statuses without ErrorInfo: what the failure most likely means, and what to do.
_BARE_STATUS: dict[grpc.StatusCode, tuple[ErrorCode, str]] = {
    grpc.StatusCode.UNAVAILABLE: (
        ErrorCode.UNAVAILABLE,
        "is the server running at that address, and do both sides use certificates "
        "from the same cluster CA? Retry once it is up"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (
        ErrorCode.DEADLINE, "the server did not answer in time; retry or raise the deadline"),
    grpc.StatusCode.UNAUTHENTICATED: (
        ErrorCode.PERMISSION_DENIED, "present a valid cluster certificate"),
    grpc.StatusCode.PERMISSION_DENIED: (
        ErrorCode.PERMISSION_DENIED, "this caller may not make this call"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (
        ErrorCode.QUOTA_EXCEEDED, "send smaller messages (chunk the data) or fewer at once"),
    grpc.StatusCode.INVALID_ARGUMENT: (ErrorCode.INVALID_INPUT, "fix the request"),
    grpc.StatusCode.NOT_FOUND: (ErrorCode.NOT_FOUND, "check the name or id"),
    grpc.StatusCode.ALREADY_EXISTS: (ErrorCode.ALREADY_EXISTS, "it is already there"),
    grpc.StatusCode.ABORTED: (ErrorCode.ABORTED, "the operation was aborted; retry"),
    grpc.StatusCode.CANCELLED: (ErrorCode.ABORTED, "the call was cancelled"),
    grpc.StatusCode.UNIMPLEMENTED: (
        ErrorCode.INVALID_INPUT, "the server does not offer this method; check the address "
        "and that client and server versions match"),
}


@dataclass(frozen=True)
class _Status(grpc.Status):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


def status_for_error(err: MutualMindError) -> grpc.Status:
    """The gRPC status (code, message, rich details) a server sends for `err`."""
    grpc_code, _ = STATUS_TABLE[err.code]
    message = err.message[:MAX_MESSAGE_CHARS]
    metadata = {"code": err.code.value}
    if isinstance(err, RuleViolation):
        metadata["rule"] = err.rule
    info = error_details_pb2.ErrorInfo(reason=err.code.name, domain=ERROR_DOMAIN,
                                       metadata=metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = rpc_status.to_status(status_pb2.Status(
        code=grpc_code.value[0], message=message, details=[detail]))
    if grpc_code is grpc.StatusCode.UNAVAILABLE:
        # The handler ran (and may have acted): tell the client's retry policy
        # (options.SERVICE_CONFIG) not to send this call again.
        return _Status(status.code, status.details,
                       (*status.trailing_metadata, NO_RETRY_TRAILER))
    return status


def error_from_rpc_error(err: grpc.RpcError) -> MutualMindError:
    """The typed error a failed call stands for (see module docstring)."""
    info = _error_info(err)
    message = _details(err)
    if info is not None:
        try:
            code = ErrorCode(info.metadata["code"])
        except (KeyError, ValueError):
            code = ErrorCode.INTERNAL
        _, cls = STATUS_TABLE[code]
        if cls is RuleViolation:
            rule = info.metadata.get("rule", "unknown_rule")
            prefix = f"{rule}: "
            text = message[len(prefix):] if message.startswith(prefix) else message
            return RuleViolation(rule, text)
        if cls is MutualMindError:
            return MutualMindError(message, code=code)
        return cls(message)
    grpc_code = _code(err)
    if _HOSTNAME_CHECK_FAILED in message:
        return IdentityMismatch(
            "identity mismatch: the server's TLS certificate does not name the cluster member "
            "this client meant to reach, so nothing was sent; check that the address belongs "
            "to that member and that its certificate is the one `mutualmind cluster certs` "
            f"made for it ({message})")
    code, hint = _BARE_STATUS.get(grpc_code, (ErrorCode.INTERNAL, "see the server log"))
    text = f"call failed ({grpc_code.name if grpc_code else 'no status'}: {message}); {hint}"
    _, cls = STATUS_TABLE[code]
    if cls is MutualMindError:
        return MutualMindError(text, code=code)
    if cls is RuleViolation:  # not reachable from _BARE_STATUS, kept for completeness
        return RuleViolation("unknown_rule", text)
    return cls(text)


def raise_from_rpc_error(err: grpc.RpcError) -> NoReturn:
    """Raise the typed error a failed call stands for, chained to the RpcError."""
    raise error_from_rpc_error(err) from err


def answered_by_handler(err: grpc.RpcError) -> bool:
    """True when one of our handlers raised this status (it carries our typed error), so
    the peer was reached; False for a failure of the link or the transport itself."""
    return _error_info(err) is not None


def _error_info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    if not isinstance(err, grpc.Call):
        return None
    try:
        status = rpc_status.from_call(err)
    except ValueError:  # details inconsistent with the status: trust neither
        return None
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.domain == ERROR_DOMAIN:
                return info
    return None


def _code(err: grpc.RpcError) -> grpc.StatusCode | None:
    code = getattr(err, "code", None)
    return code() if callable(code) else None


def _details(err: grpc.RpcError) -> str:
    details = getattr(err, "details", None)
    text = details() if callable(details) else None
    return text or ""
