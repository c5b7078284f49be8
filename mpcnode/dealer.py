"""`mutualmind dealer serve`: the dealer's mutual-TLS control service.

The dealer is its own process (and container): never the coordinator, never a node.
For each job the coordinator calls StartSession, and the dealer starts CrypTen's TTP
for that job as a subprocess (`mpcnode.ttp_sessions`), which joins the job's
rendezvous as rank world_size. The servicer (`mpcnode.dealer_servicer`) only decodes,
checks the caller's role, calls `TtpSessions` and encodes; `mpcnode.dealer_server`
starts it. Heavy imports (grpc) stay inside the handlers so that `mutualmind --help`
starts fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    dealer = subparsers.add_parser("dealer", help="run the MPC dealer (CrypTen TTP per job)")
    dealer_sub = dealer.add_subparsers(dest="dealer_command", metavar="ACTION", required=True)
    serve = dealer_sub.add_parser("serve", help="serve the dealer's control API on a mutual-TLS port")
    serve.add_argument("--certs", type=Path, required=True, help="cluster folder from `mutualmind cluster certs`")
    serve.add_argument("--listen", default="127.0.0.1:0", help="cluster port (default: a free port)")
    serve.add_argument("--work-dir", type=Path, default=None,
                       help="where per-job TTP logs go (default: ./dealer)")
    serve.add_argument("--ready-workers", type=int, default=1,
                       help="TTP processes kept started ahead of their jobs (CrypTen already imported), "
                            "each ~RSS in docs/operations.md; 0: every job starts its TTP cold (default 1)")
    serve.set_defaults(func=serve_dealer)


def serve_dealer(args: argparse.Namespace) -> int:
    """Start the dealer, print its port on one line, serve until SIGTERM/SIGINT."""
    from mpcnode.dealer_server import start_dealer
    from mutualmind.transport import serve_until_signalled

    work_dir = args.work_dir if args.work_dir is not None else Path.cwd() / "dealer"
    dealer = start_dealer(args.certs, args.listen, work_dir, ready_workers=args.ready_workers)
    return serve_until_signalled(f"dealer cluster_port={dealer.port}",
                                 lambda: dealer.stop(grace=2.0), name="dealer")
