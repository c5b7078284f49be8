"""Private inference end to end on a local cluster: latency of one row, rows per second.

    python bench/inference.py --json                 # 10,000 rows (the issue's figure)
    python bench/inference.py --rows 2000 --json     # smaller, on a busy machine

Starts a local cluster (coordinator, dealer, 3 node processes, mutual TLS on loopback),
trains the breast-cancer round the demo trains (logistic, 3 providers and a sponsor),
then a user buys predictions through `provider.predict` - secret-shares its rows, orders,
waits for the nodes' MPC job, fetches and adds the prediction shares - first of one row
(`--repeat` times, median, each `--settle` s after the last job so the nodes' ready
workers have refilled: "a warm model"), then, `--settle` s later too, of `--rows` rows
drawn from breast cancer.

Printed figures (one JSON object with --json):
  latency_1_row_s     one row, from sharing to reconstructed prediction (median)
  latency_1_row_mpc_s the nodes' MPC evaluation of that row alone (worker's mpc_s)
  startup_1_row_s     the worker's start before it (imports, inputs, joining the parties)
  rows, rows_per_s    the batch, end to end
  rows_per_s_mpc      the batch's MPC evaluation alone
  rounds_per_batch    communication rounds of the batch's evaluation (one party)
  bytes_per_batch     bytes one party sent in it
  phases_1_row_s, phases_batch_s   the slowest party's job: when it began and had its
                      result (s from the user's first call), the spread of the parties'
                      starts, its reading, joining, material fetch and MPC seconds, CPU
                      seconds, and how long its ready worker had waited for it
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ROUND = "bench-inference"
PRICE = 1


def _queries(schema: object, values: np.ndarray) -> object:
    from mutualmind.vocabulary.dataset import TableSchema
    from provider.sharing import Table

    features = tuple(schema.feature_columns)  # type: ignore[attr-defined]
    return Table(np.ascontiguousarray(values), TableSchema(features, features, ""))


def _phases(stats: dict, epoch: float) -> dict[str, float]:
    """Where the slowest party's job spent its time (absent from a worker of before the
    per-phase figures: then empty)."""
    parties = [p for p in stats.get("parties", []) if "started_at" in p]
    if not parties:
        return {}
    slow = max(parties, key=lambda p: float(p["finished_at"]))
    began = [float(p["started_at"]) for p in parties]
    return {"job_began": round(float(slow["started_at"]) - epoch, 3),
            # the first party's job to the last one's: the nodes' job starts, one after another
            "began_spread": round(max(began) - min(began), 3),
            **{k: round(float(slow[k]), 3) for k in ("load_s", "connect_s", "prefetch_s", "mpc_s",
                                                      "startup_cpu_s", "mpc_cpu_s", "ready_idle_s")},
            "result_written": round(float(slow["finished_at"]) - epoch, 3)}


def measure(args: argparse.Namespace) -> dict[str, object]:
    from mutualmind.cluster.local import LocalCluster
    from mutualmind.demo.scenario import build_scenario
    from mutualmind.demo.session import MarketSession
    from mutualmind.vocabulary.round_open import RoundTerms
    from provider.predict import predict
    from provider.sharing import load_sklearn

    with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
        cluster = LocalCluster(Path(tmp) / "cluster", nodes=3)
        cluster.up()
        try:
            session = MarketSession(cluster)
            table = load_sklearn("breast_cancer")
            scenario = build_scenario(table, providers=3)
            for part in scenario.providers:
                client = session.enrol(part.name, mint=10_000)
                session.share(client, f"{part.name}-data", part.table, purpose="training",
                              expected_schema=scenario.schema)
                client.stake(f"{part.name}-data", 100)
            sponsor = session.enrol("sponsor", mint=10_000)
            session.share(sponsor, "validation", scenario.validation, purpose="validation",
                          expected_schema=scenario.schema)
            session.open_round(sponsor, RoundTerms(
                round_id=ROUND, sponsor="sponsor", pool=1_000,
                model_spec={"kind": "logistic", "task": "binary", "metric": "log_loss", "epochs": 10},
                validation_dataset="validation", datasets=tuple(f"{p.name}-data" for p in scenario.providers),
                slash_rate_ppm=0, epsilon_micro=1_000, inference_price_per_1000_rows=PRICE))
            view = session.run_round(ROUND, deadline_s=600)
            if view.status != "closed":
                raise SystemExit(f"the round did not close: {view.message}")
            user = session.enrol("user", mint=1_000_000)
            features = table.values[:, :-1]

            def buy(values: np.ndarray) -> tuple[float, dict]:
                started, epoch = time.monotonic(), time.time()
                stages: dict[str, float] = {}

                def note(stage: str, fraction: float) -> None:
                    stages.setdefault(stage, round(time.monotonic() - started, 3))

                result = predict(session.market_channel, session.node_channels, user.key, "user", ROUND,
                                 _queries(scenario.schema, values), session.node_keys, note)
                return time.monotonic() - started, {**result.stats, "stages_s": stages,
                                                    "phases_s": _phases(result.stats, epoch)}

            singles = []
            for i in range(args.repeat):
                time.sleep(args.settle)   # the nodes' and the dealer's ready workers refilled
                singles.append(buy(features[i:i + 1]))
            rng = np.random.default_rng(0)   # which rows, not a secret
            time.sleep(args.settle)   # the batch too runs on a warm model
            batch_s, batch = buy(features[rng.integers(0, len(features), args.rows)])
            session.close()
        finally:
            cluster.down()
    singles.sort(key=lambda single: single[0])
    one = singles[len(singles) // 2][1]["parties"][0]
    mpc = batch["parties"][0]
    batch = dict(batch)
    return {
        "latency_1_row_s": round(singles[len(singles) // 2][0], 3),
        "latency_1_row_mpc_s": round(float(one["mpc_s"]), 3),
        "startup_1_row_s": round(float(one["startup_s"]), 3),
        # the coordinator's view of that job: dealer and nodes started, job done
        "job_1_row_started_s": singles[len(singles) // 2][1].get("started_s"),
        "job_1_row_s": singles[len(singles) // 2][1].get("job_s"),
        # node workers of the one-row jobs that were ready spares (not started cold), of all
        "ready_workers": f"{sum(int(p['ready_worker']) for _, s in singles for p in s['parties'])}"
                         f"/{sum(len(s['parties']) for _, s in singles)}",
        # when each step of the median one-row purchase began (s from its start)
        "stages_1_row_s": singles[len(singles) // 2][1]["stages_s"],
        "stages_batch_s": batch["stages_s"],
        # the slowest node's job, from the user's first call: its worker began the job
        # (after the order and the hand-over), read its shares, joined the parties and
        # the dealer, fetched the material, evaluated, wrote its result; CPU seconds
        "phases_1_row_s": singles[len(singles) // 2][1]["phases_s"],
        "phases_batch_s": batch["phases_s"],
        "rows": args.rows,
        "rows_per_s": round(args.rows / batch_s, 1),
        "rows_per_s_mpc": round(args.rows / float(mpc["mpc_s"]), 1),
        "batch_s": round(batch_s, 3),
        "rounds_per_batch": int(mpc["rounds"]),
        "bytes_per_batch": int(mpc["bytes"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="rows of the batch (default 10,000)")
    parser.add_argument("--repeat", type=int, default=3, help="one-row purchases, the median is printed")
    parser.add_argument("--settle", type=float, default=20.0,
                        help="seconds to wait before each one-row purchase, for the ready workers to refill")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args()
    report = measure(args)
    print(json.dumps(report) if args.json else "\n".join(f"{k}: {v}" for k, v in report.items()))


if __name__ == "__main__":
    main()
