"""Build a TLS gRPC server the way every MutualMind process needs one.

Every server gets the same things, so no role forgets one: the error interceptor, the
standard grpc.health.v1 service (every listed service SERVING until stop), server
reflection (so grpcurl and operators can see the API), message-size limits, keepalive,
and a refusal to share a port. A process with a cluster port and a public port builds
two servers, because one grpc.Server serves all its services on all its ports.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from mutualmind.errors import InvalidInput, Unavailable
from mutualmind.transport.interceptor import ErrorStatusInterceptor
from mutualmind.transport.options import SERVER_OPTIONS

AddServicer = Callable[[Any, grpc.Server], None]


@dataclass
class RunningServer:
    """A started server, its bound port, and its health servicer."""

    server: grpc.Server
    port: int
    health: health.HealthServicer
    service_names: tuple[str, ...]

    def set_serving(self, serving: bool) -> None:
        """Report every service (and the whole server, "") SERVING or NOT_SERVING."""
        status = (health_pb2.HealthCheckResponse.SERVING if serving
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        for name in ("", *self.service_names):
            self.health.set(name, status)

    def stop(self, grace: float | None = 2.0) -> threading.Event:
        """Say NOT_SERVING first (so load balancers and pollers look away), then stop."""
        self.health.enter_graceful_shutdown()
        return self.server.stop(grace)

    def wait(self) -> None:
        self.server.wait_for_termination()


def build_server(services: Sequence[tuple[AddServicer, Any]], *,
                 address: str = "127.0.0.1:0",
                 credentials: grpc.ServerCredentials,
                 service_names: Sequence[str],
                 max_workers: int = 8,
                 maximum_concurrent_rpcs: int | None = None,
                 overrides: Sequence[tuple[str, int]] = ()) -> RunningServer:
    """Create, bind and start a server; returns it with the port actually bound.

    `services` are (add_XServicer_to_server, servicer) pairs; `service_names` are their
    full names (e.g. `admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name`) for
    health and reflection. `address` "host:0" binds a free port. Plain-text ports are
    not offered: every MutualMind port is TLS. `overrides` replace SERVER_OPTIONS of the
    same name (tests shorten the keepalive permit with it).
    """
    if credentials is None:
        raise InvalidInput("a server needs TLS credentials; build them with "
                           "mutualmind.transport.server_credentials")
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers,
                                   thread_name_prefix="mutualmind-rpc"),
        interceptors=[ErrorStatusInterceptor()],
        options=[*((n, v) for n, v in SERVER_OPTIONS if n not in {k for k, _ in overrides}),
                 *overrides],
        maximum_concurrent_rpcs=maximum_concurrent_rpcs,
    )
    for add_servicer, servicer in services:
        add_servicer(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = tuple(service_names)
    reflection.enable_server_reflection(
        (*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = _bind(server, address, credentials)
    running = RunningServer(server=server, port=port, health=health_servicer,
                            service_names=(*names, health.SERVICE_NAME))
    running.set_serving(True)
    server.start()
    return running


def _bind(server: grpc.Server, address: str,
          credentials: grpc.ServerCredentials) -> int:
    """Bind a TLS port, turning grpc's 0 / RuntimeError into a typed error."""
    if ":" not in address:
        raise InvalidInput(f"listen address {address!r} needs a port, e.g. 127.0.0.1:50051 "
                           "(port 0 picks a free one)")
    try:
        port = server.add_secure_port(address, credentials)
    except RuntimeError as err:
        port = 0
        reason = str(err)
    else:
        reason = "grpc could not bind it"
    if port == 0:
        raise Unavailable(f"cannot listen on {address} ({reason}); the port may be in "
                          "use by another process: pick another or stop that process")
    return port


def serve_until_signalled(ready_line: str, stop: Callable[[], None], *, name: str) -> int:
    """Print `ready_line` (ports, for whoever started us), block until SIGTERM or SIGINT,
    then call `stop`. The one way every `mutualmind ... serve` process runs."""
    import signal
    import sys

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    print(ready_line, flush=True)
    try:
        while not stopping.wait(1.0):
            pass
    finally:
        stop()
        print(f"{name} stopped", file=sys.stderr, flush=True)
    return 0
