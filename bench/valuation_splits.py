#!/usr/bin/env python3
"""Evaluation: does a round pay the right providers, over random splits of four tables?

    python bench/valuation_splits.py --json [--splits 10] [--mpc-splits 2] [--providers 6]

For breast cancer, wine (class 0 vs rest), digits (0-4 vs 5-9) and a synthetic credit
table (3,000 rows, income in dollars), each random split (seed s) shuffles the table,
keeps a quarter for validation and splits the rest over `--providers` - 1 providers;
one of them (random) has 40 % of its labels flipped (the noisy one), and one more
dataset, registered last, copies another provider's rows (the copier; by split: an exact
copy, a copy with 1 % noise, a shuffled copy, a half copy). The round's valuation runs
exactly as a job does (`mpcnode/worker/run.py`): pooled standardisation, copy detection
with its seeded sample, copies excluded from every model, leave-one-out by one Newton
step from the converged model (`solver newton, loo newton_step, l2 0.01`), then the
coordinator's settlement (`coordinator.payouts.settle`: pool 5,000, stakes 1,000, slash
rate 50 %, epsilon 0.001). A split passes when the noisy provider ranks last and is
slashed and the copier is flagged and earns 0. `sign_agreement` is the share of
providers whose converged plaintext reference value (scikit-learn LogisticRegression,
same L2, retrained without each provider on the round without the copier) is beyond
EPSILON that get the same sign.

The first `--splits` splits run on the plaintext backend (the same code on float64); the
first `--mpc-splits` of them also as a real MPC job (3 worker processes + the TTP,
`tests/mpcnode/worker/cluster.py`), ~15-30 s each. Prints one JSON object per table:
`dataset`, `splits`, `passed` (and `passed_mpc`), `noisy_last_and_slashed`,
`copier_earns_nothing`, `honest_flagged`, `sign_agreement_min`, `sign_agreement_mean`
(and `_mpc`), `max_gap_mpc_vs_plain`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.valuation import L2, loo_reference, sign_agreement  # noqa: E402

TABLES = ("breast_cancer", "wine_0_vs_rest", "digits_low_vs_high", "credit")
SPEC = {"kind": "logistic", "solver": "newton", "l2": L2, "loo": "newton_step"}
COPY_KINDS = ("exact", "noisy", "shuffled", "half")
POOL, STAKE, SLASH_RATE_PPM, EPSILON_MICRO = 5_000, 1_000, 500_000, 1_000


def table(name: str) -> tuple[np.ndarray, np.ndarray]:
    from bench.datasets import load_table
    from tests.mpcnode.worker.test_numerics import credit_table

    x, y = credit_table(3000, seed=2) if name == "credit" else load_table(name)
    return x[:, x.std(0) > 0], y


def split(name: str, seed: int, providers: int):  # type: ignore[no-untyped-def]
    """(train x, y, validation x, y, rows per dataset, noisy index, copier index, copied index)."""
    x, y = table(name)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    cut = len(x) // 4
    vx, vy, tx, ty = x[:cut], y[:cut], x[cut:], y[cut:].copy()
    honest = providers - 1
    parts = np.array_split(np.arange(len(tx)), honest)
    noisy, copied = (int(i) for i in rng.choice(honest, 2, replace=False))
    flip = rng.choice(parts[noisy], int(0.4 * len(parts[noisy])), replace=False)
    ty[flip] = 1 - ty[flip]
    source_x, source_y = tx[parts[copied]], ty[parts[copied]]
    kind = COPY_KINDS[seed % len(COPY_KINDS)]
    if kind == "noisy":
        copy_x, copy_y = source_x + rng.normal(0, 0.01, source_x.shape) * tx.std(0), source_y
    elif kind == "shuffled":
        shuffle = rng.permutation(len(source_x))
        copy_x, copy_y = source_x[shuffle], source_y[shuffle]
    elif kind == "half":
        other = parts[(copied + 1) % honest]
        half = len(source_x) // 2
        copy_x = np.concatenate([source_x[:half], tx[other][: len(source_x) - half]])
        copy_y = np.concatenate([source_y[:half], ty[other][: len(source_x) - half]])
    else:
        copy_x, copy_y = source_x, source_y
    rows = [len(p) for p in parts] + [len(copy_x)]
    return (np.concatenate([tx, copy_x]), np.concatenate([ty, copy_y]), vx, vy, rows, noisy, honest, copied, kind)


def plain_job(x, y, vx, vy, rows) -> tuple[list[float], list[int]]:  # type: ignore[no-untyped-def]
    """What a job computes, on the plaintext backend: (n+1 metrics, excluded datasets)."""
    import torch

    from mpcnode.worker.backend import PlainBackend
    from mpcnode.worker.copy_detection import count_copies
    from mpcnode.worker.reference import job_scaled
    from mpcnode.worker.training import standardise_job, train_loo
    from mutualmind.vocabulary.copy_rule import copied_indices
    from mutualmind.vocabulary.model_spec import parse_model_spec

    spec = parse_model_spec(SPEC)
    tables = [torch.tensor(np.asarray(t, dtype=np.float64)).reshape(len(t), -1)
              for t in job_scaled(spec, x, y, vx, vy, rows)]
    backend = PlainBackend()
    prepared = standardise_job(backend, spec, *tables)
    copies = count_copies(backend, tables[0], rows, b"split")
    excluded = copied_indices(copies.counts, copies.samples)
    return train_loo(backend, spec, *tables, rows, excluded=excluded, prepared=prepared).metrics, excluded


def mpc_job(x, y, vx, vy, rows) -> tuple[list[float], list[int]]:  # type: ignore[no-untyped-def]
    from tests.mpcnode.worker.cluster import run_job

    with tempfile.TemporaryDirectory(prefix="valuation-split-") as tmp:
        result = run_job(Path(tmp), x, y, vx, vy, rows, SPEC, plane="gloo", timeout=900)[0]
    return list(result["metrics"]), list(result["excluded"])


def judge(metrics: list[float], excluded: list[int], noisy: int, copier: int, reference: list[float]) -> dict:
    """The settlement of these values and whether the split passes."""
    from coordinator.payouts import Participant, settle

    contributions = [m - metrics[0] for m in metrics[1:]]  # log-loss without i minus with all
    participants = [Participant(f"d{i}", f"p{i}", STAKE, int(round(c * 1e6)), is_copy=i in excluded)
                    for i, c in enumerate(contributions)]
    settlement = settle(participants, pool=POOL, sponsor="sponsor", slash_rate_ppm=SLASH_RATE_PPM,
                        epsilon_micro=EPSILON_MICRO)
    noisy_ok = int(np.argmin(contributions)) == noisy and f"d{noisy}" in settlement.slashes
    copier_ok = copier in excluded and settlement.payouts.get(f"p{copier}", 0) == 0
    honest = [i for i in range(len(contributions)) if i != copier]
    return {
        "passed": noisy_ok and copier_ok, "noisy_ok": noisy_ok, "copier_ok": copier_ok,
        "honest_flagged": sum(i in excluded for i in honest),
        "sign_agreement": sign_agreement([contributions[i] for i in honest], reference),
        "contributions": [round(c, 5) for c in contributions],
    }


def evaluate(name: str, args: argparse.Namespace) -> dict[str, object]:
    plain_runs, mpc_runs, gaps = [], [], []
    for seed in range(args.splits):
        x, y, vx, vy, rows, noisy, copier, copied, kind = split(name, seed, args.providers)
        without = sum(rows[:copier])
        reference = loo_reference(x[:without], y[:without], vx, vy, rows[:copier])
        metrics, excluded = plain_job(x, y, vx, vy, rows)
        plain_runs.append({"seed": seed, "copy": kind, **judge(metrics, excluded, noisy, copier, reference)})
        if seed < args.mpc_splits:
            mpc_metrics, mpc_excluded = mpc_job(x, y, vx, vy, rows)
            mpc_runs.append({"seed": seed, "copy": kind, **judge(mpc_metrics, mpc_excluded, noisy, copier, reference)})
            gaps.append(max(abs((a - mpc_metrics[0]) - (b - metrics[0]))
                            for a, b in zip(mpc_metrics[1:], metrics[1:], strict=True)))

    def summary(runs: list[dict], suffix: str) -> dict[str, object]:
        agreements = [r["sign_agreement"] for r in runs if r["sign_agreement"] is not None]
        return {
            f"passed{suffix}": sum(r["passed"] for r in runs),
            f"noisy_last_and_slashed{suffix}": sum(r["noisy_ok"] for r in runs),
            f"copier_earns_nothing{suffix}": sum(r["copier_ok"] for r in runs),
            f"honest_flagged{suffix}": sum(r["honest_flagged"] for r in runs),
            f"sign_agreement_min{suffix}": min(agreements) if agreements else None,
            f"sign_agreement_mean{suffix}": round(float(np.mean(agreements)), 3) if agreements else None,
        }

    out: dict[str, object] = {"dataset": name, "providers": args.providers, "splits": args.splits,
                              **summary(plain_runs, "")}
    if mpc_runs:
        out.update({"mpc_splits": len(mpc_runs), **summary(mpc_runs, "_mpc"),
                    "max_gap_mpc_vs_plain": round(max(gaps), 5), "mpc_runs": mpc_runs})
    out["failed_splits"] = [r for r in plain_runs if not r["passed"]]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--mpc-splits", type=int, default=2, help="of those, run this many as real MPC jobs")
    parser.add_argument("--providers", type=int, default=6, help="datasets in the round, the copier included (5-8)")
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 5 <= args.providers <= 8:
        parser.error("--providers must be in [5, 8]")
    results = []
    for name in args.tables.split(","):
        if name not in TABLES:
            parser.error(f"unknown table {name!r}; choose from {TABLES}")
        results.append(evaluate(name, args))
        if not args.json:
            print(results[-1], flush=True)
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
