"""`mutualmind cluster down`: stop every member a `cluster up` started, remove its state.

SIGTERM first (members stop their servers gracefully), SIGKILL after --timeout. Data
(certificates, ledger, shares, logs) stays; `cluster up` on the same folder resumes it.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "down", help="stop a local cluster started with `cluster up`",
        description="Stop every member recorded in <data-dir>/cluster-state.json.")
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="the folder given to `cluster up`")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds to wait after SIGTERM before SIGKILL")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mutualmind.cluster.local import LocalCluster
    from mutualmind.errors import InvalidInput

    if not args.timeout >= 0:
        raise InvalidInput(f"--timeout must be 0 or more seconds, got {args.timeout}")
    stopped = LocalCluster(args.data_dir).down(grace_s=args.timeout)
    print(f"stopped {', '.join(stopped) if stopped else 'nothing (no member was running)'}; "
          f"data kept in {args.data_dir}")
    return 0
