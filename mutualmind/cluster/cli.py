"""`mutualmind cluster ...`: one sub-parser, one module per subcommand.

SUBCOMMANDS maps a subcommand name to a module with `register(subparsers)`, exactly like
the top-level COMMANDS table, so `up`, `down` and `status` join `certs` as sibling
modules with a one-line entry here.
"""

from __future__ import annotations

import argparse
import importlib

SUBCOMMANDS: dict[str, str] = {
    "certs": "mutualmind.cluster.certs_cli",
    "up": "mutualmind.cluster.up_cli",
    "status": "mutualmind.cluster.status_cli",
    "down": "mutualmind.cluster.down_cli",
    "probe": "mutualmind.cluster.probe_cli",
    "bundle": "mutualmind.cluster.bundle_cli",
    "witnesses": "mutualmind.cluster.witnesses_cli",
}


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "cluster", help="make and run a local cluster (certificates, processes)",
        description="Cluster identity and processes.")
    sub = parser.add_subparsers(dest="cluster_command", metavar="SUBCOMMAND", required=True)
    for module_name in SUBCOMMANDS.values():
        importlib.import_module(module_name).register(sub)
