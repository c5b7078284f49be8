"""MPC vs plaintext on the tables at the edges of the admitted range (issue 11, numerics).

    PYTHONPATH=$PWD python bench/numerics_edges.py

Real MPC (3 worker processes + TTP, tests/mpcnode/worker/cluster.py) with the default specs; prints
one line per table: MPC log-loss / accuracy against the plaintext run of the same
algorithm (and MSE in units of the target variance for linear regression).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_diabetes

from mpcnode.worker.reference import plaintext_batched
from mutualmind.vocabulary.model_spec import parse_model_spec
from tests.mpcnode.worker.cluster import run_job
from tests.mpcnode.worker.test_numerics import credit_table, edge_table


def measure(name: str, x: np.ndarray, y: np.ndarray, rows: list[int], raw: dict) -> dict:
    cut = sum(rows)
    spec = parse_model_spec(raw)
    plain = plaintext_batched(spec, x[:cut], y[:cut], x[cut:], y[cut:], rows)
    with tempfile.TemporaryDirectory() as root:
        mpc = run_job(Path(root), x[:cut], y[:cut], x[cut:], y[cut:], rows, raw)[0]
    return {"table": name, "rows": len(x), "spec": raw, "metric": spec.metric,
            "mpc": round(mpc["metrics"][0], 4), "plain": round(plain.metrics[0], 4),
            "mpc_accuracy": mpc["accuracy_full"], "plain_accuracy": plain.accuracy_full}


def main() -> None:
    x, y = credit_table(2000)
    print(json.dumps(measure("credit, income in dollars (2,000 x 6)", x, y, [600, 500, 500], {"kind": "logistic"})))
    x, y = edge_table(1000)
    x[:300, 1] /= 1000
    print(json.dumps(measure("1e-3, 1e6 and +-2^20 in one table (1,000 x 4)", x, y, [300, 300, 200], {"kind": "logistic"})))
    x, y = load_diabetes(return_X_y=True)
    order = np.random.default_rng(5).permutation(len(x))
    print(json.dumps(measure("diabetes, linear (442 x 10)", x[order], y[order].astype(float), [120, 120, 113], {"kind": "linear"})))


if __name__ == "__main__":
    main()
