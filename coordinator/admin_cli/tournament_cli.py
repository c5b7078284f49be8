"""`mutualmind admin tournament open|train|resolve|abort|show|report|list|verify`: a tournament's whole life (issue 15).

`open` is signed by the sponsor on this machine (`mutualmind.vocabulary.tournament`) and
goes to the public Market API, as `resolve --publisher-key` signs the resolution with the
publisher's key first; `train` and `resolve` are Admin calls that run one MPC job each
and print the tournament afterwards; `verify` runs the resolution again and compares
(`coordinator.tournament_verify`: exit 0 agrees, 1 disagrees). Modelers submit with `mutualmind modeler submit`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.deadlines import MAX_JOB_S, ROUND_S, ROUND_SLACK_S


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("tournament", help="the model market: open, train, resolve, show tournaments")
    sub = parser.add_subparsers(dest="tournament_command", metavar="ACTION", required=True)

    opener = sub.add_parser("open", parents=[common], help="open a tournament as its sponsor (signed with its key)")
    opener.add_argument("tournament_id", help="the new tournament's id")
    opener.add_argument("--sponsor-key", type=Path, required=True, help="the sponsor's provider key")
    opener.add_argument("--pool", type=int, required=True, help="tokens locked for the models")
    opener.add_argument("--datasets", required=True, help="eligible staked datasets, comma-separated")
    opener.add_argument("--deadline-s", type=float, required=True, help="submissions close this many seconds from now")
    opener.add_argument("--label-kind", default="binary", choices=("binary", "multiclass", "regression"),
                        help="what the models predict (default binary)")
    opener.add_argument("--metric", default="log_loss", choices=("log_loss", "accuracy", "mse"),
                        help="how models are scored on the resolution (default log_loss)")
    opener.add_argument("--threshold-micro", type=int, required=True,
                        help="the metamodel must beat this (millionths) on the resolution or the pool goes back")
    opener.add_argument("--slash-rate-ppm", type=int, default=100_000,
                        help="share of a stake lost by a harmful model (ppm, default 100000 = 10%%)")
    opener.add_argument("--weight-cap-ppm", type=int, default=1_000_000, help="no model weighs more (ppm)")
    opener.add_argument("--epsilon-micro", type=int, default=1_000,
                        help="dead band around zero contribution, millionths of the metric")
    opener.add_argument("--publisher", default="", help="who may commit the resolution (default: the sponsor)")
    opener.set_defaults(func=run_open)

    for name, helptext in (("train", "train and freeze every submitted model (one MPC job)"),
                           ("resolve", "evaluate the frozen models on the resolution and settle")):
        job = sub.add_parser(name, parents=[common], help=helptext)
        job.add_argument("tournament_id", help="the tournament's id")
        job.add_argument("--deadline", type=float, default=ROUND_S, help="seconds the MPC job may take")
        if name == "resolve":
            job.add_argument("--publisher-key", type=Path,
                             help="commit the resolution first, signed with the publisher's key")
            job.add_argument("--resolution", help="the publisher's registered validation dataset")
        job.set_defaults(func=run_job)

    abort = sub.add_parser("abort", parents=[common],
                           help="abort before the result: the pool back to the sponsor, stakes to modelers")
    abort.add_argument("tournament_id", help="the tournament's id")
    abort.add_argument("--reason", required=True, help="why (recorded on the ledger)")
    abort.set_defaults(func=run_abort)

    show = sub.add_parser("show", parents=[common], help="a tournament: terms, models, contributions, tokens")
    show.add_argument("tournament_id", help="the tournament's id")
    show.set_defaults(func=run_show)

    report = sub.add_parser("report", parents=[common],
                            help="one picture: metamodel weights, contributions, the two-level token flow")
    report.add_argument("tournament_id", help="the tournament's id")
    report.add_argument("--png", type=Path, required=True, help="file to write")
    report.set_defaults(func=run_report)

    listing = sub.add_parser("list", parents=[common], help="every tournament on the ledger")
    listing.set_defaults(func=run_list)

    verify = sub.add_parser("verify", parents=[common],
                            help="re-run a settled tournament's resolution in MPC and compare with the ledger")
    verify.add_argument("tournament_id", help="the tournament to verify")
    verify.add_argument("--tolerance-micro", type=int, default=0,
                        help="largest accepted difference (millionths; default: the larger of the "
                             "tournament's epsilon and an honest re-run's fixed-point noise)")
    verify.add_argument("--deadline", type=float, default=ROUND_S, help="seconds the MPC job may take")
    verify.set_defaults(func=run_verify)


def _client(args: argparse.Namespace) -> Any:
    from coordinator.admin_cli.coordinator_client import CoordinatorClient
    from coordinator.admin_cli.target import resolve_target

    return CoordinatorClient(resolve_target(args))


def _key_and_id(path: Path) -> tuple[Any, str]:
    from mutualmind.vocabulary.signing_keys import load_private_key

    key = load_private_key(path)
    id_file = path.with_name(path.name + ".id")
    try:
        return key, id_file.read_text(encoding="utf-8").strip()
    except OSError:
        raise InvalidInput(f"{id_file} is missing: make the key with `mutualmind provider keygen --id ...`") from None


def _signed(signed: tuple[dict[str, Any], bytes]) -> Any:
    from mutualmind.vocabulary.tournament import signed_request_json
    from proto import market_pb2

    payload_json, signature = signed_request_json(signed)
    return market_pb2.SignedTournamentRequest(payload_json=payload_json, signature=signature)


def run_open(args: argparse.Namespace) -> int:
    from mutualmind.vocabulary.tournament import TournamentTerms, signed_tournament_open

    key, sponsor = _key_and_id(args.sponsor_key)
    terms = TournamentTerms(
        tournament_id=args.tournament_id, sponsor=sponsor, label_kind=args.label_kind, metric=args.metric,
        pool=args.pool, threshold_micro=args.threshold_micro,
        deadline_ms=int((time.time() + args.deadline_s) * 1000),
        datasets=tuple(d for d in args.datasets.split(",") if d), slash_rate_ppm=args.slash_rate_ppm,
        weight_cap_ppm=args.weight_cap_ppm, epsilon_micro=args.epsilon_micro, resolution_publisher=args.publisher)
    with _client(args) as client:
        view = client.call(client.market, "OpenTournament", _signed(signed_tournament_open(key, terms)))
    _print(args, view, f"tournament {terms.tournament_id} opened at ledger entry {view.ledger_index}: "
                       f"pool {terms.pool} locked from {sponsor}; submissions until {terms.deadline_ms}")
    return 0


def run_job(args: argparse.Namespace) -> int:
    from mutualmind.vocabulary.tournament import signed_resolution
    from proto import admin_pb2

    if not 0 < args.deadline <= MAX_JOB_S:
        raise InvalidInput(f"--deadline must be in (0, {MAX_JOB_S:.0f}] seconds")
    resolving = args.tournament_command == "resolve"
    with _client(args) as client:
        if resolving and args.publisher_key is not None:
            if not args.resolution:
                raise InvalidInput("--publisher-key needs --resolution DATASET (the validation set to commit)")
            key, publisher = _key_and_id(args.publisher_key)
            client.call(client.market, "CommitResolution",
                        _signed(signed_resolution(key, args.tournament_id, publisher, args.resolution)))
        view = client.call(client.admin, "ResolveTournament" if resolving else "TrainTournament",
                           admin_pb2.TournamentJobRequest(tournament_id=args.tournament_id, deadline_s=args.deadline),
                           timeout=args.deadline + ROUND_SLACK_S)
    _print(args, view, f"tournament {view.tournament_id} is {view.status} (ledger entry {view.ledger_index})")
    return 0


def run_abort(args: argparse.Namespace) -> int:
    from proto import admin_pb2

    with _client(args) as client:
        view = client.call(client.admin, "AbortTournament",
                           admin_pb2.AbortTournamentRequest(tournament_id=args.tournament_id, reason=args.reason))
    _print(args, view, f"tournament {view.tournament_id} aborted: pool back to the sponsor, stakes to the modelers")
    return 0


def _get(client: Any, tournament_id: str) -> Any:
    from proto import market_pb2

    return client.call(client.market, "GetTournament", market_pb2.GetTournamentRequest(tournament_id=tournament_id))


def run_show(args: argparse.Namespace) -> int:
    with _client(args) as client:
        view = _get(client, args.tournament_id)
    _print(args, view, None)
    return 0


def run_report(args: argparse.Namespace) -> int:
    from coordinator.admin_cli.tournament_report import write_tournament_png

    with _client(args) as client:
        view = _get(client, args.tournament_id)
    write_tournament_png(json.loads(view.view_json), args.png)
    print(f"wrote {args.png}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from mutualmind.vocabulary.tournament_view import tournaments_text
    from proto import market_pb2

    with _client(args) as client:
        reply = client.call(client.market, "ListTournaments", market_pb2.ListTournamentsRequest())
    views = [json.loads(v.view_json) for v in reply.tournaments]
    print(json.dumps(views, sort_keys=True) if args.json else tournaments_text(views))
    return 0


def run_verify(args: argparse.Namespace) -> int:
    import sys

    from proto import admin_pb2

    if args.tolerance_micro < 0 or not 0 < args.deadline <= MAX_JOB_S:
        raise InvalidInput(f"--tolerance-micro must be >= 0 and --deadline in (0, {MAX_JOB_S:.0f}] seconds")
    with _client(args) as client:
        reply = client.call(client.admin, "VerifyTournament", admin_pb2.VerifyTournamentRequest(
            tournament_id=args.tournament_id, tolerance_micro=args.tolerance_micro, deadline_s=args.deadline),
            timeout=args.deadline + ROUND_SLACK_S)
    view = json.loads(reply.view_json)
    if args.json:
        print(json.dumps(view, sort_keys=True))
    else:
        print(f"tournament {args.tournament_id}: recorded vs recomputed (millionths)")
        for row in view["rows"]:
            a, b = row["recorded_micro"], row["recomputed_micro"]
            print(f"  {row['number']:40} {a:>10} {b:>10} {b - a:>+8}")
        flipped = f"; paid in one run, slashed in the other: {', '.join(view['flipped'])}" if view["flipped"] else ""
        print(f"{'agrees' if reply.agrees else 'DISAGREES'}: largest difference {view['max_abs_diff_micro']} "
              f"(tolerance {view['tolerance_micro']}){flipped}", file=sys.stdout if reply.agrees else sys.stderr)
    return 0 if reply.agrees else 1


def _print(args: argparse.Namespace, view: Any, headline: str | None) -> None:
    from mutualmind.vocabulary.tournament_view import tournament_text

    summary = json.loads(view.view_json)
    if args.json:
        print(json.dumps(summary, sort_keys=True))
        return
    if headline:
        print(headline)
    print(tournament_text(summary))
