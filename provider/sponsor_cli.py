"""`mutualmind provider open-round|round-show|round-report`: a sponsor's rounds, over the
public Market port.

A sponsor is a provider like any other: its key (from `provider keygen`) signs the
round's terms on its own machine (`mutualmind.vocabulary.round_open`, the builder the
operator's `admin round open` uses too), and the coordinator's public Market API records
them; no admin certificate is needed. The ledger refuses a round signed by anyone but the
sponsor it names. Running a round stays the operator's (`admin round run`); the sponsor
withdraws its open round with `provider abort-round`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mutualmind.vocabulary.round_open import add_terms_flags

Wrap = Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]


def register(sub: Any, market: Callable[[argparse.ArgumentParser], None],
             local: Callable[[argparse.ArgumentParser], None], with_cluster: Wrap) -> None:
    opener = sub.add_parser("open-round",
                            help="(sponsor) open a round: sign its terms and lock your pool")
    market(opener)
    add_terms_flags(opener)
    opener.set_defaults(func=with_cluster(run_open_round))

    show = sub.add_parser("round-show",
                          help="a round's status, terms, contributions and payouts")
    show.add_argument("round_id", metavar="ROUND", help="the round's id")
    show.add_argument("--coordinator", help="coordinator market address host:port")
    show.add_argument("--certs", type=Path, help="folder with the cluster's ca.pem")
    show.add_argument("--json", action="store_true", help="one JSON object instead of text")
    local(show)
    show.set_defaults(func=with_cluster(run_round_show))

    report = sub.add_parser("round-report",
                            help="a round's bar chart of contributions and payouts (PNG)")
    report.add_argument("round_id", metavar="ROUND", help="the round's id")
    report.add_argument("--png", type=Path, required=True, help="file to write (.png)")
    report.add_argument("--coordinator", help="coordinator market address host:port")
    report.add_argument("--certs", type=Path, help="folder with the cluster's ca.pem")
    report.add_argument("--json", action="store_true", help="one JSON object instead of text")
    local(report)
    report.set_defaults(func=with_cluster(run_round_report))


def run_open_round(args: argparse.Namespace) -> int:
    """Build and sign the terms here (checked first: nothing malformed is signed or sent)."""
    from mutualmind.vocabulary.round_open import terms_from_flags
    from provider.cli import _market

    client = _market(args)
    try:
        terms = terms_from_flags(args, client.provider_id)
        reply = client.open_round(terms)
    finally:
        client.channel.close()
    print(json.dumps({"round_id": terms.round_id, "ledger_index": reply.ledger_index,
                      "sponsor": terms.sponsor, "pool": terms.pool,
                      "datasets": list(terms.datasets), "expires_at_ms": terms.expires_at_ms,
                      "inference_price_per_1000_rows": terms.inference_price_per_1000_rows}))
    return 0


def _get_round(args: argparse.Namespace) -> Any:
    """The round's view from the Market's GetRound (public port, the cluster CA only)."""
    from mutualmind.transport import channel_credentials, open_channel
    from mutualmind.transport.pki import COORDINATOR_NAME
    from proto import market_pb2
    from provider.client import market_call

    channel = open_channel(args.coordinator, channel_credentials(args.certs, None),
                           server_name=COORDINATOR_NAME)
    try:
        return market_call(channel, "GetRound", market_pb2.GetRoundRequest(round_id=args.round_id))
    finally:
        channel.close()


def run_round_show(args: argparse.Namespace) -> int:
    from mutualmind.vocabulary.round_json import round_json

    shown = round_json(_get_round(args))
    if args.json:
        print(json.dumps(shown, sort_keys=True))
    else:
        print(_text(shown))
    return 0


def run_round_report(args: argparse.Namespace) -> int:
    """The chart `admin round report` draws, from the public view (its signed terms give
    the dead band); the path is checked before anything is fetched."""
    from mutualmind.transport.atomic_file import write_atomic
    from mutualmind.vocabulary.round_report import (
        check_png_path,
        opened_epsilon_micro,
        render_round_png,
    )

    check_png_path(args.png)
    view = _get_round(args)
    data = render_round_png(view, epsilon_micro=opened_epsilon_micro(view))
    write_atomic(args.png, data)
    if args.json:
        print(json.dumps({"round_id": view.round_id, "png": str(args.png), "bytes": len(data),
                          "datasets": len(view.participants), "status": view.status}))
    else:
        print(f"wrote {args.png} ({len(data)} bytes): round {view.round_id}, "
              f"{len(view.participants)} datasets, status {view.status}")
    return 0


def _text(shown: dict[str, Any]) -> str:
    """The round for people: one line of terms, then one line per participant."""
    spec = shown["model_spec"]
    lines = [f"round {shown['round_id']}: {shown['status']}, sponsor {shown['sponsor']}, "
             f"pool {shown['pool']}, model {spec.get('kind', '?')} ({spec.get('metric', '?')}), "
             f"validation {shown['validation_dataset']}"]
    price = shown.get("inference_price_per_1000_rows", 0)
    lines.append(f"inference price {price} tokens per 1,000 rows" if price
                 else "inference price: none (not for sale until its owners set one)")
    if shown["metrics_micro"]:
        lines.append(f"full-model metric {shown['metrics_micro'][0] / 1e6:+.6f}")
    banzhaf = spec.get("valuation") == "banzhaf"  # leave-one-out lines stay as they were
    for p in shown["participants"]:
        error = f" ± {p['error_micro'] / 1e6:.6f}" if banzhaf else ""
        lines.append(f"  {p['provider_id']:<16} {p['dataset_id']:<20} rows {p['rows']:>7}  "
                     f"stake {p['stake']:>6}  contribution {p['contribution_micro'] / 1e6:+.6f}{error}  "
                     f"payout {p['payout']:>6}  slashed {p['slashed']:>6}")
    if shown["refund_to_sponsor"]:
        lines.append(f"refund to sponsor {shown['refund_to_sponsor']}")
    if shown["message"]:
        lines.append(f"note: {shown['message']}")
    return "\n".join(lines)
