"""The error family of MutualMind: every refusal the product makes is one of these.

Logic modules (ledger, share store, provider, rounds) raise these and know nothing of
gRPC; `mutualmind.transport.status` maps each `ErrorCode` to a gRPC status code in one
table, and the CLI maps them to an exit code and one line. A message says what is wrong
and what to do about it; internals go to the log, not into the message.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.Enum):
    """What kind of refusal this is; chooses the gRPC status and CLI exit code."""

    INVALID_INPUT = "invalid_input"          # malformed or out-of-range input
    NOT_FOUND = "not_found"                  # unknown dataset, provider, round, job
    ALREADY_EXISTS = "already_exists"        # second upload, duplicate registration
    PERMISSION_DENIED = "permission_denied"  # bad signature, wrong caller
    RULE_VIOLATION = "rule_violation"        # would break a ledger rule (balance, nonce)
    QUOTA_EXCEEDED = "quota_exceeded"        # share above the node's quota
    INTEGRITY = "integrity"                  # commitment mismatch, hash/signature broken
    UNAVAILABLE = "unavailable"              # a peer is down; retry later
    ABORTED = "aborted"                      # a round or job was aborted
    DEADLINE = "deadline"                    # a job ran past its deadline
    INTERNAL = "internal"                    # a bug: the message is generic


class MutualMindError(Exception):
    """Base of every typed error. `code` picks the status; `str(err)` is for the user."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class InvalidInput(MutualMindError):
    code = ErrorCode.INVALID_INPUT


class NotFound(MutualMindError):
    code = ErrorCode.NOT_FOUND


class AlreadyExists(MutualMindError):
    code = ErrorCode.ALREADY_EXISTS


class PermissionDenied(MutualMindError):
    code = ErrorCode.PERMISSION_DENIED


class IdentityMismatch(PermissionDenied):
    """The server's TLS certificate does not name the member the client meant to reach.

    Raised by the client before it sends a byte: the handshake itself fails. Never
    retried - the same address will present the same certificate.
    """


class RuleViolation(MutualMindError):
    """An operation would break a ledger rule; `rule` names it (e.g. "insufficient_balance")."""

    code = ErrorCode.RULE_VIOLATION

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule


class QuotaExceeded(MutualMindError):
    code = ErrorCode.QUOTA_EXCEEDED


class IntegrityError(MutualMindError):
    code = ErrorCode.INTEGRITY


class Unavailable(MutualMindError):
    code = ErrorCode.UNAVAILABLE


class Aborted(MutualMindError):
    code = ErrorCode.ABORTED


class DeadlineExceeded(MutualMindError):
    code = ErrorCode.DEADLINE


# CLI exit codes per error code: 1 is reserved for "verification found a problem".
EXIT_CODES: dict[ErrorCode, int] = {
    ErrorCode.INVALID_INPUT: 2,
    ErrorCode.NOT_FOUND: 3,
    ErrorCode.ALREADY_EXISTS: 4,
    ErrorCode.PERMISSION_DENIED: 5,
    ErrorCode.RULE_VIOLATION: 6,
    ErrorCode.QUOTA_EXCEEDED: 7,
    ErrorCode.INTEGRITY: 8,
    ErrorCode.UNAVAILABLE: 9,
    ErrorCode.ABORTED: 10,
    ErrorCode.DEADLINE: 11,
    ErrorCode.INTERNAL: 70,
}
