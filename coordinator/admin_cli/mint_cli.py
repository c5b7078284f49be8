"""`mutualmind admin mint --to ID --amount N`: create tokens for a registered provider.

Minting is the only way tokens enter the system; the ledger records it (signed by the
coordinator) and `ledger verify` checks that balances + stakes + pools = minted.
"""

from __future__ import annotations

import argparse
from typing import Any

from mutualmind.errors import InvalidInput

MAX_MINT = 2**62 - 1      # the ledger's amount limit


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("mint", parents=[common],
                                   help="mint tokens to a registered provider")
    parser.add_argument("--to", required=True, help="provider id")
    parser.add_argument("--amount", required=True, help="whole token units (> 0)")
    parser.add_argument("--memo", default="", help="why (recorded on the ledger)")
    parser.set_defaults(func=run)


def parse_amount(text: str) -> int:
    """A positive whole number of tokens; money is never a float."""
    try:
        value = int(text, 10)
    except ValueError:
        raise InvalidInput(f"--amount {text!r} is not a whole number of tokens; "
                           "write e.g. --amount 1000") from None
    if not 0 < value <= MAX_MINT:
        raise InvalidInput(f"--amount must be between 1 and {MAX_MINT}, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from coordinator.admin_cli.coordinator_client import CoordinatorClient
    from coordinator.admin_cli.target import resolve_target
    from coordinator.admin_cli.terminal import print_json
    from proto import admin_pb2

    amount = parse_amount(args.amount)
    if len(args.memo) > 200:
        raise InvalidInput(f"--memo is {len(args.memo)} characters; keep it to 200")
    with CoordinatorClient(resolve_target(args)) as client:
        reply = client.call(client.admin, "Mint", admin_pb2.MintRequest(
            provider_id=args.to, amount=amount, memo=args.memo))
    if args.json:
        print_json({"to": args.to, "amount": amount, "ledger_index": reply.ledger_index,
                    "balance": reply.balance})
    else:
        print(f"minted {amount} to {args.to} (ledger entry {reply.ledger_index}); "
              f"balance now {reply.balance}")
    return 0
