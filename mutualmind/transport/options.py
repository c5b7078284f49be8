"""Channel arguments shared by every MutualMind server and client.

Limits are set on both sides so a peer cannot push an unbounded message, and keepalive
settings match so that neither side punishes the other's pings (a client pinging faster
than the server permits gets GOAWAY "too_many_pings"). Share uploads stream in chunks
well below MAX_MESSAGE_BYTES.
"""

from __future__ import annotations

import json

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

# Retry policy for every method of every client channel: a call that failed UNAVAILABLE
# before any server handler ran (connection refused while a member restarts, a TLS
# handshake that failed once - seen once in 140 calls) is sent again, up to
# RETRY_MAX_ATTEMPTS times (gRPC's cap) after jittered exponential backoff (waits of
# 0.3 s, 0.6 s, 1.2 s, 1.2 s: 3.3 s in all; gRPC's C core jitters each by a fraction
# rather than drawing it from 0 up, and a call to a closed loopback port was measured
# to fail after 3.0-3.4 s every time, 2026-11-30), always within the call's own
# deadline; a member that never comes up fails UNAVAILABLE then. The budget is kept short because permanent TLS failures (wrong CA, expired or
# missing certificate, IdentityMismatch) also arrive as UNAVAILABLE and are retried too.
# Why this is safe for calls that are not idempotent (signed requests, mints, uploads):
#  - a handler of ours that *itself* fails with UNAVAILABLE (e.g. "node1 is down") had
#    already run; `status.status_for_error` then adds the trailer
#    `grpc-retry-pushback-ms: -1`, which tells the client's retry machinery never to retry
#    that call, so only failures that happened before any handler ran are retried;
#  - gRPC commits a call (stops retrying it) as soon as the server's response headers
#    arrive or the request data it buffered for replay exceeds
#    grpc.per_rpc_retry_buffer_size (256 KiB), so a streaming share upload whose chunks
#    already flowed to the node is not retried by gRPC: a failure mid-stream surfaces to
#    the provider as Unavailable, and it is the provider's to upload again.
RETRY_MAX_ATTEMPTS = 5
RETRY_INITIAL_BACKOFF_S = 0.3
RETRY_MAX_BACKOFF_S = 1.2
SERVICE_CONFIG = json.dumps({
    "methodConfig": [{
        "name": [{}],   # every service, every method
        "retryPolicy": {
            "maxAttempts": RETRY_MAX_ATTEMPTS,
            "initialBackoff": f"{RETRY_INITIAL_BACKOFF_S}s",
            "maxBackoff": f"{RETRY_MAX_BACKOFF_S}s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        },
    }],
}, sort_keys=True)

# Client keepalive pings every KEEPALIVE_TIME_MS, also on idle channels, so a NAT or
# firewall between hosts does not silently drop a quiet connection; the servers permit
# pings that often (SERVER_OPTIONS: min_ping_interval_without_data_ms <= this) and so
# never answer them with GOAWAY "too_many_pings".
KEEPALIVE_TIME_MS = 30_000
KEEPALIVE_TIMEOUT_MS = 10_000

CHANNEL_OPTIONS: list[tuple[str, int | str]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.enable_retries", 1),
    ("grpc.service_config", SERVICE_CONFIG),
    # A member that restarts (node, coordinator) is reachable again within ~2 s instead
    # of after grpc's default backoff, which grows to two minutes.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]
