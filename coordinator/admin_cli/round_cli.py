"""`mutualmind admin round open|run|abort|show|list|report|verify`: a round's whole life.

`open` is signed by the sponsor on this machine (`mutualmind.vocabulary.round_open`, the
builder `provider open-round` uses too) and goes to the public Market API; the rest are
Admin calls. `run` streams the coordinator's progress into a progress bar and ends with the round table; `verify` re-runs the valuation and
exits 1 when it disagrees with the ledger beyond the tolerance.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.deadlines import MAX_JOB_S, ROUND_S, ROUND_SLACK_S
from mutualmind.vocabulary.round_open import add_terms_flags
from mutualmind.vocabulary.states import EntryKind


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("round", help="open, run, show, chart and verify rounds")
    sub = parser.add_subparsers(dest="round_command", metavar="ACTION", required=True)

    opener = sub.add_parser("open", parents=[common],
                            help="open a round as its sponsor (signed with the sponsor's key)")
    add_terms_flags(opener)
    opener.add_argument("--sponsor-key", type=Path, required=True,
                        help="the sponsor's provider key (from `provider keygen`)")
    opener.add_argument("--sponsor", default=None,
                        help="sponsor's provider id (default: read from <key>.id)")
    opener.set_defaults(func=run_open)

    abort = sub.add_parser("abort", parents=[common],
                           help="abort an open round that is not running (pool back, stakes unlock)")
    abort.add_argument("round_id", help="the round's id")
    abort.add_argument("--reason", required=True, help="why (recorded on the ledger)")
    abort.set_defaults(func=run_abort)

    runner = sub.add_parser("run", parents=[common], help="run a round with live progress")
    runner.add_argument("round_id", help="the round's id")
    runner.add_argument("--deadline", type=float, default=ROUND_S,
                        help="seconds the MPC job may take")
    runner.set_defaults(func=run_run)

    show = sub.add_parser("show", parents=[common], help="a round as a table")
    show.add_argument("round_id", help="the round's id")
    show.set_defaults(func=run_show)

    listing = sub.add_parser("list", parents=[common], help="every round on the ledger")
    listing.set_defaults(func=run_list)

    report = sub.add_parser("report", parents=[common],
                            help="bar chart of contributions and payouts")
    report.add_argument("round_id", help="the round's id")
    report.add_argument("--png", type=Path, required=True, help="file to write")
    report.set_defaults(func=run_report)

    verify = sub.add_parser("verify", parents=[common],
                            help="re-run a closed round's valuation and compare")
    verify.add_argument("round_id", help="the round's id")
    verify.add_argument("--tolerance", type=float, default=None,
                        help="largest accepted difference, metric units (default: the "
                             "larger of the round's epsilon and an honest re-run's "
                             "fixed-point noise, 0.005; two validation rows on accuracy)")
    verify.add_argument("--deadline", type=float, default=ROUND_S,
                        help="seconds the re-run's MPC job may take")
    verify.set_defaults(func=run_verify)


def _client(args: argparse.Namespace) -> Any:
    from coordinator.admin_cli.coordinator_client import CoordinatorClient
    from coordinator.admin_cli.target import resolve_target

    return CoordinatorClient(resolve_target(args))


def _sponsor_id(args: argparse.Namespace) -> str:
    if args.sponsor:
        return str(args.sponsor)
    id_file = args.sponsor_key.with_name(args.sponsor_key.name + ".id")
    try:
        return id_file.read_text(encoding="utf-8").strip()
    except OSError:
        raise InvalidInput(f"pass --sponsor ID (no {id_file} next to the key)") from None


def run_open(args: argparse.Namespace) -> int:
    from coordinator.admin_cli.terminal import print_json
    from mutualmind.vocabulary.round_open import signed_open_round, terms_from_flags
    from mutualmind.vocabulary.signing_keys import load_private_key

    key = load_private_key(args.sponsor_key)   # a missing key is named before its `.id` file
    terms = terms_from_flags(args, _sponsor_id(args))
    request = signed_open_round(key, terms)
    with _client(args) as client:
        reply = client.call(client.market, "OpenRound", request)
    if args.json:
        print_json({"round_id": terms.round_id, "ledger_index": reply.ledger_index})
    else:
        print(f"round {terms.round_id} opened at ledger entry {reply.ledger_index}: pool "
              f"{terms.pool} locked from {terms.sponsor}, {len(terms.datasets)} datasets")
    return 0


def run_abort(args: argparse.Namespace) -> int:
    from coordinator.admin_cli.round_table import round_json, round_table
    from coordinator.admin_cli.terminal import console, print_json
    from proto import admin_pb2

    if not args.reason.strip():
        raise InvalidInput("--reason must say why the round is aborted")
    with _client(args) as client:
        view = client.call(client.admin, "AbortRound", admin_pb2.AdminAbortRoundRequest(
            round_id=args.round_id, reason=args.reason))
    if args.json:
        print_json(round_json(view))
    else:
        console().print(round_table(view))
        print(f"round {view.round_id} aborted: {view.refund_to_sponsor} tokens back to "
              f"{view.sponsor}, stakes unlocked")
    return 0


def _get_round(client: Any, round_id: str) -> Any:
    from proto import market_pb2

    return client.call(client.admin, "GetRound", market_pb2.GetRoundRequest(round_id=round_id))


def run_show(args: argparse.Namespace) -> int:
    from coordinator.admin_cli.round_table import round_json, round_table
    from coordinator.admin_cli.terminal import console, print_json

    with _client(args) as client:
        view = _get_round(client, args.round_id)
    if args.json:
        print_json(round_json(view))
    else:
        console().print(round_table(view))
    return 0


def run_list(args: argparse.Namespace) -> int:
    from coordinator.admin_cli.round_table import round_json, rounds_table
    from coordinator.admin_cli.terminal import console, print_json
    from proto import admin_pb2

    with _client(args) as client:
        views = list(client.call(client.admin, "ListRounds", admin_pb2.ListRoundsRequest()).rounds)
    if args.json:
        print_json([round_json(v) for v in views])
    else:
        console().print(rounds_table(views))
    return 0


def run_run(args: argparse.Namespace) -> int:
    """Stream RoundProgress; the last message carries the settled round."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from coordinator.admin_cli.round_table import round_json, round_table
    from coordinator.admin_cli.terminal import console, print_json
    from proto import admin_pb2

    if not 0 < args.deadline <= MAX_JOB_S:
        raise InvalidInput(f"--deadline must be 0..{MAX_JOB_S:.0f} seconds, got {args.deadline}")
    request = admin_pb2.RunRoundRequest(round_id=args.round_id, deadline_s=args.deadline)
    final = None
    with _client(args) as client:
        events = client.stream(client.admin, "RunRound", request,
                               timeout=args.deadline + ROUND_SLACK_S)
        if args.json:
            last: dict[str, Any] | None = None
            for event in events:
                line = {"stage": event.stage, "fraction": event.fraction,
                        "message": event.message}
                if line != last:                 # one line per change, not per poll
                    print_json(line)
                    last = line
                final = event if event.HasField("round") else final
        else:
            with Progress(TextColumn("{task.description}"), BarColumn(),
                          TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                          TextColumn("{task.fields[note]}"), console=console()) as bar:
                task = bar.add_task(f"round {args.round_id}", total=1.0, note="")
                for event in events:
                    bar.update(task, completed=event.fraction,
                               description=f"round {args.round_id}: {event.stage}",
                               note=event.message)
                    final = event if event.HasField("round") else final
    if final is None:
        raise InvalidInput(f"the coordinator ended round {args.round_id!r} without a result; "
                           "see `admin round show`")
    if args.json:
        print_json(round_json(final.round))
    else:
        console().print(round_table(final.round))
    return 0


