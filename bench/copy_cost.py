#!/usr/bin/env python3
"""Benchmark: copy detection (issue 13) next to the training of the same MPC job.

    python bench/copy_cost.py --datasets 8 --rows 250 [--plane gloo|grpc]

Shares a synthetic credit table (6 features; tests/mpcnode/worker/test_numerics.py)
over `--datasets` providers of `--rows` rows each and runs one real job (3 worker
processes + the TTP on loopback, the default logistic spec). Prints one JSON object:
the copy counts, comparisons (sampled rows x earlier rows), the rounds, bytes (party
0's counter) and seconds of copy detection, the same for training (standardise,
offline, steps, evaluate), and their ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.mpcnode.worker.cluster import run_job  # noqa: E402
from tests.mpcnode.worker.test_numerics import credit_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=8)
    parser.add_argument("--rows", type=int, default=250, help="rows per dataset")
    parser.add_argument("--plane", default="gloo", choices=("gloo", "grpc"))
    args = parser.parse_args()
    n, each = args.datasets, args.rows
    x, y = credit_table(n * each + 300, seed=3)
    with tempfile.TemporaryDirectory() as tmp:
        results = run_job(Path(tmp), x[: n * each], y[: n * each], x[n * each :], y[n * each :], [each] * n,
                          {"kind": "logistic"}, plane=args.plane, timeout=3600)
    result = results[0]
    comm, phases = result["comm"], result["phases_s"]
    training_s = phases["standardise"] + phases["offline"] + phases["steps"] + phases["evaluate"]
    print(json.dumps({
        "datasets": n, "rows_each": each, "plane": args.plane, "copies": result["copies"],
        "comparisons": comm["copy_comparisons"], "copy_rounds": comm["copy_rounds"],
        "copy_bytes": comm["copy_bytes"], "copy_s": phases["copies"],
        "training_rounds": comm["rounds"] - comm["copy_rounds"], "training_bytes": comm["bytes"] - comm["copy_bytes"],
        "training_s": round(training_s, 2), "copy_over_training_s": round(phases["copies"] / training_s, 3),
        "bytes_per_comparison": round(comm["copy_bytes"] / max(1, comm["copy_comparisons"]), 1),
    }))


if __name__ == "__main__":
    main()
