"""Ask a member whether it is serving, the way `cluster status` and `ListNodes` report it.

The answer is one of the strings Admin's NodeInfo.health uses: SERVING, NOT_SERVING or
UNREACHABLE (no connection, TLS refused, no answer in time). `wait_until_serving` is for
start-up: a freshly spawned process takes a moment to bind its port.
"""

from __future__ import annotations

import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mutualmind.errors import Unavailable
from mutualmind.transport.channel import open_channel

SERVING = "SERVING"
NOT_SERVING = "NOT_SERVING"
UNREACHABLE = "UNREACHABLE"


def probe_health(address: str, credentials: grpc.ChannelCredentials, *,
                 service: str = "", timeout: float = 3.0, server_name: str | None = None) -> str:
    """SERVING, NOT_SERVING or UNREACHABLE for `service` ("" = the whole server).

    With `server_name` (a member name) a server that is not that member is UNREACHABLE.
    """
    return check_health(address, credentials, service=service, timeout=timeout,
                        server_name=server_name)[0]


def check_health(address: str, credentials: grpc.ChannelCredentials, *,
                 server_name: str | None = None, service: str = "",
                 timeout: float = 3.0) -> tuple[str, str]:
    """(state, why): the state as `probe_health` gives it, and for UNREACHABLE the name of
    the failed call's gRPC status (UNAVAILABLE, DEADLINE_EXCEEDED, ...), else ""."""
    with open_channel(address, credentials, server_name=server_name) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:  # service unknown to this server
                return NOT_SERVING, ""
            return UNREACHABLE, err.code().name
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    return (SERVING if serving else NOT_SERVING), ""


def wait_until_serving(address: str, credentials: grpc.ChannelCredentials, *,
                       service: str = "", timeout: float = 30.0,
                       interval: float = 0.1, server_name: str | None = None) -> None:
    """Poll until `service` at `address` is SERVING; Unavailable after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    state = UNREACHABLE
    while time.monotonic() < deadline:
        state = probe_health(address, credentials, service=service, server_name=server_name,
                             timeout=max(0.1, min(3.0, deadline - time.monotonic())))
        if state == SERVING:
            return
        time.sleep(interval)
    raise Unavailable(f"{address} is still {state} after {timeout:.0f} s; check that the "
                      "process started (its log) and that it uses this cluster's certificates")
