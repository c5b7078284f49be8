"""`mutualmind cluster status`: is every member of a local cluster alive and SERVING?

Reads `<data-dir>/cluster-state.json`, checks each recorded process (pid and start time)
and probes the standard gRPC health service on each of its ports (public ports with TLS
only, cluster ports with the cluster's admin certificate). Exit 0 when every member is
SERVING everywhere, 1 otherwise, so scripts can wait on it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "status", help="process and gRPC health of every member of a local cluster",
        description="Probe every member that `cluster up` started from --data-dir.")
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="the folder given to `cluster up`")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")   # no C-core lines for refused probes
    from mutualmind.cluster.local import load_state, member_statuses

    state = load_state(args.data_dir)
    statuses = member_statuses(state)
    if args.json:
        print(json.dumps({
            "data_dir": str(state.data_dir), "certs_dir": str(state.certs_dir),
            "market_address": state.market_address, "admin_address": state.admin_address,
            "members": [{"name": s.name, "role": s.role, "pid": s.pid, "running": s.running,
                         "health": s.health, "addresses": s.addresses, "log": s.log}
                        for s in statuses]}, indent=2, sort_keys=True))
    else:
        print_status_table(statuses, title=f"cluster in {state.data_dir}")
    return 0 if all(s.healthy for s in statuses) else 1


def print_status_table(statuses: list[Any], *, title: str) -> None:
    """One row per member: process state, each port's address and health."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("member", "pid", "process", "public", "health", "cluster", "health"):
        table.add_column(column, no_wrap=True)
    for s in statuses:
        cells = []
        for kind in ("public", "cluster"):
            address = s.addresses.get(kind)
            if address is None:
                cells += ["-", ""]
                continue
            health = s.health.get(kind, "UNREACHABLE")
            colour = "green" if health == "SERVING" else "red"
            cells += [address, f"[{colour}]{health}[/{colour}]"]
        process = "[green]running[/green]" if s.running else "[red]exited[/red]"
        table.add_row(s.name, str(s.pid), process, *cells)
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    if statuses:
        print(f"logs: {Path(statuses[0].log).parent}")
