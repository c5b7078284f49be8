#!/usr/bin/env python3
"""Benchmark: a tournament's resolution in MPC (issue 15's `resolve_s`).

    python bench/tournament.py --models 8 --rows 10000 --json

Starts `--parties` MPC parties and the dealer's TTP as local processes (gloo on
loopback, CrypTen's TTP provider, as bench/loo.py). K logistic models are trained in
plaintext on disjoint slices of breast cancer (resampled with jitter to reach the row
count; every fourth model on flipped labels, so contributions of both signs occur),
then every party holds shares of their weights and standardisation and of `--rows`
held-out resolution rows, and runs `mpcnode.worker.metamodel.resolve`: predictions,
the stake-weighted capped metamodel and the K leave-one-model-out metamodels, their
metric. Printed figures:

  resolve_s           wall time of the resolution, slowest party (s)
  rounds, bytes       communication rounds (max over parties) and bytes sent (summed)
  metamodel_metric_micro, contributions_micro   what the nodes would sign
  max_gap_micro       largest difference from the plaintext reference (same algorithm)

With `--freeze` it measures the freeze instead (`tournament_run.train_frozen`, issue
15's `train_over_single`): `--datasets` training datasets of `--rows-per-dataset` rows,
`--models` models of one recipe each choosing `--choose` of them (in turn), every model
with its per-dataset variants, in one batched pass; against ONE training of one model on
its datasets (no variants) in the same job (after an unreported warm-up training):

  freeze_s, freeze_rounds, freeze_bytes     all models and variants (slowest party, max, summed)
  single_s, single_rounds, single_bytes     one model
  train_over_single                         freeze_s / single_s
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.mpc_launch import join, provider_scaled, public_seed_share, run_parties  # noqa: E402
from mutualmind.vocabulary.fixed_point import FRAC_BITS  # noqa: E402

TRAIN_ROWS_PER_MODEL = 400


def _tournament(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """(specs, plaintext models, resolution x, y, stakes): the same on every party."""
    import numpy as np
    import torch

    from bench.datasets import load_task
    from mpcnode.worker.backend import PlainBackend
    from mpcnode.worker.row_masks import RowMasks
    from mpcnode.worker.training import train_masked
    from mutualmind.vocabulary.model_spec import parse_model_spec

    total = max(args.rows * 5, args.models * TRAIN_ROWS_PER_MODEL * 2)
    tx, ty, vx, vy, _, _ = load_task("breast_cancer", total)
    tx, ty, vx, vy = (np.asarray(t) for t in provider_scaled(tx, ty, vx, vy, False))
    spec = parse_model_spec({"kind": "logistic", "epochs": 20})
    models = []
    for k in range(args.models):
        rows = slice(k * TRAIN_ROWS_PER_MODEL, (k + 1) * TRAIN_ROWS_PER_MODEL)
        x, y = torch.tensor(tx[rows]), torch.tensor(ty[rows]).reshape(-1, 1)
        if k % 4 == 3:
            y = 1 - y
        result = train_masked(PlainBackend(), spec, x, y, x[:2].clone(), y[:2].clone(), RowMasks.everyone(len(x)))
        models.append({name: value.detach().clone() for name, value in result.weights.items()})
    stakes = [100 * (k + 1) for k in range(args.models)]
    rx, ry = np.asarray(vx[: args.rows]), np.asarray(vy[: args.rows]).reshape(-1, 1)
    return [spec] * args.models, models, rx, ry, stakes


def party(args: argparse.Namespace) -> None:
    joined = join(args.rank, args.parties, args.port)
    if joined is None:
        return
    crypten: Any = joined
    import crypten.communicator as comm
    import torch
    from crypten.mpc import MPCTensor

    from mpcnode.worker.backend import CrypTenBackend
    from mpcnode.worker.metamodel import plaintext_resolution, resolve

    specs, models, rx, ry, stakes = _tournament(args)

    def secret(table, seed):  # type: ignore[no-untyped-def]
        return MPCTensor.from_shares(public_seed_share(table, args.parties, args.rank, seed), precision=FRAC_BITS)

    shared = [{name: secret(value.numpy(), 100 * k + i) for i, (name, value) in enumerate(sorted(m.items()))}
              for k, m in enumerate(models)]
    x, y = secret(rx, 1), secret(ry, 2)
    comm.get().barrier()
    comm.get().reset_communication_stats()
    started = time.perf_counter()
    result = resolve(CrypTenBackend(), args.metric, specs, shared, x, y, stakes, args.cap_ppm)
    elapsed = time.perf_counter() - started
    stats = comm.get().get_communication_stats()
    reference = plaintext_resolution(args.metric, specs, models, torch.tensor(rx), torch.tensor(ry), stakes, args.cap_ppm)
    gaps = [abs(a - b) for a, b in zip([result.metamodel_metric_micro, *result.contributions_micro],
                                       [reference.metamodel_metric_micro, *reference.contributions_micro], strict=True)]
    Path(args.out).write_text(json.dumps({
        "s": elapsed, "rounds": int(stats["rounds"]), "bytes": int(stats["bytes"]),
        "weights_ppm": result.weights_ppm, "metamodel_metric_micro": result.metamodel_metric_micro,
        "contributions_micro": result.contributions_micro,
        "reference_contributions_micro": reference.contributions_micro, "max_gap_micro": max(gaps),
    }))
    crypten.uninit()


def freeze_party(args: argparse.Namespace) -> None:
    joined = join(args.rank, args.parties, args.port)
    if joined is None:
        return
    crypten: Any = joined
    import crypten.communicator as comm
    from crypten.mpc import MPCTensor

    from bench.datasets import load_task
    from mpcnode.worker.backend import CrypTenBackend
    from mpcnode.worker.tournament_run import train_frozen
    from mutualmind.vocabulary.model_spec import parse_model_spec
    from mutualmind.vocabulary.tournament_job import WorkerModel

    rows = args.rows_per_dataset * args.datasets
    import numpy as np

    tx, ty, vx, vy, _, _ = load_task("breast_cancer", rows * 2)
    tx, ty, _, _ = (np.asarray(t) for t in provider_scaled(tx, ty, vx, vy, False))
    ids = tuple(f"d{i}" for i in range(args.datasets))
    spec = parse_model_spec({"kind": "logistic", "epochs": args.epochs})
    models = [WorkerModel(f"m{k}", spec, tuple(ids[(k + j) % args.datasets] for j in range(args.choose)))
              for k in range(args.models)]
    x = MPCTensor.from_shares(public_seed_share(tx[:rows], args.parties, args.rank, 1), precision=FRAC_BITS)
    y = MPCTensor.from_shares(public_seed_share(ty[:rows].reshape(-1, 1), args.parties, args.rank, 2),
                              precision=FRAC_BITS)
    sizes = [args.rows_per_dataset] * args.datasets
    out: dict[str, float] = {}
    # a first single training warms CrypTen, the dealer and the imports up; not reported
    for name, chosen in (("warmup", None), ("freeze", models), ("single", None)):
        comm.get().barrier()
        comm.get().reset_communication_stats()
        started = time.perf_counter()
        if chosen is None:  # one model, one mask, no variants: a plain training
            from mpcnode.worker.tournament_run import SubsetMasks
            from mpcnode.worker.training import train_masked

            masks = SubsetMasks.of(sizes, [{ids.index(d) + 1 for d in models[0].datasets}])
            tx_, ty_ = x.clone(), y.clone()
            train_masked(CrypTenBackend(), spec, tx_, ty_, tx_[0:1].clone(), ty_[0:1].clone(), masks, None,
                         lambda *a: ([], None))
        else:
            train_frozen(CrypTenBackend(), chosen, ids, x, y, sizes)
        out[f"{name}_s"] = time.perf_counter() - started
        stats = comm.get().get_communication_stats()
        out[f"{name}_rounds"], out[f"{name}_bytes"] = int(stats["rounds"]), int(stats["bytes"])
    Path(args.out).write_text(json.dumps(out))
    crypten.uninit()


def freeze_main(args: argparse.Namespace) -> int:
    forwarded = ["--freeze", "--models", str(args.models), "--datasets", str(args.datasets),
                 "--choose", str(args.choose), "--rows-per-dataset", str(args.rows_per_dataset),
                 "--epochs", str(args.epochs)]
    parties = run_parties(__file__, forwarded, args.parties)
    report: dict[str, Any] = {"models": args.models, "datasets": args.datasets, "choose": args.choose,
                              "rows_per_dataset": args.rows_per_dataset, "epochs": args.epochs,
                              "trained_models": args.models * (args.choose + 1)}
    for name in ("single", "freeze"):
        report[f"{name}_s"] = round(max(p[f"{name}_s"] for p in parties), 3)
        report[f"{name}_rounds"] = max(p[f"{name}_rounds"] for p in parties)
        report[f"{name}_bytes"] = sum(p[f"{name}_bytes"] for p in parties)
    report["train_over_single"] = round(report["freeze_s"] / report["single_s"], 3)
    print(json.dumps(report) if args.json else "\n".join(f"{k:>20}: {v}" for k, v in report.items()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--rows", type=int, default=10_000, help="resolution rows")
    parser.add_argument("--parties", type=int, default=3, help="MPC nodes (the dealer comes on top)")
    parser.add_argument("--metric", default="log_loss", choices=["log_loss", "accuracy"])
    parser.add_argument("--cap-ppm", type=int, default=250_000, help="per-model weight cap")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--freeze", action="store_true", help="measure the freeze (training) instead")
    parser.add_argument("--datasets", type=int, default=8, help="--freeze: training datasets")
    parser.add_argument("--choose", type=int, default=3, help="--freeze: datasets each model chooses")
    parser.add_argument("--rows-per-dataset", type=int, default=50, help="--freeze: rows of each dataset")
    parser.add_argument("--epochs", type=int, default=10, help="--freeze: full-batch epochs")
    parser.add_argument("--rank", type=int, default=-1, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rank >= 0:
        (freeze_party if args.freeze else party)(args)
        return 0
    if args.freeze:
        if not 1 <= args.choose <= args.datasets <= 64 or not 1 <= args.models <= 64:
            parser.error("--freeze needs 1 <= --choose <= --datasets <= 64 and --models in [1, 64]")
        return freeze_main(args)
    if not 1 <= args.models <= 64 or not 1 <= args.rows <= 1_000_000 or not 2 <= args.parties <= 8:
        parser.error("--models must be in [1, 64], --rows in [1, 1000000], --parties in [2, 8]")
    forwarded = ["--models", str(args.models), "--rows", str(args.rows), "--metric", args.metric,
                 "--cap-ppm", str(args.cap_ppm)]
    try:
        parties = run_parties(__file__, forwarded, args.parties)
    except RuntimeError as err:
        print(err, file=sys.stderr)
        return 1
    first = parties[0]
    report = {
        "models": args.models, "rows": args.rows, "parties": args.parties, "metric": args.metric,
        "cap_ppm": args.cap_ppm,
        "resolve_s": round(max(p["s"] for p in parties), 3),
        "rounds": max(p["rounds"] for p in parties),
        "bytes": sum(p["bytes"] for p in parties),
        "weights_ppm": first["weights_ppm"],
        "metamodel_metric_micro": first["metamodel_metric_micro"],
        "contributions_micro": first["contributions_micro"],
        "reference_contributions_micro": first["reference_contributions_micro"],
        "max_gap_micro": max(p["max_gap_micro"] for p in parties),
        "parties_agree": all(p["contributions_micro"] == first["contributions_micro"] for p in parties),
    }
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>30}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
