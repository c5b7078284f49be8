"""The wire: TLS/mTLS gRPC servers and channels, and the error-to-status table.

Only servicers, server start-up and clients import this package; logic modules raise
`mutualmind.errors` types and never import grpc.
"""

from mutualmind.transport.calls import call, typed_rpc_errors
from mutualmind.transport.channel import open_channel
from mutualmind.transport.credentials import channel_credentials, server_credentials
from mutualmind.transport.health_probe import probe_health, wait_until_serving
from mutualmind.transport.member_channel import MemberChannel
from mutualmind.transport.options import DEFAULT_DEADLINE_S, MAX_MESSAGE_BYTES
from mutualmind.transport.peer import peer_name, peer_role, require_role
from mutualmind.transport.server import (
    RunningServer,
    build_server,
    serve_until_signalled,
)
from mutualmind.transport.status import error_from_rpc_error, raise_from_rpc_error

__all__ = [
    "DEFAULT_DEADLINE_S", "MAX_MESSAGE_BYTES", "MemberChannel", "RunningServer", "build_server",
    "call", "channel_credentials", "error_from_rpc_error", "open_channel", "peer_name",
    "peer_role", "probe_health", "raise_from_rpc_error", "require_role",
    "serve_until_signalled", "server_credentials", "typed_rpc_errors", "wait_until_serving",
]
