"""Open a TLS channel with the same limits and keepalive as the servers.

Deadlines are per call and the caller's job (pass `timeout=DEFAULT_DEADLINE_S`); a
channel has no deadline of its own. `server_name` overrides the name checked against
the server certificate, for when the address is an IP or alias not among its SANs but
the member name (e.g. "node1") is.
"""

from __future__ import annotations

import grpc

from mutualmind.transport.options import CHANNEL_OPTIONS


def open_channel(address: str, credentials: grpc.ChannelCredentials, *,
                 server_name: str | None = None) -> grpc.Channel:
    """A secure channel to `address` ("host:port"); close it (or use `with`) when done."""
    options: list[tuple[str, int | str]] = list(CHANNEL_OPTIONS)
    if server_name is not None:
        options.append(("grpc.ssl_target_name_override", server_name))
    return grpc.secure_channel(address, credentials, options=options)
