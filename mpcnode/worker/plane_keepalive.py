"""How a data-plane link notices a peer that vanished without a word.

A host that goes down or a cable that is cut sends no RST and no FIN: a stream to it
just goes quiet, and a party waiting for its next message would wait out the receive
timeout or the job's deadline. So both ends of every plane stream (the dialler's
channel, `plane_client`, and the listener's server, `plane_servicer`) ping a silent peer
every KEEPALIVE_S and drop the link when a ping is not answered within as long again:
the job fails naming that peer in about 2 x KEEPALIVE_S. A party that computes for
minutes without sending is still answered: gRPC's transport, not the MPC code,
acknowledges pings. `PlaneConfig.keepalive_s` changes it (tests shorten it).
"""

from __future__ import annotations

KEEPALIVE_S = 10.0


def keepalive_options(keepalive_s: float, *, listener: bool) -> tuple[tuple[str, int], ...]:
    """gRPC arguments for one side of a plane stream: ping a silent peer however long
    the quiet lasts (no cap on pings without data); the listener also accepts the
    dialler's pings at twice their rate, so an early one (jitter) is no strike and never
    earns a GOAWAY "too_many_pings"."""
    ms = max(1, int(keepalive_s * 1000))
    options = [("grpc.keepalive_time_ms", ms), ("grpc.keepalive_timeout_ms", ms),
               ("grpc.http2.max_pings_without_data", 0)]
    if listener:
        options.append(("grpc.http2.min_ping_interval_without_data_ms", max(1, ms // 2)))
    return tuple(options)
