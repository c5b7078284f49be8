#!/usr/bin/env python3
"""Benchmark: one MPC training against the batched leave-one-out pass, in one run.

    python bench/loo.py --providers 8 --json

Starts `--parties` MPC parties and the dealer's TTP as local processes (gloo on
loopback, CrypTen's TTP provider - the real data plane of a round). Each party holds
additive shares of the same data (breast cancer by default, rows split across
`--providers` providers) and, in the same process, runs first one training (a single
model on every row) and then the batched LOO pass (the full model plus one model per
left-out provider, weights [features, n+1]). Both include normalisation, training and
evaluation on the validation split. Printed figures:

  single_s, loo_s      wall time of each, slowest party (s)
  loo_over_single      loo_s / single_s  (target <= 1.3; naive LOO would be n+1 times)
  rounds_single/_loo   communication rounds, maximum over parties (CrypTen's counter)
  bytes_single/_loo    bytes sent, summed over parties (CrypTen's counter)
  naive_loo_estimate_s (n+1) * single_s, what retraining n+1 times would cost
  naive_s (--naive)    the n+1 separate trainings, run in MPC; naive_over_loo
  banzhaf_s (--banzhaf) the Data Banzhaf pass (2^n coalitions up to 8 providers, else MSR,
                       `mutualmind.vocabulary.valuation`) with its estimator on the shares;
                       banzhaf_over_single, banzhaf_over_loo, rounds_banzhaf, bytes_banzhaf
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.datasets import TASKS, load_task  # noqa: E402
from bench.mpc_launch import join, provider_scaled, public_seed_share, run_parties  # noqa: E402
from mutualmind.vocabulary.fixed_point import FRAC_BITS  # noqa: E402


def _dataset(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    tx, ty, vx, vy, _, _ = load_task(args.dataset, args.rows)
    return tx, ty, vx, vy


def party(args: argparse.Namespace) -> None:
    """One MPC party: single training, batched LOO (and with --naive, n+1 single
    trainings); writes its figures as JSON."""
    import numpy as np

    crypten = join(args.rank, args.parties, args.port)
    if crypten is None:
        return
    import crypten.communicator as comm
    from crypten.mpc import MPCTensor

    from mpcnode.worker.backend import CrypTenBackend
    from mpcnode.worker.banzhaf import CoalitionMasks, banzhaf_evaluator
    from mpcnode.worker.evaluation import evaluate
    from mpcnode.worker.row_masks import ModelMasks, RowMasks
    from mpcnode.worker.training import Evaluator, train_masked
    from mutualmind.vocabulary.model_spec import parse_model_spec
    from mutualmind.vocabulary.valuation import msr_seed, plan

    tx, ty, vx, vy = _dataset(args)
    parts = np.array_split(np.arange(len(tx)), args.providers)
    provider_rows = [len(p) for p in parts]

    def secret(table):  # type: ignore[no-untyped-def]
        return MPCTensor.from_shares(public_seed_share(table, args.parties, args.rank), precision=FRAC_BITS)

    spec = parse_model_spec({"kind": args.model, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr})
    tx, ty, vx, vy = provider_scaled(tx, ty, vx, vy, spec.task == "regression")

    def inputs():  # type: ignore[no-untyped-def]  # fresh: training standardises in place
        return (secret(tx), secret(ty.reshape(-1, 1)), secret(vx), secret(vy.reshape(-1, 1)))

    loo_masks = RowMasks.leave_one_out(provider_rows)
    phases: list[tuple[str, list[ModelMasks], Evaluator]] = [
        ("single", [RowMasks.everyone(len(tx))], evaluate),
        ("loo", [loo_masks], evaluate),
    ]
    if args.naive:
        phases.append(("naive", [loo_masks.only(j) for j in range(loo_masks.models)], evaluate))
    if args.banzhaf:
        coalitions = plan(args.providers, msr_seed("bench", spec.to_json(), [str(i) for i in range(args.providers)]))
        phases.append(("banzhaf", [CoalitionMasks.of(provider_rows, coalitions)], banzhaf_evaluator(coalitions)))
    figures: dict[str, object] = {}
    # warm-up (lazy imports, allocator, first gloo buffers) so the first phase is not penalised
    train_masked(CrypTenBackend(), parse_model_spec({"kind": args.model, "epochs": 1}), *inputs(), loo_masks.only(0))
    for phase, mask_list, evaluator in phases:
        comm.get().barrier()
        comm.get().reset_communication_stats()
        started = time.perf_counter()
        metrics = []
        for masks in mask_list:
            result = train_masked(CrypTenBackend(), spec, *inputs(), masks, evaluator=evaluator)
            metrics.extend(result.metrics)
        elapsed = time.perf_counter() - started
        stats = comm.get().get_communication_stats()
        figures[phase] = {
            "s": elapsed,
            "rounds": int(stats["rounds"]),
            "bytes": int(stats["bytes"]),
            "comm_s": float(stats["time"]),
            "models": int(sum(m.models for m in mask_list)),
            "steps": result.steps,
            "metrics": metrics,
        }
    figures["train_rows"] = len(tx)
    Path(args.out).write_text(json.dumps(figures))
    crypten.uninit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--providers", type=int, default=8)
    parser.add_argument("--parties", type=int, default=3, help="MPC nodes (the dealer comes on top)")
    parser.add_argument("--model", default="logistic", choices=["logistic", "mlp"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=0, help="0 = full batch")
    parser.add_argument("--rows", type=int, default=0, help="resample the set to this many rows")
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--dataset", default="breast_cancer", choices=sorted(TASKS))
    parser.add_argument("--naive", action="store_true", help="also run the n+1 separate trainings in MPC")
    parser.add_argument("--banzhaf", action="store_true", help="also run the Data Banzhaf pass (exact up to 8 providers)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rank", type=int, default=-1, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rank >= 0:
        party(args)
        return 0
    if not 2 <= args.providers <= 64 or not 2 <= args.parties <= 8:
        parser.error("--providers must be in [2, 64] and --parties in [2, 8]")

    forwarded = [
        "--providers", str(args.providers), "--model", args.model, "--epochs", str(args.epochs),
        "--batch-size", str(args.batch_size), "--rows", str(args.rows), "--lr", str(args.lr), "--dataset", args.dataset,
    ] + (["--naive"] if args.naive else []) + (["--banzhaf"] if args.banzhaf else [])
    try:
        parties = run_parties(__file__, forwarded, args.parties)
    except RuntimeError as err:
        print(err, file=sys.stderr)
        return 1
    single = {k: [p["single"][k] for p in parties] for k in ("s", "rounds", "bytes")}
    loo = {k: [p["loo"][k] for p in parties] for k in ("s", "rounds", "bytes")}
    report = {
        "providers": args.providers,
        "parties": args.parties,
        "model": args.model,
        "epochs": args.epochs,
        "dataset": args.dataset,
        "train_rows": parties[0]["train_rows"],
        "single_s": round(max(single["s"]), 3),
        "loo_s": round(max(loo["s"]), 3),
        "loo_over_single": round(max(loo["s"]) / max(single["s"]), 3),
        "rounds_single": max(single["rounds"]),
        "rounds_loo": max(loo["rounds"]),
        "bytes_single": sum(single["bytes"]),
        "bytes_loo": sum(loo["bytes"]),
        "rounds_per_party_single": single["rounds"],
        "rounds_per_party_loo": loo["rounds"],
        "naive_loo_estimate_s": round((args.providers + 1) * max(single["s"]), 3),
        **(
            {
                "naive_s": round(max(p["naive"]["s"] for p in parties), 3),
                "rounds_naive": max(p["naive"]["rounds"] for p in parties),
                "naive_over_loo": round(max(p["naive"]["s"] for p in parties) / max(loo["s"]), 2),
                "max_metric_gap_naive_vs_loo": round(
                    max(abs(a - b) for a, b in zip(parties[0]["naive"]["metrics"], parties[0]["loo"]["metrics"])), 6
                ),
            }
            if args.naive
            else {}
        ),
        **(_banzhaf_report(parties) if args.banzhaf else {}),
        "metrics_loo": parties[0]["loo"]["metrics"],
    }
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>26}: {value}")
    return 0


def _banzhaf_report(parties: list[dict]) -> dict[str, object]:
    """The Banzhaf pass's figures beside the single training and the LOO pass."""
    seconds = max(p["banzhaf"]["s"] for p in parties)
    return {
        "banzhaf_models": parties[0]["banzhaf"]["models"],
        "banzhaf_s": round(seconds, 3),
        "banzhaf_over_single": round(seconds / max(p["single"]["s"] for p in parties), 3),
        "banzhaf_over_loo": round(seconds / max(p["loo"]["s"] for p in parties), 3),
        "rounds_banzhaf": max(p["banzhaf"]["rounds"] for p in parties),
        "bytes_banzhaf": sum(p["banzhaf"]["bytes"] for p in parties),
        "metrics_banzhaf": parties[0]["banzhaf"]["metrics"],
    }


if __name__ == "__main__":
    sys.exit(main())
