"""The one way a client makes a call: a failed call becomes the typed error it stands for.

Every client (provider, admin CLI, the coordinator's node and dealer links, a node's
view of the coordinator) calls through `call` for a unary RPC, or wraps a streaming call
in `typed_rpc_errors`, instead of catching `grpc.RpcError` itself. `unreachable` lets a
caller say *whose* link is down when the peer cannot be reached (UNAVAILABLE or
DEADLINE_EXCEEDED that no handler of ours answered), so an uploader does not blame the
node for the coordinator; a peer's own typed answer (its handler raised Unavailable,
say) passes through as that peer said it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc

from mutualmind.errors import MutualMindError
from mutualmind.transport.status import answered_by_handler, raise_from_rpc_error

UNREACHABLE_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)

# builds the error to raise when the peer cannot be reached, from the status code's name
Unreachable = Callable[[str], MutualMindError]


@contextmanager
def typed_rpc_errors(unreachable: Unreachable | None = None) -> Iterator[None]:
    """Turn a `grpc.RpcError` raised inside the block into its typed `MutualMindError`."""
    try:
        yield
    except grpc.RpcError as err:
        if unreachable is not None and peer_unreachable(err):
            raise unreachable(err.code().name) from err  # type: ignore[attr-defined]
        raise_from_rpc_error(err)


def peer_unreachable(err: grpc.RpcError) -> bool:
    """True when the call never reached a handler of ours: UNAVAILABLE or
    DEADLINE_EXCEEDED from the link or the transport, not a peer's own answer."""
    code = err.code() if isinstance(err, grpc.Call) else None
    return code in UNREACHABLE_CODES and not answered_by_handler(err)


def call(stub: Any, method: str, request: Any, *, timeout: float,
         unreachable: Unreachable | None = None, **options: Any) -> Any:
    """`stub.method(request, timeout=timeout, **options)` with typed errors."""
    with typed_rpc_errors(unreachable):
        return getattr(stub, method)(request, timeout=timeout, **options)
