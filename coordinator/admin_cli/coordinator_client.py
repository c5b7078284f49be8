"""A client for the coordinator's Admin and Market APIs, for the admin commands.

Every call has a deadline and a failed call becomes the typed error the server sent, so
the CLI prints one line and exits with its code. Where the coordinator is comes from
`coordinator.admin_cli.target`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from coordinator.admin_cli.target import COORDINATOR_NAME, AdminTarget
from mutualmind.vocabulary.deadlines import RPC_S

ADMIN_MEMBER = "admin"


class CoordinatorClient:
    """Admin calls (mTLS, admin certificate) and Market calls (TLS) with typed errors."""

    def __init__(self, target: AdminTarget) -> None:
        # grpc's C core logs TLS handshake failures at INFO on stderr; the CLI's contract
        # is one error line, so keep its own logging to errors (before grpc is loaded).
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
        self.target = target
        self._channels: list[Any] = []
        self._admin: Any = None
        self._market: Any = None

    def __enter__(self) -> CoordinatorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for channel in self._channels:
            channel.close()
        self._channels.clear()

    @property
    def admin(self) -> Any:
        if self._admin is None:
            from mutualmind.transport import channel_credentials, open_channel
            from proto import admin_pb2_grpc

            channel = open_channel(self.target.require_admin(),
                                   channel_credentials(self.target.certs_dir, ADMIN_MEMBER),
                                   server_name=COORDINATOR_NAME)
            self._channels.append(channel)
            self._admin = admin_pb2_grpc.AdminStub(channel)
        return self._admin

    @property
    def market(self) -> Any:
        if self._market is None:
            from mutualmind.transport import channel_credentials, open_channel
            from proto import market_pb2_grpc

            channel = open_channel(self.target.require_market(),
                                   channel_credentials(self.target.certs_dir, None),
                                   server_name=COORDINATOR_NAME)
            self._channels.append(channel)
            self._market = market_pb2_grpc.MarketStub(channel)
        return self._market

    def call(self, stub: Any, method: str, request: Any, *,
             timeout: float = RPC_S) -> Any:
        """One unary call; a failure is raised as the typed error it stands for."""
        from mutualmind.transport import call

        return call(stub, method, request, timeout=timeout)

    def stream(self, stub: Any, method: str, request: Any, *, timeout: float) -> Iterator[Any]:
        """A server-streaming call, message by message, with typed errors."""
        from mutualmind.transport import typed_rpc_errors

        with typed_rpc_errors():
            yield from getattr(stub, method)(request, timeout=timeout)
