"""`mutualmind admin ...`: one sub-parser, one module per subcommand group.

Every leaf command takes the same way to find the coordinator (see `target.py`):
`--data-dir DIR` of a local cluster, or `--coordinator HOST:PORT --certs DIR` (plus
`--market HOST:PORT` for what goes through the public Market API).
"""

from __future__ import annotations

import argparse
import importlib

# subcommand group -> module with `register(subparsers, common)`
ADMIN_COMMANDS: dict[str, str] = {
    "nodes": "coordinator.admin_cli.nodes_cli",
    "providers": "coordinator.admin_cli.providers_cli",
    "mint": "coordinator.admin_cli.mint_cli",
    "round": "coordinator.admin_cli.round_cli",
    "tournament": "coordinator.admin_cli.tournament_cli",
    "ledger": "coordinator.admin_cli.ledger_cli",
}


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from coordinator.admin_cli.target import target_arguments

    parser = subparsers.add_parser(
        "admin", help="operate a running cluster: nodes, providers, balances, mint, rounds, ledger",
        description="Operator commands against a running coordinator (Admin API over mutual "
                    "TLS with the cluster's admin certificate).")
    sub = parser.add_subparsers(dest="admin_command", metavar="SUBCOMMAND", required=True)
    common = target_arguments()
    for module_name in ADMIN_COMMANDS.values():
        importlib.import_module(module_name).register(sub, common)
