"""Data Banzhaf in real MPC (3 parties + the dealer in one process) against plaintext retraining.

Exact Banzhaf (2^n coalitions as row masks of one batched pass, the estimator computed on
the shares) must equal the plaintext Banzhaf of one separate training per coalition
within the fixed-point tolerance; a spec with more datasets than the exact limit runs
Maximum Sample Reuse over the public coalitions of its seed, and its values and standard
errors match the plaintext estimator on the same coalitions.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer

from mpcnode.worker.backend import PlainBackend
from mpcnode.worker.banzhaf import train_banzhaf
from mpcnode.worker.reference import plaintext_banzhaf
from mutualmind.vocabulary.model_spec import parse_model_spec
from mutualmind.vocabulary.valuation import EXACT, EXACT_LIMIT, MSR, MSR_SAMPLES, msr_seed, plan
from tests.mpcnode.worker.cluster import run_job_in_process


def _data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))[:rows]
    return x[order], y[order].astype(float)


def _synthetic(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal features and logistic labels: well inside the fixed-point range."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 5))
    y = (x @ np.array([1.5, -1.0, 0.5, 0.0, 0.8]) + rng.normal(scale=0.5, size=rows) > 0).astype(float)
    return x, y


def _coalitions(raw: dict, providers: int):
    spec = parse_model_spec(raw)
    return spec, plan(providers, msr_seed("round-1", spec.to_json(), [f"p{i}" for i in range(providers)]))


def test_exact_banzhaf_in_mpc_equals_retraining_every_coalition(tmp_path: Path) -> None:
    x, y = _synthetic(180, 11)
    y[:30] = 1 - y[:30]  # provider 0 flips its labels: the lowest value
    rows, cut = [30, 30, 30, 30], 120
    raw = {"kind": "logistic", "epochs": 3, "valuation": "banzhaf"}
    spec, coalitions = _coalitions(raw, len(rows))
    assert coalitions.method == EXACT and coalitions.models == 16
    started = time.monotonic()
    results = run_job_in_process(tmp_path, x[:cut], y[:cut], x[cut:], y[cut:], rows, raw)
    elapsed = time.monotonic() - started
    revealed = results[0]["metrics"]
    assert all(r["metrics"] == revealed for r in results)
    assert results[0]["valuation"] == {"method": EXACT, "models": 16}
    assert len(revealed) == 2 * len(rows) + 1 and revealed[1 + len(rows):] == [0.0] * len(rows)
    reference = plaintext_banzhaf(spec, x[:cut], y[:cut], x[cut:], y[cut:], rows, coalitions)
    np.testing.assert_allclose(revealed, reference, atol=3e-3)
    # lower log-loss is better: the flipped provider has the largest mean_in - mean_out
    assert int(np.argmax(revealed[1:5])) == 0
    print(f"exact n=4: {elapsed:.1f} s, max |MPC - plaintext| "
          f"{np.abs(np.array(revealed) - np.array(reference)).max():.2e}")


def test_banzhaf_beyond_the_exact_limit_samples_coalitions_in_mpc(tmp_path: Path) -> None:
    providers = EXACT_LIMIT + 1
    x, y = _synthetic(providers * 6 + 24, 12)
    rows, cut = [6] * providers, providers * 6
    raw = {"kind": "logistic", "epochs": 1, "valuation": "banzhaf"}
    spec, coalitions = _coalitions(raw, providers)
    assert coalitions.method == MSR and coalitions.models == MSR_SAMPLES + 1
    started = time.monotonic()
    results = run_job_in_process(tmp_path, x[:cut], y[:cut], x[cut:], y[cut:], rows, raw)
    elapsed = time.monotonic() - started
    revealed = results[0]["metrics"]
    assert all(r["metrics"] == revealed for r in results)
    assert results[0]["valuation"] == {"method": MSR, "models": MSR_SAMPLES + 1}
    reference = plaintext_banzhaf(spec, x[:cut], y[:cut], x[cut:], y[cut:], rows, coalitions)
    values, errors = np.array(revealed[1 : 1 + providers]), np.array(revealed[1 + providers :])
    np.testing.assert_allclose(values, reference[1 : 1 + providers], atol=1e-3)
    np.testing.assert_allclose(errors, reference[1 + providers :], rtol=0.02, atol=2e-4)
    assert (errors > 0).all()
    print(f"msr n={providers}: {elapsed:.1f} s, values max diff "
          f"{np.abs(values - np.array(reference[1:1 + providers])).max():.2e}, errors "
          f"{errors.round(4).tolist()} vs {np.round(reference[1 + providers:], 4).tolist()}")


def test_msr_with_a_fixed_seed_agrees_with_exact_within_its_errors() -> None:
    """On 5 datasets MSR (256 sampled coalitions, forced) and exact Banzhaf of the same
    training agree within 3 standard errors, and the errors are not vacuous."""
    x, y = _data(300, 13)
    y[:40] = 1 - y[:40]
    rows, cut = [40] * 5, 200
    spec = parse_model_spec({"kind": "logistic", "epochs": 5, "valuation": "banzhaf"})

    def run(method: str) -> list[float]:
        coalitions = plan(5, msr_seed("round-1", spec.to_json(), list("abcde")), method=method)
        args = tuple(torch.tensor(a, dtype=torch.float64) for a in (x[:cut], y[:cut, None], x[cut:], y[cut:, None]))
        return train_banzhaf(PlainBackend(), spec, *args, rows, coalitions).metrics

    exact, sampled = run(EXACT), run(MSR)
    values, errors = np.array(sampled[1:6]), np.array(sampled[6:])
    gaps = np.abs(values - np.array(exact[1:6])) / errors
    assert (gaps < 3).all(), (values, exact[1:6], errors)
    assert (errors < 0.5 * np.abs(np.array(exact[1:6])).max()).all()
    print(f"msr vs exact n=5: gaps in standard errors {np.round(gaps, 2).tolist()}, errors {np.round(errors, 4).tolist()}")


def test_exact_banzhaf_by_newton_steps_in_mpc_equals_its_plaintext_run(tmp_path: Path) -> None:
    """`loo: newton_step`: one newton training, then every coalition's last step from its
    iterate (`newton.last_step`), in real MPC; equal to the same algorithm on floats."""
    from mpcnode.worker.reference import job_scaled

    x, y = _synthetic(180, 11)
    y[:30] = 1 - y[:30]
    rows, cut = [30, 30, 30, 30], 120
    raw = {"kind": "logistic", "solver": "newton", "l2": 0.01, "loo": "newton_step", "valuation": "banzhaf"}
    spec, coalitions = _coalitions(raw, len(rows))
    results = run_job_in_process(tmp_path, x[:cut], y[:cut], x[cut:], y[cut:], rows, raw)
    revealed = results[0]["metrics"]
    assert all(r["metrics"] == revealed for r in results)
    assert results[0]["valuation"] == {"method": EXACT, "models": 16}
    tables = job_scaled(spec, x[:cut], y[:cut], x[cut:], y[cut:], rows)
    tensors = [torch.tensor(np.asarray(a, dtype=np.float64)).reshape(len(a), -1) for a in tables]
    plain = train_banzhaf(PlainBackend(), spec, *tensors, rows, coalitions).metrics
    np.testing.assert_allclose(revealed, plain, atol=5e-3)
    assert int(np.argmax(revealed[1:5])) == 0
