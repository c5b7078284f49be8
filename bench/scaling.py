#!/usr/bin/env python3
"""Benchmark: how MPC training cost grows with rows, providers and parties.

    python bench/scaling.py [--json] [--png docs/scaling.png] [--quick]

Sweeps of `bench/train.py`'s measurement (real parties + the dealer's TTP on loopback,
logistic regression on breast cancer resampled with 1 % jitter to the row count):

  rows       10k -> 1M rows (80 % training), 8 providers (9 models, batched
             leave-one-out), batches of 4,096, 1 epoch: the issue 18 configuration
  providers  50 providers (51 models) at 1M rows, same schedule
  parties    3 -> 5 parties, 569 rows, one model, 3 full-batch epochs

Each row of the output: the phases of the job (standardise, offline, steps, evaluate;
slowest party), setup = everything but the steps, time per training row, peak resident
memory of the largest party process, per-step online rounds and bytes, and accuracy of
the MPC model against the plaintext run of the same algorithm. Seconds are noisy (2
shared cores): compare ratios within one run. The PNG plots time per row, setup versus
steps, and peak memory against rows.
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

ROWS_RUN = ["--providers", "8", "--epochs", "1", "--batch-size", "4096"]
SWEEPS: dict[str, list[list[str]]] = {
    "rows": [["--rows", str(n), *ROWS_RUN] for n in (10_000, 30_000, 100_000, 300_000, 1_000_000)],
    "providers": [["--rows", "1000000", "--providers", "50", "--epochs", "1", "--batch-size", "4096"]],
    "parties": [["--parties", str(n), "--epochs", "3", "--batch-size", "0"] for n in (3, 4, 5)],
}
QUICK = {"rows": [["--rows", "10000", *ROWS_RUN]], "parties": [["--parties", "3", "--epochs", "2", "--batch-size", "0"]]}
KEEP = ("rounds_per_step", "offline_rounds", "bytes_per_step", "mpc_step_s", "plaintext_step_s", "job_s",
        "phases_s", "peak_rss_mb", "accuracy_mpc", "accuracy_reference", "train_rows", "models_trained", "steps")


def run_sweeps(quick: bool) -> list[dict]:
    rows = []
    for sweep, points in (QUICK if quick else SWEEPS).items():
        for extra in points:
            argv = ["--model", "logistic", "--dataset", "breast_cancer", *extra]
            report = measure(build_parser().parse_args(argv))
            row = {"sweep": sweep, "argv": " ".join(extra), **{k: report[k] for k in KEEP}}
            phases = report["phases_s"]
            row["steps_s"] = phases["steps"]
            row["setup_s"] = round(report["job_s"] - phases["steps"], 3)
            row["us_per_row"] = round(1e6 * report["job_s"] / report["train_rows"], 2)
            row["peak_rss_mb_max"] = max(report["peak_rss_mb"])
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    """A markdown table of the sweeps."""
    lines = [
        "| sweep | train rows | models | steps | job s | steps s | setup s (standardise / offline / evaluate) "
        "| µs per row | peak MB per party | rounds/step | MB/step | accuracy MPC / plaintext |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        p = r["phases_s"]
        lines.append(
            f"| {r['sweep']} | {r['train_rows']:,} | {r['models_trained']} | {r['steps']} | {r['job_s']:.1f} | "
            f"{r['steps_s']:.1f} | {r['setup_s']:.1f} ({p['standardise']:.1f} / {p['offline']:.1f} / {p['evaluate']:.1f}) | "
            f"{r['us_per_row']:.1f} | {r['peak_rss_mb_max']:,} | {r['rounds_per_step']:.1f} | "
            f"{r['bytes_per_step'] / 1e6:.1f} | {r['accuracy_mpc']:.4f} / {r['accuracy_reference']:.4f} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """Time per row, setup versus steps, and peak memory against training rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [r for r in rows if r["sweep"] == "rows"]
    xs = [r["train_rows"] for r in points]
    figure, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    axes[0].plot(xs, [r["us_per_row"] for r in points], "o-")
    axes[0].set_title("job time per training row (µs)")
    axes[0].set_ylim(bottom=0)
    axes[1].plot(xs, [r["steps_s"] for r in points], "o-", label="training steps")
    axes[1].plot(xs, [r["setup_s"] for r in points], "s--", label="setup (standardise, offline, evaluate)")
    axes[1].set_title("seconds per job")
    axes[1].set_yscale("log")
    axes[1].legend(fontsize=8)
    axes[2].plot(xs, [r["peak_rss_mb_max"] for r in points], "o-", color="tab:red")
    axes[2].axhline(2048, color="grey", linestyle=":", label="2 GB target")
    axes[2].set_title("peak memory of a party process (MB)")
    axes[2].set_ylim(bottom=0)
    axes[2].legend(fontsize=8)
    for axis in axes:
        axis.set_xscale("log")
        axis.set_xlabel("training rows (8 providers, 9 models, batches of 4,096, 1 epoch)")
        axis.grid(alpha=0.3)
    figure.suptitle("MutualMind MPC training in rows (logistic, 30 features, 3 parties + TTP, loopback, 2 cores)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON array")
    parser.add_argument("--png", default="", help="write the plot here (e.g. docs/scaling.png)")
    parser.add_argument("--quick", action="store_true", help="one small point per sweep")
    args = parser.parse_args(argv)
    rows = run_sweeps(args.quick)
    if args.png:
        plot(rows, Path(args.png))
    print(json.dumps(rows) if args.json else table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
