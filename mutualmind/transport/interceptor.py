"""One wrapper around every RPC that turns exceptions into gRPC statuses.

Servicers stay thin and raise typed `MutualMindError`s like any logic code; this
interceptor converts them with the table in `status.py`. Anything else is a bug: the
client gets INTERNAL with a generic message and an incident id, the traceback goes to the
log under the same id, so no internals (paths, SQL, stack frames) leak to a caller.
A servicer that aborted the call itself (`context.abort`) keeps its own status.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from mutualmind.errors import MutualMindError
from mutualmind.transport.status import status_for_error

_LOG = logging.getLogger(__name__)


class ErrorStatusInterceptor(grpc.ServerInterceptor):
    """Applies the error table to all four kinds of RPC handler."""

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Any],
                          handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _wrap_unary(handler.stream_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        return grpc.stream_stream_rpc_method_handler(
            _wrap_stream(handler.stream_stream, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)


def _wrap_unary(behavior: Callable[[Any, grpc.ServicerContext], Any],
                method: str) -> Callable[[Any, grpc.ServicerContext], Any]:
    def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return behavior(request, context)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a status
            _abort_for(exc, context, method)
    return wrapped


def _wrap_stream(behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]],
                 method: str) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
    def wrapped(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from behavior(request, context)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a status
            _abort_for(exc, context, method)
    return wrapped


def _abort_for(exc: Exception, context: grpc.ServicerContext, method: str) -> None:
    """Abort the call with the status `exc` stands for (never returns)."""
    if isinstance(exc, MutualMindError):
        _LOG.info("%s refused: %s (%s)", method, exc.message, exc.code.value)
        context.abort_with_status(status_for_error(exc))
    if context.code() not in (None, grpc.StatusCode.OK):
        raise exc  # the servicer aborted the call itself: its status stands
    incident = secrets.token_hex(4)
    _LOG.error("%s failed unexpectedly (incident %s)", method, incident, exc_info=exc)
    context.abort_with_status(status_for_error(MutualMindError(
        f"internal error in {method} (incident {incident}); the operator can find it "
        "in the server log")))
