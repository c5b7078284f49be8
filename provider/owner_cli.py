"""`mutualmind owner units|dividends|propose-price|sign|submit-price|transfer`: the owners
of a mutually owned model (issue 16, docs/ownership.md), over the public Market port.

Units are ledger balances per model; a round's model is named by its round id. A price
change is a proposal file (`propose-price`) that owners sign one by one on their own
machines (`sign`, offline, like a multisig transaction) and anyone submits
(`submit-price`); the ledger records it only when the signers hold more than half of the
units. Dividends are paid on demand: the whole fee account, split by units.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from mutualmind.errors import InvalidInput
from provider.cli import DATA_DIR_ENV, _with_cluster

PROPOSAL_HELP = "the proposal file (from `owner propose-price`)"


def register(subparsers: Any) -> None:
    owner = subparsers.add_parser("owner", help="model owners: units, dividends, price changes, transfers")
    sub = owner.add_subparsers(dest="owner_command", metavar="ACTION", required=True)

    def coordinator(p: argparse.ArgumentParser) -> None:
        p.add_argument("--coordinator", help="coordinator market address host:port")
        p.add_argument("--certs", type=Path, help="folder with the cluster's ca.pem")
        p.add_argument("--data-dir", type=Path, default=os.environ.get(DATA_DIR_ENV),
                       help=f"data dir of a local cluster: fills in --coordinator and --certs [env {DATA_DIR_ENV}]")

    units = sub.add_parser("units", help="a model's holders (--model) or your units across models (--key)")
    which = units.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="the model's id (a round's model: the round id)")
    which.add_argument("--key", type=Path, help="your key file: the units of its account")
    which.add_argument("--account", help="an account id: the units it holds")
    units.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    coordinator(units)
    units.set_defaults(func=_with_cluster(run_units))

    dividends = sub.add_parser("dividends", help="pay a model's fee account to its owners now; prints the split")
    dividends.add_argument("--model", required=True, help="the model's id")
    dividends.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    coordinator(dividends)
    dividends.set_defaults(func=_with_cluster(run_dividends))

    propose = sub.add_parser("propose-price", help="write a price proposal for owners to sign (offline)")
    propose.add_argument("--model", required=True, help="the model's id")
    propose.add_argument("--price", required=True, help="whole tokens per 1,000 query rows")
    propose.add_argument("--out", type=Path, required=True, help="the proposal file to write (not overwritten)")
    propose.set_defaults(func=run_propose)

    sign = sub.add_parser("sign", help="add your signature to a price proposal (offline)")
    sign.add_argument("proposal", type=Path, help=PROPOSAL_HELP)
    sign.add_argument("--key", type=Path, required=True, help="your key file (an owner of the model)")
    sign.set_defaults(func=run_sign)

    submit = sub.add_parser("submit-price", help="submit a signed price proposal (needs > half of the units)")
    submit.add_argument("proposal", type=Path, help=PROPOSAL_HELP)
    coordinator(submit)
    submit.set_defaults(func=_with_cluster(run_submit))

    transfer = sub.add_parser("transfer", help="move some of your units of a model to another account")
    transfer.add_argument("--key", type=Path, required=True, help="your key file")
    transfer.add_argument("--model", required=True, help="the model's id")
    transfer.add_argument("--to", required=True, help="the receiving account (a registered provider id)")
    transfer.add_argument("--units", type=int, required=True, help="how many units (whole)")
    coordinator(transfer)
    transfer.set_defaults(func=_with_cluster(run_transfer))


def _channel(args: argparse.Namespace) -> Any:
    from provider.cli import _coordinator_channel

    return _coordinator_channel(args)


def _account(key: Path) -> str:
    from provider.cli import _id_file

    try:
        return _id_file(key).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise InvalidInput(f"{_id_file(key)} is missing: make the key with "
                           "`mutualmind provider keygen --id ...`") from None


def _print_table(title: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    Console(width=200).print(table)


def run_units(args: argparse.Namespace) -> int:
    from provider.client import account_units, get_model

    channel = _channel(args)
    try:
        if args.model is not None:
            model = get_model(channel, args.model)
        else:
            account = args.account if args.account is not None else _account(args.key)
            holdings = account_units(channel, account)
    finally:
        channel.close()
    if args.model is not None:
        shown = {"model_id": model.model_id, "source_kind": model.source_kind,
                 "source_id": model.source_id, "price_per_1000_rows": model.price_per_1000_rows,
                 "fee_account": model.fee_account,
                 "holders": [{"account": h.account, "units": h.units} for h in model.holders]}
        if args.json:
            print(json.dumps(shown, sort_keys=True))
            return 0
        price = f"{model.price_per_1000_rows} per 1,000 rows" if model.price_per_1000_rows else "not for sale"
        _print_table(f"model {model.model_id} ({model.source_kind} {model.source_id}): price {price}, "
                     f"fee account {model.fee_account}", ("account", "units", "share"),
                     [(h.account, h.units, f"{h.units / 10_000:.4f}%") for h in model.holders])
        return 0
    mine = {"account": account, "models": [{"model_id": h.model_id, "units": h.units} for h in holdings]}
    if args.json:
        print(json.dumps(mine, sort_keys=True))
        return 0
    _print_table(f"units of {account} ({len(holdings)} models)", ("model", "units", "share"),
                 [(h.model_id, h.units, f"{h.units / 10_000:.4f}%") for h in holdings])
    return 0


def run_dividends(args: argparse.Namespace) -> int:
    from provider.client import pay_dividend

    channel = _channel(args)
    try:
        reply = pay_dividend(channel, args.model)
    finally:
        channel.close()
    if args.json:
        print(json.dumps({"model_id": args.model, "ledger_index": reply.ledger_index, "amount": reply.amount,
                          "payments": [{"account": p.account, "amount": p.amount} for p in reply.payments]},
                         sort_keys=True))
        return 0
    _print_table(f"dividend of {args.model}: {reply.amount} tokens (ledger entry {reply.ledger_index})",
                 ("account", "amount"), [(p.account, p.amount) for p in reply.payments])
    return 0


def _read_proposal(path: Path) -> dict[str, Any]:
    from mutualmind.vocabulary.signed_requests import check_price_proposal

    try:
        return check_price_proposal(json.loads(path.read_text(encoding="utf-8")))
    except OSError as err:
        raise InvalidInput(f"cannot read the proposal {path}: {err.strerror}") from None
    except ValueError as err:
        raise InvalidInput(f"the proposal {path} is not JSON ({err})") from None


def _write_proposal(path: Path, proposal: dict[str, Any]) -> None:
    from mutualmind.transport.atomic_file import write_atomic

    write_atomic(path, (json.dumps(proposal, indent=2, sort_keys=True) + "\n").encode())


def run_propose(args: argparse.Namespace) -> int:
    from mutualmind.vocabulary.round_open import whole_tokens
    from mutualmind.vocabulary.signed_requests import new_price_proposal

    if args.out.exists():
        raise InvalidInput(f"{args.out} exists; refusing to overwrite a proposal (choose another --out)")
    proposal = new_price_proposal(args.model, whole_tokens("--price", args.price))
    _write_proposal(args.out, proposal)
    print(json.dumps({"proposal": str(args.out), "model_id": args.model,
                      "price_per_1000_rows": proposal["price_per_1000_rows"]}))
    return 0


def run_sign(args: argparse.Namespace) -> int:
    from mutualmind.vocabulary.signed_requests import sign_price_proposal
    from mutualmind.vocabulary.signing_keys import load_private_key

    owner = _account(args.key)
    signed = sign_price_proposal(load_private_key(args.key), owner, _read_proposal(args.proposal))
    _write_proposal(args.proposal, signed)
    print(json.dumps({"proposal": str(args.proposal), "signed_by": owner,
                      "signatures": sorted(signed["signatures"])}))
    return 0


def run_submit(args: argparse.Namespace) -> int:
    from provider.client import submit_price_change

    proposal = _read_proposal(args.proposal)
    channel = _channel(args)
    try:
        reply = submit_price_change(channel, proposal)
    finally:
        channel.close()
    print(json.dumps({"model_id": proposal["model_id"], "price_per_1000_rows": proposal["price_per_1000_rows"],
                      "ledger_index": reply.ledger_index, "signed_units": reply.signed_units}))
    return 0


def run_transfer(args: argparse.Namespace) -> int:
    from provider.cli import _market

    client = _market(args)
    try:
        reply = client.transfer_units(args.model, args.to, args.units)
    finally:
        client.channel.close()
    print(json.dumps({"model_id": args.model, "from": client.provider_id, "to": args.to,
                      "units": args.units, "units_left": reply.units_left,
                      "ledger_index": reply.ledger_index}))
    return 0
