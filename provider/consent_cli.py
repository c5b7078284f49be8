"""`mutualmind provider terms|unstake|abort-round`: what a provider consents to, and how
it gets its tokens back.

`terms` signs new terms for one of the provider's datasets (`share` signs the first ones
into the registration, from the same flags); `unstake` takes tokens off a dataset that is
in no open round; `abort-round` withdraws a round this provider sponsors (open, not
running), which returns its pool and unlocks the stakes of the datasets in it. Each is
one signed request and one line of JSON out.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from mutualmind.errors import InvalidInput

Command = Callable[[argparse.Namespace], int]


def add_terms_flags(parser: argparse.ArgumentParser) -> None:
    """The dataset terms flags (defaults: `DEFAULT_TERMS`, the safe terms)."""
    from mutualmind.vocabulary.dataset_terms import DEFAULT_TERMS

    group = parser.add_argument_group("dataset terms (signed with the dataset)")
    group.add_argument("--min-datasets", type=int, default=DEFAULT_TERMS.min_datasets,
                       help=f"fewest datasets in a round that uses this one (>= 3, default "
                            f"{DEFAULT_TERMS.min_datasets})")
    group.add_argument("--model-kinds", default=",".join(DEFAULT_TERMS.model_kinds),
                       help="comma-separated model kinds it may train (default: all)")
    group.add_argument("--max-slash-rate-ppm", type=int, default=DEFAULT_TERMS.max_slash_rate_ppm,
                       help=f"largest slash rate a round may set, ppm of the stake (default "
                            f"{DEFAULT_TERMS.max_slash_rate_ppm})")
    group.add_argument("--min-pool-per-row", type=int, default=DEFAULT_TERMS.min_pool_per_row,
                       help="tokens of pool a round must offer per training row (default 0)")
    group.add_argument("--allow-sponsor", action="append", default=[], metavar="PROVIDER_ID",
                       help="only these sponsors may use the data (repeat; default: any)")


def terms_from_args(args: argparse.Namespace) -> Any:
    """DatasetTerms from the flags; InvalidInput naming the bad one."""
    from mutualmind.vocabulary.dataset_terms import DatasetTerms

    terms = DatasetTerms(
        min_datasets=args.min_datasets,
        model_kinds=tuple(k.strip() for k in args.model_kinds.split(",") if k.strip()),
        max_slash_rate_ppm=args.max_slash_rate_ppm, min_pool_per_row=args.min_pool_per_row,
        sponsors=tuple(args.allow_sponsor))
    try:
        terms.to_payload()
    except InvalidInput as err:
        raise InvalidInput(f"dataset terms: {err}") from None
    return terms


def register(sub: Any, market: Callable[[argparse.ArgumentParser], None],
             with_cluster: Callable[[Command], Command]) -> None:
    terms = sub.add_parser("terms", help="sign new terms for one of your datasets")
    market(terms)
    terms.add_argument("--dataset-id", required=True, help="the dataset's id, as given to `provider share`")
    add_terms_flags(terms)
    terms.set_defaults(func=with_cluster(run_terms))

    unstake = sub.add_parser("unstake", help="take staked tokens off a dataset (not while in an open round)")
    market(unstake)
    unstake.add_argument("--dataset-id", required=True, help="the dataset the tokens are staked on")
    unstake.add_argument("--amount", type=int, required=True, help="whole token units")
    unstake.set_defaults(func=with_cluster(run_unstake))

    abort = sub.add_parser("abort-round",
                           help="(sponsor) withdraw your open round: the pool comes back, stakes unlock")
    market(abort)
    abort.add_argument("--round-id", required=True, help="the open round you sponsor")
    abort.add_argument("--reason", required=True, help="why (recorded on the ledger)")
    abort.set_defaults(func=with_cluster(run_abort_round))


def _client(args: argparse.Namespace) -> Any:
    from provider.cli import _market

    return _market(args)


def run_terms(args: argparse.Namespace) -> int:
    terms = terms_from_args(args)
    client = _client(args)
    try:
        reply = client.update_terms(args.dataset_id, terms)
    finally:
        client.channel.close()
    print(json.dumps({"dataset_id": args.dataset_id, "ledger_index": reply.ledger_index,
                      "terms": terms.to_payload()}))
    return 0


def run_unstake(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        reply = client.unstake(args.dataset_id, args.amount)
    finally:
        client.channel.close()
    print(json.dumps({"ledger_index": reply.ledger_index, "staked": reply.staked,
                      "balance": reply.balance}))
    return 0


def run_abort_round(args: argparse.Namespace) -> int:
    if not args.reason.strip():
        raise InvalidInput("--reason must say why the round is withdrawn")
    client = _client(args)
    try:
        reply = client.abort_round(args.round_id, args.reason)
    finally:
        client.channel.close()
    print(json.dumps({"round_id": args.round_id, "ledger_index": reply.ledger_index,
                      "refund_to_sponsor": reply.refund_to_sponsor}))
    return 0