def run_report(args: argparse.Namespace) -> int:
    from coordinator.admin_cli.round_report import write_round_png

    with _client(args) as client:
        view = _get_round(client, args.round_id)
        epsilon = _epsilon_micro(client, args.round_id)
    size = write_round_png(view, args.png, epsilon_micro=epsilon)
    if args.json:
        from coordinator.admin_cli.terminal import print_json

        print_json({"round_id": view.round_id, "png": str(args.png), "bytes": size,
                    "datasets": len(view.participants), "status": view.status})
        return 0
    print(f"wrote {args.png} ({size} bytes): round {view.round_id}, "
          f"{len(view.participants)} datasets, status {view.status}")
    return 0


def _epsilon_micro(client: Any, round_id: str) -> int:
    """The round's dead band, from its round_opened entry (0 when no market is known)."""
    from proto import market_pb2

    if not client.target.market_address:
        return 0
    start = 0
    while True:
        entries = client.call(client.market, "ListEntries", market_pb2.ListEntriesRequest(
            start=start, limit=1000, kind=EntryKind.ROUND_OPENED)).entries
        for entry in entries:
            payload = json.loads(entry.payload_json)
            if payload.get("round_id") == round_id:
                return int(payload.get("epsilon_micro", 0))
        if not entries:
            return 0
        start = entries[-1].index + 1


def run_verify(args: argparse.Namespace) -> int:
    from coordinator.admin_cli.terminal import console, micro, print_json
    from proto import admin_pb2

    if args.tolerance is not None and not 0 < args.tolerance < 1e6:
        raise InvalidInput(f"--tolerance must be positive, got {args.tolerance}")
    with _client(args) as client:
        view = _get_round(client, args.round_id)
        reply = client.call(client.admin, "VerifyRound", admin_pb2.VerifyRoundRequest(
            round_id=args.round_id, tolerance=args.tolerance or 0.0,   # 0: epsilon
            deadline_s=args.deadline),
            timeout=args.deadline + ROUND_SLACK_S)
    datasets = [p.dataset_id for p in view.participants]
    if args.json:
        print_json({"round_id": args.round_id, "agrees": reply.agrees, "datasets": datasets,
                    "recorded_micro": list(reply.recorded_micro),
                    "recomputed_micro": list(reply.recomputed_micro),
                    "max_abs_diff_micro": reply.max_abs_diff_micro,
                    "tolerance_micro": reply.tolerance_micro})
    else:
        from rich.table import Table

        table = Table(title=f"round {args.round_id}: recorded vs recomputed contributions")
        table.add_column("dataset")
        for column in ("recorded", "recomputed", "difference"):
            table.add_column(column, justify="right")
        for name, a, b in zip(datasets, reply.recorded_micro, reply.recomputed_micro,
                              strict=False):
            table.add_row(name, micro(a), micro(b), micro(b - a))
        console().print(table)
        verdict = "agrees" if reply.agrees else "DISAGREES"
        print(f"{verdict}: largest difference {micro(reply.max_abs_diff_micro).lstrip('+')} "
              f"(tolerance {micro(reply.tolerance_micro).lstrip('+')})",
              file=sys.stdout if reply.agrees else sys.stderr)
    return 0 if reply.agrees else 1
