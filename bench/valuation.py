#!/usr/bin/env python3
"""Benchmark: what each valuation costs next to one training, at 8, 50 and 200 providers.

    python bench/valuation.py --json [--providers 8,50,200] [--rows 1600]

For each provider count n, starts 3 MPC parties and the dealer's TTP as local processes
(gloo on loopback, CrypTen's TTP: a round's data plane) holding shares of the synthetic
credit table (6 features, income in dollars; `--rows` rows split evenly over the n
providers, provider 0 with 40 % of its labels flipped). Every party runs, each phase
from fresh shares and with the newton solver (converged models, l2 0.01):

  single       one training of one model (the unit of every ratio)
  loo_retrain  the full and n leave-one-out models retrained in one batched pass
  newton_step  the full model, then each leave-one-out model by one Newton step
  banzhaf      Data Banzhaf: every coalition for n <= 8 (2^n models), else 256 by MSR
  banzhaf_step the same coalitions, each by one Newton step from the full model's
               training (`loo: newton_step`)
  copies       copy detection alone (after the pooled standardisation it needs)

Prints a JSON list, one object per (n, method): `providers`, `method`, `train_rows`,
`models`, `valuation_over_single` (its time / one training's, slowest party),
`cpu_over_single` (the same with each party's CPU seconds: steadier on a loaded machine),
`rounds` (party maximum), `bytes` (summed over parties), `rounds_over_single`,
`bytes_over_single`, `seconds`, and `sign_agreement`: the share of providers whose
converged plaintext reference value is beyond EPSILON that get the same sign in MPC
(LOO: scikit-learn LogisticRegression, same L2, retrained without each provider on the
pooled standardisation; Banzhaf: every coalition retrained to its optimum in plaintext,
`reference.plaintext_banzhaf`), None when no provider is beyond it. Targets (issue 13):
LOO or Banzhaf at n = 8 within 1.5x of one training, n = 200 within 2x; copy detection
for 8 datasets x 1,000 rows within 1x (`--providers 8 --rows 8000 --only copies`).
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

from bench.mpc_launch import join, provider_scaled, public_seed_share, run_parties  # noqa: E402
from mutualmind.vocabulary.fixed_point import FRAC_BITS  # noqa: E402

METHODS = ("single", "loo_retrain", "newton_step", "banzhaf", "banzhaf_step", "copies")
L2 = 0.01
EPSILON = 0.002  # log-loss: the smallest reference value whose sign is held to
VALIDATION_ROWS = 400


def dataset(rows: int, providers: int):  # type: ignore[no-untyped-def]
    """The credit table: `rows` training rows (provider 0's labels 40 % flipped), validation."""
    import numpy as np

    from tests.mpcnode.worker.test_numerics import credit_table

    x, y = credit_table(rows + VALIDATION_ROWS, seed=11)
    tx, ty, vx, vy = x[:rows], y[:rows].copy(), x[rows:], y[rows:]
    first = np.array_split(np.arange(rows), providers)[0]
    flipped = np.random.default_rng(7).choice(first, int(0.4 * len(first)), replace=False)
    ty[flipped] = 1 - ty[flipped]
    return tx, ty, vx, vy, [len(p) for p in np.array_split(np.arange(rows), providers)]


def spec_for(method: str):  # type: ignore[no-untyped-def]
    from mutualmind.vocabulary.model_spec import parse_model_spec

    raw: dict[str, object] = {"kind": "logistic", "solver": "newton", "l2": L2}
    if method in ("newton_step", "banzhaf_step"):
        raw["loo"] = "newton_step"
    if method in ("banzhaf", "banzhaf_step"):
        raw["valuation"] = "banzhaf"
    return parse_model_spec(raw)


def party(args: argparse.Namespace) -> None:
    """One MPC party: every phase in turn; writes its figures as JSON."""
    crypten = join(args.rank, args.parties, args.port)
    if crypten is None:
        return
    import crypten.communicator as comm
    from crypten.mpc import MPCTensor

    from mpcnode.worker.backend import CrypTenBackend
    from mpcnode.worker.banzhaf import train_banzhaf
    from mpcnode.worker.copy_detection import count_copies
    from mpcnode.worker.row_masks import RowMasks
    from mpcnode.worker.training import standardise_job, train_loo, train_masked
    from mutualmind.vocabulary.valuation import msr_seed, plan

    tx, ty, vx, vy, rows = dataset(args.rows, args.providers)
    tx, ty, vx, vy = provider_scaled(tx, ty, vx, vy, False)

    def inputs():  # type: ignore[no-untyped-def]  # fresh shares: training standardises in place
        return tuple(MPCTensor.from_shares(public_seed_share(t, args.parties, args.rank), precision=FRAC_BITS)
                     for t in (tx, ty.reshape(-1, 1), vx, vy.reshape(-1, 1)))

    backend = CrypTenBackend()
    figures: dict[str, object] = {"train_rows": len(tx)}
    train_masked(backend, spec_for("single"), *inputs(), RowMasks.everyone(len(tx)))  # warm-up
    for method in args.only.split(","):
        spec = spec_for(method)
        tables = inputs()
        comm.get().barrier()
        comm.get().reset_communication_stats()
        started, cpu = time.perf_counter(), time.process_time()
        models, metrics = 1, []
        if method == "single":
            metrics = train_masked(backend, spec, *tables, RowMasks.everyone(len(tx))).metrics
        elif method in ("loo_retrain", "newton_step"):
            metrics, models = train_loo(backend, spec, *tables, rows).metrics, len(rows) + 1
        elif method in ("banzhaf", "banzhaf_step"):
            seed = msr_seed("bench", spec_for("banzhaf").to_json(), [str(i) for i in range(len(rows))])
            coalitions = plan(len(rows), seed)  # both methods: the same coalitions
            metrics, models = train_banzhaf(backend, spec, *tables, rows, coalitions).metrics, coalitions.models
        else:
            standardise_job(backend, spec, *tables)
            comm.get().reset_communication_stats()
            started, cpu = time.perf_counter(), time.process_time()
            counts = count_copies(backend, tables[0], rows, b"bench")
            metrics, models = [float(c) for c in counts.counts], 0
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        stats = comm.get().get_communication_stats()
        figures[method] = {"s": elapsed, "cpu_s": cpu, "rounds": int(stats["rounds"]), "bytes": int(stats["bytes"]),
                           "models": models, "metrics": metrics}
    Path(args.out).write_text(json.dumps(figures))
    crypten.uninit()


def loo_reference(tx, ty, vx, vy, rows) -> list[float]:  # type: ignore[no-untyped-def]
    """Converged LOO values (log-loss without i minus with all): scikit-learn, same L2."""
    from mpcnode.worker.reference import converged_loo

    return converged_loo(tx, ty, vx, vy, rows, L2)


def sign_agreement(got: list[float], reference: list[float]) -> float | None:
    beyond = [(g, r) for g, r in zip(got, reference, strict=True) if abs(r) > EPSILON]
    if not beyond:
        return None
    return round(sum((g > 0) == (r > 0) for g, r in beyond) / len(beyond), 3)


def values(method: str, metrics: list[float], providers: int) -> list[float]:
    """Each provider's value in the LOO sign convention (log-loss: higher = more harmful removed)."""
    if method in ("banzhaf", "banzhaf_step"):  # mean log-loss with i minus without: lower is better
        return [-m for m in metrics[1 : providers + 1]]
    return [m - metrics[0] for m in metrics[1:]]


def report(n: int, parties: list[dict], args: argparse.Namespace) -> list[dict[str, object]]:
    from mpcnode.worker.reference import plaintext_banzhaf
    from mutualmind.vocabulary.valuation import msr_seed, plan

    tx, ty, vx, vy, rows = dataset(args.rows, n)
    reference_loo = loo_reference(tx, ty, vx, vy, rows)
    single = max(p["single"]["s"] for p in parties)
    cpu_single = max(p["single"]["cpu_s"] for p in parties)
    rounds_single = max(p["single"]["rounds"] for p in parties)
    bytes_single = sum(p["single"]["bytes"] for p in parties)
    out = []
    banzhaf_reference: list[float] = []
    for method in args.only.split(","):
        seconds, cpu = max(p[method]["s"] for p in parties), max(p[method]["cpu_s"] for p in parties)
        rounds, sent = max(p[method]["rounds"] for p in parties), sum(p[method]["bytes"] for p in parties)
        agreement = None
        metrics = parties[0][method]["metrics"]
        if method in ("loo_retrain", "newton_step"):
            agreement = sign_agreement(values(method, metrics, n), reference_loo)
        elif method in ("banzhaf", "banzhaf_step"):
            spec = spec_for("banzhaf")  # the reference retrains every coalition (the same MSR sample)
            coalitions = plan(n, msr_seed("bench", spec.to_json(), [str(i) for i in range(n)]))
            banzhaf_reference = banzhaf_reference or plaintext_banzhaf(spec, tx, ty, vx, vy, rows, coalitions)
            agreement = sign_agreement(values(method, metrics, n), values(method, banzhaf_reference, n))
        out.append({
            "providers": n, "method": method, "train_rows": parties[0]["train_rows"],
            "models": parties[0][method]["models"], "seconds": round(seconds, 3),
            "valuation_over_single": round(seconds / single, 3), "cpu_over_single": round(cpu / cpu_single, 3), "rounds": rounds, "bytes": sent,
            "rounds_over_single": round(rounds / rounds_single, 3), "bytes_over_single": round(sent / bytes_single, 3),
            "sign_agreement": agreement,
        })
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--providers", default="8,50,200", help="comma-separated provider counts")
    parser.add_argument("--rows", type=int, default=1600, help="training rows, split over the providers")
    parser.add_argument("--only", default=",".join(METHODS), help=f"methods, comma-separated, from {METHODS}")
    parser.add_argument("--parties", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON list")
    parser.add_argument("--rank", type=int, default=-1, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    methods = args.only.split(",")
    if any(m not in METHODS for m in methods):
        parser.error(f"--only takes methods from {METHODS}")
    if "single" not in methods:
        args.only = ",".join(["single", *methods])
    if args.rank >= 0:
        args.providers = int(args.providers)
        party(args)
        return 0
    counts = [int(n) for n in args.providers.split(",")]
    if any(not 2 <= n <= args.rows for n in counts):
        parser.error("every provider count must be in [2, --rows]")
    rows: list[dict[str, object]] = []
    for n in counts:
        forwarded = ["--providers", str(n), "--rows", str(args.rows), "--only", args.only]
        try:
            parties = run_parties(__file__, forwarded, args.parties, timeout=3600.0)
        except RuntimeError as err:
            print(err, file=sys.stderr)
            return 1
        rows += report(n, parties, args)
        if not args.json:
            for row in rows[-len(args.only.split(",")):]:
                print(row, flush=True)
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
