"""`mutualmind modeler submit|list|show|collect`: a modeler's side of the model market (issue 15).

A modeler is a registered provider key like any other: it chooses a tournament's staked
datasets and a recipe, signs the submission on its own machine
(`mutualmind.vocabulary.tournament.signed_model_submit`: checked strictly first, the
recipe parsed by the workers' own parser) and sends it to the public Market API, which
appends it if the ledger's rules hold (before the deadline, eligible and consenting
datasets, a stake within the balance) and refuses it with nothing written if not.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from mutualmind.errors import InvalidInput


def register(subparsers: Any) -> None:
    from provider.cli import DATA_DIR_ENV

    parser = subparsers.add_parser("modeler", help="modeler: submit models to tournaments, follow them")
    sub = parser.add_subparsers(dest="modeler_command", metavar="ACTION", required=True)

    def target(p: argparse.ArgumentParser, key: bool) -> None:
        if key:
            p.add_argument("--key", type=Path, required=True, help="the modeler's provider key file")
        p.add_argument("--coordinator", help="coordinator market address host:port")
        p.add_argument("--certs", type=Path, help="folder with the cluster's ca.pem")
        p.add_argument("--data-dir", type=Path, default=os.environ.get(DATA_DIR_ENV),
                       help=f"data dir of a local cluster (`cluster up`) [env {DATA_DIR_ENV}]")
        p.add_argument("--json", action="store_true", help="one JSON object instead of text")

    submit = sub.add_parser("submit", help="submit a model: recipe, datasets, stake, kept share")
    submit.add_argument("tournament_id", help="the tournament's id")
    submit.add_argument("--model-id", required=True, help="your model's id (new, unique)")
    submit.add_argument("--recipe", required=True,
                        help='a model spec as JSON, e.g. \'{"kind": "logistic", "epochs": 20}\'')
    submit.add_argument("--datasets", required=True, help="the tournament's staked datasets you choose, comma-separated")
    submit.add_argument("--stake", type=int, required=True, help="tokens locked behind the model")
    submit.add_argument("--kept-share-bps", type=int, default=5_000,
                        help="the share of gains and slashes you keep; the rest passes to your datasets")
    target(submit, key=True)
    submit.set_defaults(func=run_submit)

    listing = sub.add_parser("list", help="the market's tournaments")
    target(listing, key=False)
    listing.set_defaults(func=run_list)

    show = sub.add_parser("show", help="a tournament: terms, models, contributions, tokens")
    show.add_argument("tournament_id", help="the tournament's id")
    target(show, key=False)
    show.set_defaults(func=run_show)

    collect = sub.add_parser("collect", help="fetch your frozen model of a settled tournament from every node")
    collect.add_argument("--tournament", required=True, help="a closed (settled) tournament's id")
    collect.add_argument("--model", required=True, help="the id of the model you submitted")
    collect.add_argument("--out", type=Path, required=True, help="JSON model file to write")
    collect.add_argument("--node", action="append", metavar="HOST:PORT",
                         help="node public address, once per node in index order (default: the coordinator's node directory)")
    target(collect, key=True)
    collect.set_defaults(func=run_collect)


def run_submit(args: argparse.Namespace) -> int:
    from mutualmind.vocabulary.tournament import ModelSubmission
    from mutualmind.vocabulary.tournament_view import tournament_text
    from provider.cli import _market, resolve_cluster

    try:
        recipe = json.loads(args.recipe)
    except ValueError:
        raise InvalidInput("--recipe must be a JSON object (a model spec)") from None
    if not isinstance(recipe, dict):
        raise InvalidInput("--recipe must be a JSON object (a model spec)")
    resolve_cluster(args)
    client = _market(args)
    try:
        submission = ModelSubmission(
            tournament_id=args.tournament_id, model_id=args.model_id, modeler=client.provider_id, recipe=recipe,
            datasets=tuple(d for d in args.datasets.split(",") if d), stake=args.stake,
            kept_share_bps=args.kept_share_bps)
        view = client.submit_model(submission)
    finally:
        client.channel.close()
    summary = json.loads(view.view_json)
    if args.json:
        print(json.dumps({"tournament_id": args.tournament_id, "model_id": args.model_id,
                          "ledger_index": view.ledger_index, "stake": args.stake}, sort_keys=True))
    else:
        print(f"model {args.model_id} submitted to {args.tournament_id} at ledger entry {view.ledger_index}; "
              f"stake {args.stake} locked")
        print(tournament_text(summary))
    return 0


def _read(args: argparse.Namespace, method: str, request: Any) -> Any:
    from mutualmind.transport import channel_credentials, open_channel
    from mutualmind.transport.pki import COORDINATOR_NAME
    from provider.cli import resolve_cluster
    from provider.client import market_call

    resolve_cluster(args)
    channel = open_channel(args.coordinator, channel_credentials(args.certs, None), server_name=COORDINATOR_NAME)
    try:
        return market_call(channel, method, request)
    finally:
        channel.close()


def run_list(args: argparse.Namespace) -> int:
    from mutualmind.vocabulary.tournament_view import tournaments_text
    from proto import market_pb2

    reply = _read(args, "ListTournaments", market_pb2.ListTournamentsRequest())
    views = [json.loads(v.view_json) for v in reply.tournaments]
    print(json.dumps(views, sort_keys=True) if args.json else tournaments_text(views))
    return 0


def run_show(args: argparse.Namespace) -> int:
    from mutualmind.vocabulary.tournament_view import tournament_text
    from proto import market_pb2

    view = _read(args, "GetTournament", market_pb2.GetTournamentRequest(tournament_id=args.tournament_id))
    summary = json.loads(view.view_json)
    print(json.dumps(summary, sort_keys=True) if args.json else tournament_text(summary))
    return 0


def run_collect(args: argparse.Namespace) -> int:
    """Collect, check and rebuild the frozen model; write it atomically; one JSON line."""
    from provider.cli import _market, _node_channels, collection_nodes, resolve_cluster
    from provider.frozen_collect import collect_frozen_model, write_frozen_model

    resolve_cluster(args)
    keys = collection_nodes(args)
    channels = _node_channels(args)
    try:
        client = _market(args)
        try:
            model = collect_frozen_model(client.channel, channels, client.key, client.provider_id,
                                         args.tournament, args.model, keys)
        finally:
            client.channel.close()
    finally:
        for channel in channels:
            channel.close()
    write_frozen_model(args.out, model)
    print(json.dumps({"tournament_id": model.tournament_id, "model_id": model.model_id, "out": str(args.out),
                      "nodes": len(model.shares), "kind": model.spec.kind, "commitment": model.commitment,
                      "tensors": {name: list(t.shape) for name, t in sorted(model.tensors.items())}}))
    return 0
