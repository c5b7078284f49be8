"""Open a TLS channel to one cluster member, with the same limits and keepalive as the servers.

Deadlines are per call and the caller's job (pass `timeout=DEFAULT_DEADLINE_S`); a
channel has no deadline of its own.

`server_name` is the identity check: the member the caller means to reach ("node0",
"coordinator", "dealer"). Every member certificate carries its member name as a DNS SAN
(`mutualmind.transport.pki`), and grpc checks the server certificate against this name
instead of the address, so the TLS handshake itself fails - before the first byte of a
request is sent - unless the server holds that member's certificate. A server holding
node 1's key on node 0's address therefore receives nothing meant for node 0; the
caller sees `IdentityMismatch`. Every client that talks to a specific member passes it;
without it any certificate of the cluster CA whose SANs cover the address is accepted.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from mutualmind.transport.options import CHANNEL_OPTIONS


def open_channel(address: str, credentials: grpc.ChannelCredentials, *,
                 server_name: str | None = None,
                 overrides: Sequence[tuple[str, int | str]] = ()) -> grpc.Channel:
    """A secure channel to `address` ("host:port") that only talks to member `server_name`;
    close it (or use `with`) when done.

    Every channel carries CHANNEL_OPTIONS: message limits, keepalive, and the retry
    policy for UNAVAILABLE (see `options.SERVICE_CONFIG`). `overrides` replace options of
    the same name (tests shorten keepalive with it)."""
    return grpc.secure_channel(address, credentials,
                               options=channel_options(server_name=server_name,
                                                       overrides=overrides))


def channel_options(*, server_name: str | None = None,
                    overrides: Sequence[tuple[str, int | str]] = ()) -> list[tuple[str, int | str]]:
    """The options `open_channel` passes: CHANNEL_OPTIONS, `overrides` replacing options of
    the same name, and the member-name check."""
    replaced = {name for name, _ in overrides}
    options: list[tuple[str, int | str]] = [
        (name, value) for name, value in CHANNEL_OPTIONS if name not in replaced]
    options += overrides
    if server_name is not None:
        options.append(("grpc.ssl_target_name_override", server_name))
    return options
