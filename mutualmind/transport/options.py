"""Channel arguments shared by every MutualMind server and client.

Limits are set on both sides so a peer cannot push an unbounded message, and keepalive
settings match so that neither side punishes the other's pings (a client pinging faster
than the server permits gets GOAWAY "too_many_pings"). Share uploads stream in chunks
well below MAX_MESSAGE_BYTES.
"""

from __future__ import annotations

from mutualmind.vocabulary.deadlines import RPC_S

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
DEFAULT_DEADLINE_S = RPC_S  # for control-plane calls; long jobs are polled, not awaited

SERVER_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 60_000),            # ping idle clients every minute
    ("grpc.keepalive_timeout_ms", 20_000),         # drop them if no answer in 20 s
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),  # accept client pings >= 10 s
    ("grpc.http2.max_ping_strikes", 3),
    # A fixed port already taken must fail loudly instead of being shared silently
    # with another server (grpc turns SO_REUSEPORT on by default).
    ("grpc.so_reuseport", 0),
]

CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # A member that restarts (node, coordinator) is reachable again within ~2 s instead
    # of after grpc's default backoff, which grows to two minutes.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]
