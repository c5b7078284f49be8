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

The solver (`--solver sgd|newton`, `--loo retrain|newton_step`, `--l2`) is the model
spec's; `--flip-provider K` flips 40 % of provider K's labels. For logistic models the
LOO contributions are compared with a converged plaintext reference (scikit-learn
LogisticRegression, same L2 (given, > 0), retrained without each provider on the pooled
standardisation):

  sign_agreement       share of providers whose reference |contribution| > 0.002 that
                       get the same sign in MPC
  max_abs_gap          largest |MPC - reference| contribution
  flipped_rank         rank of the flipped provider in MPC (0 = lowest), reference's

    python bench/loo.py --providers 20 --solver newton --loo newton_step --flip-provider 0 --json
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
from mutualmind.vocabulary.model_spec import parse_model_spec  # noqa: E402


def _dataset(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    tx, ty, vx, vy, _, _ = load_task(args.dataset, args.rows)
    if args.flip_provider >= 0:  # 40 % of one provider's labels flipped (public seed)
        import numpy as np

        parts = np.array_split(np.arange(len(tx)), args.providers)
        rows = parts[args.flip_provider]
        flipped = np.random.default_rng(7).choice(rows, int(0.4 * len(rows)), replace=False)
        ty = ty.copy()
        ty[flipped] = 1 - ty[flipped]
    return tx, ty, vx, vy


def _spec(args: argparse.Namespace, epochs: int | None = None) -> dict[str, object]:
    raw: dict[str, object] = {"kind": args.model, "l2": args.l2, "solver": args.solver, "loo": args.loo}
    if args.solver == "sgd":
        raw.update(lr=args.lr, batch_size=args.batch_size)
    if epochs is not None or args.epochs:
        raw["epochs"] = epochs if epochs is not None else args.epochs
    elif args.solver == "sgd":
        raw["epochs"] = 10  # this benchmark's figures in docs/performance.md use 10 epochs
    return raw


EPSILON = 0.002


def reference_agreement(args: argparse.Namespace, metrics: list[float]) -> dict[str, object]:
    """The MPC contributions against scikit-learn's converged LOO (same L2, retrained)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    tx, ty, vx, vy = _dataset(args)
    scaler = StandardScaler().fit(tx)
    train, validation = scaler.transform(tx), scaler.transform(vx)
    parts = np.array_split(np.arange(len(tx)), args.providers)
    losses = []
    for left_out in [None, *parts]:
        keep = np.ones(len(tx), dtype=bool)
        if left_out is not None:
            keep[left_out] = False
        model = LogisticRegression(C=1 / (args.l2 * keep.sum()), tol=1e-10, max_iter=10_000).fit(train[keep], ty[keep])
        p = np.clip(model.predict_proba(validation)[:, 1], 1e-15, 1 - 1e-15)
        losses.append(float(-(vy * np.log(p) + (1 - vy) * np.log(1 - p)).mean()))
    reference = np.array(losses[1:]) - losses[0]
    got = np.array(metrics[1:]) - metrics[0]
    beyond = np.abs(reference) > EPSILON
    figures: dict[str, object] = {
        "sign_agreement": round(float((np.sign(got[beyond]) == np.sign(reference[beyond])).mean()), 3)
        if beyond.any() else None,
        "providers_beyond_epsilon": int(beyond.sum()),
        "max_abs_gap": round(float(np.abs(got - reference).max()), 5),
    }
    if args.flip_provider >= 0:
        figures["flipped_rank"] = int(np.argsort(np.argsort(got))[args.flip_provider])
        figures["flipped_rank_reference"] = int(np.argsort(np.argsort(reference))[args.flip_provider])
    return figures


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
    from mpcnode.worker.training import Evaluator, train_loo, train_masked
    from mutualmind.vocabulary.valuation import msr_seed, plan

    tx, ty, vx, vy = _dataset(args)
    parts = np.array_split(np.arange(len(tx)), args.providers)
    provider_rows = [len(p) for p in parts]

    def secret(table):  # type: ignore[no-untyped-def]
        return MPCTensor.from_shares(public_seed_share(table, args.parties, args.rank), precision=FRAC_BITS)

    spec = parse_model_spec(_spec(args))
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
    train_masked(CrypTenBackend(), parse_model_spec(_spec(args, epochs=1)), *inputs(), loo_masks.only(0))
    for phase, mask_list, evaluator in phases:
        comm.get().barrier()
        comm.get().reset_communication_stats()
        started = time.perf_counter()
        metrics = []
        for masks in mask_list:
            if phase == "loo":  # train_loo: the spec's loo method (newton_step needs the providers)
                result = train_loo(CrypTenBackend(), spec, *inputs(), provider_rows)
            else:
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
    parser.add_argument("--epochs", type=int, default=0, help="0 = sgd 10, newton the spec's default (6 logistic)")
    parser.add_argument("--solver", default="sgd", choices=["sgd", "newton"])
    parser.add_argument("--loo", default="retrain", choices=["retrain", "newton_step"])
    parser.add_argument("--l2", type=float, default=None, help="default: sgd 0 (this benchmark's history), newton 0.01")
    parser.add_argument("--flip-provider", type=int, default=-1, help="flip 40 %% of this provider's labels")
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
    if args.l2 is None:
        args.l2 = 0.01 if args.solver == "newton" else 0.0
    if args.rank >= 0:
        party(args)
        return 0
    if not 2 <= args.providers <= 64 or not 2 <= args.parties <= 8:
        parser.error("--providers must be in [2, 64] and --parties in [2, 8]")
    if args.flip_provider >= args.providers:
        parser.error("--flip-provider must name one of the providers (0-based)")

    forwarded = [
        "--providers", str(args.providers), "--model", args.model, "--epochs", str(args.epochs),
        "--batch-size", str(args.batch_size), "--rows", str(args.rows), "--lr", str(args.lr), "--dataset", args.dataset,
        "--solver", args.solver, "--loo", args.loo, "--l2", str(args.l2), "--flip-provider", str(args.flip_provider),
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
        "solver": args.solver,
        "loo": args.loo,
        "l2": args.l2,
        "epochs": parse_model_spec(_spec(args)).epochs,
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
    if args.model == "logistic" and args.l2 > 0:  # the reference needs a penalty to converge
        report.update(reference_agreement(args, parties[0]["loo"]["metrics"]))
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
