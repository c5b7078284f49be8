"""`mutualmind cluster up`: start dealer, coordinator and nodes as local processes.

Certificates are made in `<data-dir>/certs` on first start (or read from --certs).
The command returns once every member reports SERVING; the processes keep running
detached until `mutualmind cluster down --data-dir DIR`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "up", help="start a local cluster (dealer, coordinator, nodes) on loopback",
        description="Start every member as a detached local process and wait until each "
                    "one's gRPC health says SERVING.")
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="folder for certificates, ledger, shares, logs and state")
    parser.add_argument("--nodes", type=int, default=3, help="number of MPC nodes (default 3)")
    parser.add_argument("--certs", type=Path, default=None,
                        help="an existing cluster folder (default: <data-dir>/certs, made "
                             "if absent)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for each member to serve")
    parser.add_argument("--node-quota-bytes", dest="node_quota", default=None,
                        help="share bytes each node holds for all providers (default 64GiB; "
                             "units KiB, MiB, GiB, TiB); registrations beyond it are refused")
    parser.add_argument("--provider-quota-bytes", dest="provider_quota", default=None,
                        help="share bytes each node holds for one provider (default 16GiB)")
    parser.add_argument("--json", action="store_true", help="print the state as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mutualmind.cluster.local import LocalCluster, member_statuses
    from mutualmind.cluster.status_cli import print_status_table
    from mutualmind.vocabulary.quotas import StorageQuota

    cluster = LocalCluster(args.data_dir, nodes=args.nodes, certs_dir=args.certs,
                           host=args.host, start_timeout_s=args.timeout,
                           quota=StorageQuota.from_sizes(args.node_quota, args.provider_quota))
    state = cluster.up()
    if args.json:
        print(json.dumps(json.loads(state.to_json()) | {
            "market_address": state.market_address, "admin_address": state.admin_address},
            indent=2, sort_keys=True))
        return 0
    print_status_table(member_statuses(state), title=f"cluster up in {state.data_dir}")
    print(f"market {state.market_address}   admin {state.admin_address}   "
          f"certs {state.certs_dir}   MPC ports {state.mpc_ports}")
    print(f"try: mutualmind admin nodes --data-dir {args.data_dir}")
    return 0
