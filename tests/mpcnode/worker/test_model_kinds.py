"""Every model kind in real MPC (3 parties + the dealer in one process) against the plaintext reference.

Softmax regression on iris (3 classes), linear regression on diabetes (standardised
target, MSE), and the MLP on breast cancer: the n+1 revealed metrics must match the
plaintext retraining within the fixed-point tolerance, and the weights reconstructed
from the three nodes' shares must predict like the MPC model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from mpcnode.worker.reference import plaintext_loo
from mutualmind.vocabulary.model_file import predict, read_share_file, reconstruct
from mutualmind.vocabulary.model_spec import parse_model_spec
from tests.mpcnode.worker.cluster import run_job_in_process

CASES = {
    # name: (loader, model, tolerance on each metric)
    "softmax-iris": (load_iris, {"kind": "softmax", "classes": 3, "epochs": 3}, 0.01),
    "linear-diabetes": (load_diabetes, {"kind": "linear", "epochs": 3, "lr": 0.2}, 0.01),
    "mlp-breast-cancer": (load_breast_cancer, {"kind": "mlp", "hidden": 4, "epochs": 3, "lr": 0.5}, 0.01),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_model_kind_in_mpc_matches_plaintext(case: str, tmp_path: Path) -> None:
    loader, raw, tolerance = CASES[case]
    x, y = loader(return_X_y=True)
    order = np.random.default_rng(5).permutation(len(x))
    x, y = x[order], y[order].astype(float)
    cut = int(0.8 * len(x))
    rows = [len(p) for p in np.array_split(np.arange(cut), 3)]
    spec = parse_model_spec(raw)
    results = run_job_in_process(tmp_path, x[:cut], y[:cut], x[cut:], y[cut:], rows, raw)
    metrics = results[0]["metrics"]
    assert all(r["metrics"] == metrics for r in results)
    reference = plaintext_loo(spec, x[:cut], y[:cut], x[cut:], y[cut:], rows)
    np.testing.assert_allclose(metrics, reference, atol=tolerance * max(1.0, abs(reference[0])))

    shares = [read_share_file(tmp_path / f"out{r}" / "weights.bin", res["weights"]["tensors"]) for r, res in enumerate(results)]
    model = reconstruct(shares)
    predicted = predict(model, spec, x[cut:])
    if spec.task == "regression":
        # the model's MSE on raw targets, in units of the pooled target variance
        variance = y[:cut].var()
        assert abs(float(((predicted - y[cut:]) ** 2).mean()) / variance - metrics[0]) < 0.05
    else:
        assert abs(float((predicted == y[cut:]).mean()) - results[0]["accuracy_full"]) <= 0.03
