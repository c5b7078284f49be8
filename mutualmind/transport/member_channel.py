"""A long-lived channel to one cluster member that a restarted member does not leave stale.

gRPC's DNS resolver keeps what it learnt about a name: it looks a name up again at most
every 30 s (`grpc.dns_min_time_between_resolutions_ms`), and after a lookup failed it
waits 1 s, then 1.6 times longer each time, up to 2 minutes, before the next one. A
member whose name stopped resolving while it was down (a compose container: podman's
DNS drops a stopped container's name) and came back under a new address is therefore
not found by the old channel for up to that long: a node restarted after a failed round
made the re-run's StartJob miss its 10 s deadline (measured in the compose cluster:
down 60 s, the old channel's first call after the restart waited out its 10 s, while a
new channel reached the node at once). A new channel looks the name up at its first call.

So `MemberChannel` replaces its channel by a new one after a call found the member
unreachable (UNAVAILABLE or DEADLINE_EXCEEDED that no handler of ours answered): the
call after a failure (a round's re-run, the next cosignature request) looks the name up
anew. Only then: a name lookup can itself stall for seconds (podman's DNS while
containers start), which a channel that stays connected never pays again. A replaced
channel is closed once the calls still running on it end: a concurrent call to the same
member is never cancelled by another call's failure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from mutualmind.transport.calls import Unreachable, peer_unreachable, typed_rpc_errors
from mutualmind.transport.channel import open_channel


@dataclass
class _Held:
    """One channel with its stub, and how many calls are running on it."""

    channel: grpc.Channel
    stub: Any
    calls: int = 0


class MemberChannel:
    """`call` on a stub of one member's service, over a channel renewed when it failed."""

    def __init__(self, address: str, credentials: grpc.ChannelCredentials,
                 stub: Callable[[grpc.Channel], Any], *, server_name: str | None = None) -> None:
        self.address = address
        self._credentials = credentials
        self._server_name = server_name
        self._stub_type = stub
        self._lock = threading.Lock()
        self._retired: list[_Held] = []    # replaced, closed when their last call ends
        self._closed = False
        self._current = self._open()
        self.renewals = 0                  # channels replaced so far (for logs and tests)

    def _open(self) -> _Held:
        channel = open_channel(self.address, self._credentials, server_name=self._server_name)
        return _Held(channel, self._stub_type(channel))

    def call(self, method: str, request: Any, *, timeout: float,
             unreachable: Unreachable | None = None, **options: Any) -> Any:
        """`stub.method(request, ...)` with typed errors (see `transport.call`); a call that
        finds the member unreachable leaves a new channel for the next one."""
        with self._lock:
            held = self._current
            held.calls += 1
        try:
            with typed_rpc_errors(unreachable):
                try:
                    return getattr(held.stub, method)(request, timeout=timeout, **options)
                except grpc.RpcError as err:
                    if peer_unreachable(err):
                        with self._lock:
                            self._retire(held)
                    raise
        finally:
            with self._lock:
                held.calls -= 1
                self._close_unused()

    def close(self) -> None:
        """Close every channel now (calls still running on them are cancelled)."""
        with self._lock:
            self._closed = True
            for held in (*self._retired, self._current):
                held.channel.close()
            self._retired.clear()

    def _retire(self, held: _Held) -> None:
        if held is not self._current or self._closed:   # replaced already, or closed
            return
        self._retired.append(held)
        self._current = self._open()
        self.renewals += 1

    def _close_unused(self) -> None:
        for held in [h for h in self._retired if h.calls == 0]:
            held.channel.close()
            self._retired.remove(held)
