"""`mutualmind cluster probe`: one gRPC health check, for container health checks and scripts.

Exit 0 when the server at --address reports SERVING, 1 otherwise (NOT_SERVING or
UNREACHABLE, printed). A cluster port needs a client certificate: `--member admin`
(the default) presents the cluster's admin certificate; `--member none` presents none,
for public ports. The server's certificate is checked against the cluster CA under
--server-name (a member name such as "coordinator"), so `localhost` works in a container.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "probe", help="check one member's gRPC health (exit 0 when SERVING)",
        description="One standard grpc.health.v1 check over the cluster's TLS.")
    parser.add_argument("--address", required=True, metavar="HOST:PORT",
                        help="the member's port to check")
    parser.add_argument("--certs", type=Path, required=True,
                        help="cluster folder (ca.pem, and the member's certificate)")
    parser.add_argument("--member", default="admin",
                        help="certificate to present: a member name, or `none` for public ports")
    parser.add_argument("--server-name", default=None,
                        help="name the server certificate must carry (e.g. coordinator, node0)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    from mutualmind.errors import InvalidInput
    from mutualmind.transport import channel_credentials
    from mutualmind.transport.health_probe import SERVING, UNREACHABLE, check_health

    if not 0 < args.timeout <= 60:
        raise InvalidInput(f"--timeout must be within 0..60 s, got {args.timeout}")
    member = None if args.member == "none" else args.member
    credentials = channel_credentials(args.certs, member)
    state, why = check_health(args.address, credentials, server_name=args.server_name,
                              timeout=args.timeout)
    if state == UNREACHABLE:
        print(f"{args.address}: UNREACHABLE ({why})")
        return 1
    print(f"{args.address}: {state}")
    return 0 if state == SERVING else 1
