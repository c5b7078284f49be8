#!/usr/bin/env python3
"""Benchmark: how MPC training cost grows with rows, parties and providers.

    python bench/scaling.py --json [--png docs/scaling.png] [--quick]

Three sweeps of `bench/train.py`'s measurement (real parties + the dealer's TTP on
loopback, logistic regression on breast cancer, 3 full-batch epochs):

  rows       1k -> 100k training+validation rows (the set resampled with 1 % jitter),
             3 parties, one model
  parties    3 -> 5 parties, 569 rows, one model
  providers  2 -> 32 providers, batched leave-one-out (n+1 models in one pass), 3 parties

Each row of the output: per-step online rounds (max over parties), bytes per step
(all parties), MPC seconds per step (slowest party), plaintext seconds per step (the
same algorithm in float torch), offline rounds. The PNG plots seconds per step and
bytes per step for each sweep. `--quick` runs a shorter sweep (for a smoke test).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.train import build_parser, measure  # noqa: E402

SWEEPS = {
    "rows": [("--rows", n) for n in (1_000, 3_000, 10_000, 30_000, 100_000)],
    "parties": [("--parties", n) for n in (3, 4, 5)],
    "providers": [("--providers", n) for n in (2, 4, 8, 16, 32)],
}
QUICK = {"rows": [("--rows", 1_000)], "parties": [("--parties", 3)], "providers": [("--providers", 2)]}
KEEP = ("rounds_per_step", "rounds_per_party", "offline_rounds", "bytes_per_step", "mpc_step_s",
        "plaintext_step_s", "mpc_over_plaintext", "job_s", "accuracy_mpc", "accuracy_reference", "train_rows", "models_trained")


def run_sweeps(quick: bool) -> list[dict]:
    rows = []
    for sweep, points in (QUICK if quick else SWEEPS).items():
        for flag, value in points:
            argv = ["--model", "logistic", "--dataset", "breast_cancer", "--epochs", "3", "--batch-size", "0", flag, str(value)]
            report = measure(build_parser().parse_args(argv))
            row = {"sweep": sweep, "value": value, **{k: report[k] for k in KEEP}}
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    """A markdown table of the sweeps."""
    lines = [
        "| sweep | value | train rows | models | rounds/step | offline rounds | bytes/step | MPC s/step | plaintext s/step | ratio | accuracy MPC / ref |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['sweep']} | {r['value']} | {r['train_rows']} | {r['models_trained']} | {r['rounds_per_step']:.0f} | "
            f"{r['offline_rounds']} | {r['bytes_per_step']:,} | {r['mpc_step_s']:.3f} | {r['plaintext_step_s']:.5f} | "
            f"{r['mpc_over_plaintext']:.0f} | {r['accuracy_mpc']:.3f} / {r['accuracy_reference']:.3f} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """Seconds and bytes per step against each sweep's variable (log-log for rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweeps = [s for s in SWEEPS if any(r["sweep"] == s for r in rows)]
    figure, axes = plt.subplots(2, len(sweeps), figsize=(4 * len(sweeps), 6.5), squeeze=False)
    for column, sweep in enumerate(sweeps):
        points = [r for r in rows if r["sweep"] == sweep]
        xs = [r["value"] for r in points]
        top, bottom = axes[0][column], axes[1][column]
        top.plot(xs, [r["mpc_step_s"] for r in points], "o-", label="MPC (slowest party)")
        top.plot(xs, [r["plaintext_step_s"] for r in points], "s--", label="plaintext torch")
        top.set_yscale("log")
        top.set_title(f"{sweep}: seconds per step")
        bottom.plot(xs, [r["bytes_per_step"] / 1e6 for r in points], "o-", color="tab:green")
        bottom.set_title(f"{sweep}: MB per step (all parties)")
        rounds = sorted({int(r["rounds_per_step"]) for r in points})
        bottom.set_xlabel(f"{sweep}  (online rounds/step: {', '.join(map(str, rounds))})")
        if sweep == "rows":
            for axis in (top, bottom):
                axis.set_xscale("log")
            bottom.set_yscale("log")
        top.legend(fontsize=8)
        top.grid(alpha=0.3)
        bottom.grid(alpha=0.3)
    figure.suptitle("MutualMind MPC training cost (logistic, 3 full-batch epochs, CrypTen + TTP, loopback)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON array")
    parser.add_argument("--png", default="", help="write the plot here (e.g. docs/scaling.png)")
    parser.add_argument("--quick", action="store_true", help="one point per sweep")
    args = parser.parse_args(argv)
    rows = run_sweeps(args.quick)
    if args.png:
        plot(rows, Path(args.png))
    print(json.dumps(rows) if args.json else table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
