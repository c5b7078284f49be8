"""`mutualmind demo`: start a local cluster and walk a whole round on real data."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="run a whole round on a local cluster with real data",
        description="Start a local cluster (coordinator, nodes, dealer), split a real table "
                    "over providers (one noisy, one duplicating), share and stake, open and "
                    "run a round, print contributions and payouts; then a user buys private "
                    "predictions from the round's model and its owners are paid dividends; "
                    "verify the ledger.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", default=None,
                        help="bundled scikit-learn classification set: breast_cancer "
                             "(default), wine, digits, iris")
    source.add_argument("--csv", default=None, help="a CSV file with a header row")
    parser.add_argument("--label", default=None, help="label column of --csv")
    parser.add_argument("--providers", type=int, default=5, help="number of providers (>= 3)")
    parser.add_argument("--nodes", type=int, default=3, help="number of MPC nodes (>= 2)")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="cluster data dir (default: a fresh temporary folder)")
    parser.add_argument("--keep", action="store_true",
                        help="leave the data dir (ledger, shares, logs) in place")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--tournament", action="store_true",
                        help="the model market instead: four modelers stake models on the staked data, "
                             "a metamodel is scored on held-out rows (docs/tournaments.md)")
    parser.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from mutualmind.cluster.local import LocalCluster
    from mutualmind.demo.scenario import build_scenario, load_table
    from mutualmind.demo.story import run_story
    from mutualmind.demo.tournament_story import MISSED_FRACTION

    # the market's noisy provider misses most positive cases (a bias that hurts a model,
    # docs/tournaments.md); the rounds' flips a share of its labels at random
    noise = {"noise": "missed", "flip_fraction": MISSED_FRACTION} if args.tournament else {}
    scenario = build_scenario(load_table(args.dataset, args.csv, args.label),
                              providers=args.providers, **noise)  # type: ignore[arg-type]
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="mutualmind-demo-"))
    quiet = args.json

    def say(line: str) -> None:
        print(line, file=sys.stderr if quiet else sys.stdout, flush=True)

    started = time.monotonic()
    cluster = LocalCluster(data_dir, nodes=args.nodes)
    say(f"starting a local cluster in {data_dir}: coordinator, dealer, {args.nodes} nodes")
    try:
        cluster.up()
        if args.tournament:
            from mutualmind.demo.tournament_story import run_tournament_story

            story: Any = run_tournament_story(cluster, scenario, say=say, epochs=args.epochs)
        else:
            story = run_story(cluster, scenario, say=say, epochs=args.epochs)
    finally:
        cluster.down()
        if not args.keep and args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    if args.tournament:
        return _print_tournament(args, story, say, started)
    result = story
    elapsed = time.monotonic() - started
    if args.json:
        out = result.to_json()
        out["seconds"] = round(elapsed, 1)
        out["data_dir"] = str(data_dir) if args.keep or args.data_dir else None
        print(json.dumps(out, indent=2))
    else:
        _print_human(result, elapsed, kept=args.keep or args.data_dir is not None)
    return 0 if result.ledger["ok"] else 1


def _print_tournament(args: argparse.Namespace, result: dict[str, Any], say: Any, started: float) -> int:
    result["seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        say(f"{result['tournament']}: metamodel {result['metric']} {result['metamodel_metric']:.4f} "
            f"(threshold {result['threshold']:g}: bounty {'paid' if result['bounty_paid'] else 'refunded'})")
        for m in result["models"]:
            copy = f" (copy of {m['copy_of']})" if m["copy_of"] else ""
            say(f"  {m['name']:14} {m['role']:10} weight {m['weight']:.3f} contribution {m['contribution']:+.4f} "
                f"payout {m['payout']:>5} slashed {m['slashed']:>4}{copy}")
            for d in m["datasets"]:
                say(f"      {d['name']:18} {d['role']:9} {d['contribution']:+.4f} payout {d['payout']:>5} "
                    f"slashed {d['slashed']:>4}")
        for owner in result.get("metamodel_owners", []):
            say(f"  owner {owner['name']:18} {owner['units']:>9,} units of the metamodel")
        say(f"ledger verify: {'ok' if result['ledger']['ok'] else 'FAILED'} ({result['ledger']['entries']} entries)")
    return 0 if result["ledger"]["ok"] else 1


def _print_human(result: Any, elapsed: float, *, kept: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{result.round_id}: contributions and payouts "
                        f"(metric: {result.metric}, pool {result.pool} tokens)")
    for column in ("provider", "role", "rows", "stake", "contribution", "payout", "slashed"):
        table.add_column(column, justify="left" if column in ("provider", "role") else "right")
    for p in result.providers:
        colour = "green" if p["payout"] else ("red" if p["slashed"] else "")
        table.add_row(p["name"], p["role"], str(p["rows"]), str(p["stake"]),
                      f"{p['contribution']:+.4f}", f"[{colour}]{p['payout']}[/]" if colour else
                      str(p["payout"]), str(p["slashed"]))
    console.print(table)
    acc = "n/a" if result.accuracy_mpc is None else f"{result.accuracy_mpc:.4f}"
    console.print(f"validation accuracy — MPC model: {acc}, plaintext scikit-learn "
                  f"LogisticRegression: {result.plaintext_accuracy:.4f}")
    console.print(f"validation {result.metric} — MPC model: {result.metric_full:.4f}, "
                  f"scikit-learn: {result.plaintext_metric_full:.4f}")
    if result.inference is not None:
        _print_inference(console, result.round_id, result.inference)
    ledger = result.ledger
    status = "[green]verified[/]" if ledger["ok"] else f"[red]FAILED: {ledger['error']}[/]"
    console.print(f"ledger: {status} — {ledger['entries']} entries, root {ledger['root'][:16]}…")
    console.print(f"done in {elapsed:.0f} s" + (f"; data kept in {result.data_dir}" if kept else ""))


def _print_inference(console: Any, model_id: str, inference: dict[str, Any]) -> None:
    """The model's owners after a user bought predictions: units and the dividend paid."""
    from rich.table import Table

    match = "[green]match[/]" if inference["predictions_match"] else "[red]DO NOT match[/]"
    table = Table(title=f"owners of {model_id}: {inference['rows']} rows sold for {inference['fee']} tokens")
    for column in ("owner", "units", "share", "dividend"):
        table.add_column(column, justify="left" if column == "owner" else "right")
    total = sum(o["units"] for o in inference["owners"]) or 1
    for owner in inference["owners"]:
        table.add_row(owner["name"], str(owner["units"]), f"{owner['units'] / total:.2%}", str(owner["dividend"]))
    console.print(table)
    console.print(f"predictions {match} the collected model's plaintext predictions")
