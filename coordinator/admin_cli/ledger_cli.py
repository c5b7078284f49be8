"""`mutualmind admin ledger verify`: have the coordinator re-check its whole ledger.

The coordinator runs the same check as the offline `mutualmind ledger verify --db`
(every hash, signature and rule, and conservation of supply) on its live file. Exit 0
when it holds, 1 naming the first bad entry otherwise.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mutualmind.vocabulary.deadlines import LEDGER_VERIFY_S


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("ledger", help="the coordinator's ledger")
    sub = parser.add_subparsers(dest="admin_ledger_command", metavar="ACTION", required=True)
    verify = sub.add_parser("verify", parents=[common],
                            help="re-check every entry, signature and balance on the coordinator")
    verify.set_defaults(func=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    from coordinator.admin_cli.coordinator_client import CoordinatorClient
    from coordinator.admin_cli.target import resolve_target
    from coordinator.admin_cli.terminal import print_json
    from proto import admin_pb2

    with CoordinatorClient(resolve_target(args)) as client:
        reply = client.call(client.admin, "VerifyLedger", admin_pb2.VerifyLedgerRequest(),
                            timeout=LEDGER_VERIFY_S)
    if args.json:
        print_json({"ok": reply.ok, "entries": reply.entries, "root": reply.root_hash.hex(),
                    "total_supply": reply.total_supply, "error": reply.error,
                    "first_bad_index": reply.first_bad_index})
    elif reply.ok:
        print(f"ok: {reply.entries} entries, root {reply.root_hash.hex()}, "
              f"total supply {reply.total_supply}")
    if not reply.ok:
        print(f"ledger verify: entry {reply.first_bad_index}: {reply.error}", file=sys.stderr)
        return 1
    return 0
