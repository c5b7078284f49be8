"""`mutualmind admin nodes`: every node the coordinator drives, and its health.

The coordinator probes each node's cluster port (standard gRPC health) when asked, so
this shows what the coordinator itself can reach. Exit 1 when any node is not SERVING.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("nodes", parents=[common],
                                   help="list nodes with addresses, keys and health")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from coordinator.admin_cli.coordinator_client import CoordinatorClient
    from coordinator.admin_cli.target import resolve_target
    from coordinator.admin_cli.terminal import (
        console,
        health_markup,
        print_json,
        short_hex,
    )
    from proto import admin_pb2

    with CoordinatorClient(resolve_target(args)) as client:
        reply = client.call(client.admin, "ListNodes", admin_pb2.ListNodesRequest())
    nodes = list(reply.nodes)
    if args.json:
        print_json([{"index": n.index, "name": n.name, "public_address": n.public_address,
                     "cluster_address": n.cluster_address,
                     "signing_public_key": n.signing_public_key.hex(), "health": n.health}
                    for n in nodes])
    else:
        from rich.table import Table

        table = Table(title="nodes")
        for column in ("index", "name", "public", "cluster", "signing key", "health"):
            table.add_column(column, no_wrap=True)
        for n in nodes:
            table.add_row(str(n.index), n.name, n.public_address, n.cluster_address,
                          short_hex(n.signing_public_key), health_markup(n.health))
        console().print(table)
    return 0 if nodes and all(n.health == "SERVING" for n in nodes) else 1
