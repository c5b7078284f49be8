"""`mutualmind user predict`: buy a model's predictions on your rows, privately (issue 16).

The rows are secret-shared on this machine and uploaded to every node (like a dataset,
purpose `inference`); the order holds the model's price per started 1,000 rows from your
balance; the nodes evaluate the model on the shares; this machine fetches every node's
share of the outputs and adds them up. No node, coordinator or owner sees a row or a
prediction. Logic: `provider.predict`; a progress bar on stderr, one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Any

from mutualmind.errors import InvalidInput
from provider.cli import DATA_DIR_ENV, _with_cluster


def register(subparsers: Any) -> None:
    user = subparsers.add_parser("user", help="model users: buy predictions on private rows")
    sub = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    predict = sub.add_parser("predict", help="run a model on your CSV rows in MPC and write its predictions")
    predict.add_argument("--key", type=Path, required=True, help="your key file (a registered account that pays)")
    predict.add_argument("--model", required=True, help="the model's id (a round's model: the round id)")
    predict.add_argument("--csv", type=Path, required=True,
                         help="your rows: a header row naming the model's feature columns (others are ignored)")
    predict.add_argument("--out", type=Path, required=True, help="the predictions CSV to write (mode 0600)")
    predict.add_argument("--coordinator", help="coordinator market address host:port")
    predict.add_argument("--certs", type=Path, help="folder with the cluster's ca.pem and cluster.json")
    predict.add_argument("--node", action="append", metavar="HOST:PORT",
                         help="node public address, once per node in index order (default: the coordinator's node directory)")
    predict.add_argument("--data-dir", type=Path, default=os.environ.get(DATA_DIR_ENV),
                         help=f"data dir of a local cluster: fills in --coordinator, --certs and --node [env {DATA_DIR_ENV}]")
    predict.set_defaults(func=_with_cluster(run_predict))


def run_predict(args: argparse.Namespace) -> int:
    from provider.cli import _market, _node_channels, _node_keys, _resolve_nodes
    from provider.predict import model_for_sale, predict
    from provider.sharing import load_csv

    if not args.out.parent.is_dir():
        raise InvalidInput(f"folder {args.out.parent} does not exist; create it or choose another --out")
    _resolve_nodes(args)
    keys = _node_keys(args.certs, len(args.node), args.directory)
    if keys is None:
        raise InvalidInput(f"{args.certs} must hold the cluster manifest (cluster.json) naming the keys "
                           f"of all {len(args.node)} nodes, to check who sent each prediction share")
    client = _market(args)
    channels = _node_channels(args)
    try:
        model = model_for_sale(client.channel, args.model)
        table = load_csv(args.csv, feature_columns=list(model.features.columns))
        started = time.monotonic()
        with _bar() as bar:
            task = bar.add_task("sharing", total=1.0)
            result = predict(client.channel, channels, client.key, client.provider_id, args.model, table,
                             keys, lambda stage, done: bar.update(task, completed=done, description=stage))
        seconds = time.monotonic() - started
    finally:
        client.channel.close()
        for channel in channels:
            channel.close()
    _write_predictions(args.out, result)
    print(json.dumps({"order_id": result.order_id, "model_id": result.model_id, "rows": table.rows,
                      "fee": result.fee, "out": str(args.out), "seconds": round(seconds, 3),
                      "rounds": result.stats.get("rounds")}))
    return 0


def _bar() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TimeElapsedColumn

    return Progress("[progress.description]{task.description}", BarColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=True)


def _write_predictions(path: Path, result: Any) -> None:
    """`prediction` (class or value), then the model's raw outputs for a classifier: logits,
    or a tournament metamodel's probability of the positive class."""
    from mutualmind.transport.atomic_file import write_atomic

    outputs = result.outputs
    classifier = result.spec.task != "regression"
    raw = "probability" if getattr(result, "probabilities", False) else "logit"
    header = ["prediction"] + ([f"{raw}_{i}" for i in range(outputs.shape[1])] if classifier else [])
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    for label, row in zip(result.labels(), outputs, strict=True):
        cells = [f"{label:g}" if classifier else f"{label:.6g}"]
        writer.writerow(cells + ([f"{v:.6g}" for v in row] if classifier else []))
    write_atomic(path, text.getvalue().encode("utf-8"), mode=0o600)
