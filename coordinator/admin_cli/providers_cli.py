"""`mutualmind admin providers` and `admin balances`: who is registered, who holds what.

Both read the Admin API's provider list (balances are a replay of the ledger on the
coordinator). `balances --provider ID` asks the Market API for one provider's stake per
dataset instead.
"""

from __future__ import annotations

import argparse
from typing import Any

from mutualmind.vocabulary.states import RoundStatus


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    providers = subparsers.add_parser("providers", parents=[common],
                                      help="list registered providers with keys and balances")
    providers.set_defaults(func=run_providers)
    balances = subparsers.add_parser("balances", parents=[common],
                                     help="free balance and stake of every provider, with totals")
    balances.add_argument("--provider", default=None,
                          help="one provider: its stake per dataset (via the market port)")
    balances.set_defaults(func=run_balances)


def _providers(args: argparse.Namespace) -> list[Any]:
    from coordinator.admin_cli.coordinator_client import CoordinatorClient
    from coordinator.admin_cli.target import resolve_target
    from proto import admin_pb2

    with CoordinatorClient(resolve_target(args)) as client:
        return list(client.call(client.admin, "ListProviders",
                                admin_pb2.ListProvidersRequest()).providers)


def _open_pools(args: argparse.Namespace) -> int:
    """Tokens locked in pools of rounds not yet closed or aborted."""
    from coordinator.admin_cli.coordinator_client import CoordinatorClient
    from coordinator.admin_cli.target import resolve_target
    from proto import admin_pb2

    with CoordinatorClient(resolve_target(args)) as client:
        rounds = client.call(client.admin, "ListRounds", admin_pb2.ListRoundsRequest()).rounds
    return sum(r.pool for r in rounds if r.status in (RoundStatus.OPEN, RoundStatus.RUNNING, RoundStatus.RESULT))


def run_providers(args: argparse.Namespace) -> int:
    from coordinator.admin_cli.terminal import console, print_json, short_hex

    providers = _providers(args)
    if args.json:
        print_json([{"provider_id": p.provider_id, "name": p.name,
                     "public_key": p.public_key.hex(), "balance": p.balance,
                     "staked": p.staked} for p in providers])
        return 0
    from rich.table import Table

    table = Table(title=f"providers ({len(providers)})")
    for column, justify in (("provider", "left"), ("name", "left"), ("public key", "left"),
                            ("balance", "right"), ("staked", "right")):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for p in providers:
        table.add_row(p.provider_id, p.name, short_hex(p.public_key), str(p.balance),
                      str(p.staked))
    console().print(table)
    return 0


def run_balances(args: argparse.Namespace) -> int:
    from coordinator.admin_cli.terminal import console, print_json

    if args.provider is not None:
        return _one_balance(args)
    providers = _providers(args)
    rows = [(p.provider_id, p.balance, p.staked) for p in providers]
    total_balance = sum(r[1] for r in rows)
    total_staked = sum(r[2] for r in rows)
    pools = _open_pools(args)
    if args.json:
        print_json({"providers": [{"provider_id": r[0], "balance": r[1], "staked": r[2]}
                                  for r in rows],
                    "total_balance": total_balance, "total_staked": total_staked,
                    "open_pools": pools, "total": total_balance + total_staked + pools})
        return 0
    from rich.table import Table

    table = Table(title="balances (token units)", show_footer=True,
                  caption=f"locked in open round pools: {pools}; balances + stakes + pools = "
                          f"{total_balance + total_staked + pools} (the minted supply)")
    table.add_column("provider", footer="total", no_wrap=True)
    table.add_column("balance", justify="right", footer=str(total_balance))
    table.add_column("staked", justify="right", footer=str(total_staked))
    table.add_column("held", justify="right", footer=str(total_balance + total_staked))
    for provider_id, balance, staked in rows:
        table.add_row(provider_id, str(balance), str(staked), str(balance + staked))
    console().print(table)
    return 0


def _one_balance(args: argparse.Namespace) -> int:
    from coordinator.admin_cli.coordinator_client import CoordinatorClient
    from coordinator.admin_cli.target import resolve_target
    from coordinator.admin_cli.terminal import console, print_json
    from proto import market_pb2

    with CoordinatorClient(resolve_target(args)) as client:
        reply = client.call(client.market, "GetBalance",
                            market_pb2.BalanceRequest(provider_id=args.provider))
    stakes = dict(sorted(reply.stakes.items()))
    if args.json:
        print_json({"provider_id": reply.provider_id, "balance": reply.balance,
                    "staked": reply.staked, "stakes": stakes})
        return 0
    from rich.table import Table

    table = Table(title=f"{reply.provider_id}: balance {reply.balance}, staked {reply.staked}")
    table.add_column("dataset", no_wrap=True)
    table.add_column("stake", justify="right")
    for dataset_id, amount in stakes.items():
        table.add_row(dataset_id, str(amount))
    console().print(table)
    return 0
