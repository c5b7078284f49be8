"""The plaintext reference: the same algorithm in float torch, LOO by naive retraining.

Tests and `mutualmind admin round verify`-style checks compare the MPC result with this:
every model here is trained on its own (n+1 separate trainings, each seeing only its
rows), with the same pooled normalisation, initial weights, schedule and step sizes as
the batched MPC pass. Agreement therefore checks both the secret-shared arithmetic and
the batching trick. Never used on secret data: it needs the plaintext.

It also sees the values the MPC sees: every column divided by the job's power of two
(`job_scaled`), as the providers' sharing and the worker's alignment do. Standardisation
is scale-invariant except for one rule, the constant-column floor (`Backend.inverse_std`:
a pooled sum of squares below 4^-6 gives scale 0), and that floor is in the units of the
scaled values. On raw values it dropped a varying column the MPC kept: breast cancer's
"fractal dimension error" (about 0.003 +- 0.002) has a raw sum of squares of 2.0e-4 < 4^-6
over 72 rows, but 0.20 once scaled by 2^5, and the full model's log-loss differed by 0.05.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mpcnode.worker.backend import PlainBackend
from mpcnode.worker.banzhaf import CoalitionMasks
from mpcnode.worker.row_masks import RowMasks
from mpcnode.worker.training import LooResult, train_loo, train_masked
from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.column_scale import column_exponent
from mutualmind.vocabulary.model_spec import ModelSpec
from mutualmind.vocabulary.valuation import Coalitions, estimate


def _tensor(values: np.ndarray) -> torch.Tensor:
    """A float64 copy (training standardises its tables in place: never the caller's array)."""
    return torch.tensor(np.asarray(values, dtype=np.float64))


def _exponents(values: np.ndarray) -> np.ndarray:
    """One dataset's power-of-two exponent per column (`column_scale.column_exponent`)."""
    return np.array([column_exponent(float(m)) for m in np.abs(values).max(axis=0)], dtype=np.int64)


def job_scaled(
    spec: ModelSpec,
    train_x: np.ndarray,
    train_y: np.ndarray,
    validation_x: np.ndarray,
    validation_y: np.ndarray,
    provider_rows: Sequence[int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The tables as the job trains on them: each column divided by the job's exponent.

    Each provider's dataset and the validation set get their own exponents (what
    `provider share` signs), and the job takes the largest per column (`inputs.py`);
    a dataset whose column is all zeros has exponent 0, so this is not the exponent of
    the pooled maximum. Class labels are never scaled; a regression target is. Exact in
    float64 (a power of two).
    """
    train_x, validation_x = np.asarray(train_x, dtype=np.float64), np.asarray(validation_x, dtype=np.float64)
    train_y = np.asarray(train_y, dtype=np.float64).reshape(-1, 1)
    validation_y = np.asarray(validation_y, dtype=np.float64).reshape(-1, 1)
    if not provider_rows or min(provider_rows) < 1:
        raise InvalidInput(f"every provider needs at least one row, got {list(provider_rows)}")
    if len(train_x) != sum(provider_rows):
        raise InvalidInput(f"training data has {len(train_x)} rows but the providers hold {sum(provider_rows)}")
    bounds = np.cumsum([0, *provider_rows])
    tables = [np.concatenate([train_x, train_y], axis=1)[start:stop] for start, stop in zip(bounds[:-1], bounds[1:])]
    tables.append(np.concatenate([validation_x, validation_y], axis=1))
    # an empty validation set has no bound
    job = np.max([_exponents(table) for table in tables if len(table)], axis=0)
    if spec.task != "regression":
        job[-1] = 0
    features, label = -job[:-1], -job[-1]
    return (
        np.ldexp(train_x, features[None, :]),
        np.ldexp(train_y, label).reshape(-1),
        np.ldexp(validation_x, features[None, :]),
        np.ldexp(validation_y, label).reshape(-1),
    )


def plaintext_loo(
    spec: ModelSpec,
    train_x: np.ndarray,
    train_y: np.ndarray,
    validation_x: np.ndarray,
    validation_y: np.ndarray,
    provider_rows: Sequence[int],
    excluded: Sequence[int] = (),
) -> list[float]:
    """n+1 metric values from n+1 separate plaintext trainings (full, then without i);
    no model sees the `excluded` providers' rows (0-based: the copies)."""
    masks = RowMasks.leave_one_out(provider_rows, excluded)
    train_x, train_y, validation_x, validation_y = job_scaled(spec, train_x, train_y, validation_x, validation_y, provider_rows)
    backend = PlainBackend()
    metrics = []
    for j in range(masks.models):
        # fresh tensors each time: training standardises its inputs in place
        args = (_tensor(train_x), _tensor(train_y).reshape(-1, 1), _tensor(validation_x), _tensor(validation_y).reshape(-1, 1))
        result = train_masked(backend, spec, *args, masks.only(j))
        metrics.append(result.metrics[0])
    return metrics


def plaintext_batched(
    spec: ModelSpec,
    train_x: np.ndarray,
    train_y: np.ndarray,
    validation_x: np.ndarray,
    validation_y: np.ndarray,
    provider_rows: Sequence[int],
    excluded: Sequence[int] = (),
) -> LooResult:
    """The batched LOO pass on plaintext (what the MPC computes, without the secrecy).

    The weights are in the units of the job-scaled values (`job_scaled`)."""
    train_x, train_y, validation_x, validation_y = job_scaled(spec, train_x, train_y, validation_x, validation_y, provider_rows)
    return train_loo(
        PlainBackend(),
        spec,
        _tensor(train_x),
        _tensor(train_y).reshape(-1, 1),
        _tensor(validation_x),
        _tensor(validation_y).reshape(-1, 1),
        provider_rows,
        excluded=excluded,
    )


def plaintext_banzhaf(
    spec: ModelSpec,
    train_x: np.ndarray,
    train_y: np.ndarray,
    validation_x: np.ndarray,
    validation_y: np.ndarray,
    provider_rows: Sequence[int],
    coalitions: Coalitions,
    excluded: Sequence[int] = (),
) -> list[float]:
    """The 2n+1 Banzhaf values (full metric, mean_in - mean_out, standard error) from one
    separate plaintext training per coalition and the plaintext estimator."""
    masks = CoalitionMasks.of(provider_rows, coalitions, excluded)
    train_x, train_y, validation_x, validation_y = job_scaled(spec, train_x, train_y, validation_x, validation_y, provider_rows)
    backend = PlainBackend()
    utilities = []
    for j in range(masks.models):
        args = (_tensor(train_x), _tensor(train_y).reshape(-1, 1), _tensor(validation_x), _tensor(validation_y).reshape(-1, 1))
        utilities.append(train_masked(backend, spec, *args, masks.only(j)).metrics[0])
    values, errors = estimate(utilities, coalitions)
    return [utilities[0], *values, *errors]


def converged_loo(train_x: np.ndarray, train_y: np.ndarray, validation_x: np.ndarray, validation_y: np.ndarray,
                  provider_rows: Sequence[int], l2: float) -> list[float]:
    """The converged plaintext reference of a binary logistic round's leave-one-out values:
    scikit-learn's LogisticRegression with the same L2 (C = 1 / (l2 x the model's rows)),
    retrained without each provider on the pooled standardisation; each value is the
    validation log-loss without provider i minus with everyone (positive: i helped)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)  # the pooled standardisation the job uses
    train, validation = scaler.transform(train_x), scaler.transform(validation_x)
    starts = np.concatenate([[0], np.cumsum(provider_rows)])
    losses = []
    for j in range(len(provider_rows) + 1):
        keep = np.ones(len(train_x), dtype=bool)
        if j:
            keep[starts[j - 1] : starts[j]] = False
        model = LogisticRegression(C=1 / (l2 * keep.sum()), tol=1e-10, max_iter=10_000).fit(train[keep], train_y[keep])
        p = np.clip(model.predict_proba(validation)[:, 1], 1e-15, 1 - 1e-15)
        losses.append(float(-(validation_y * np.log(p) + (1 - validation_y) * np.log(1 - p)).mean()))
    return [loss - losses[0] for loss in losses[1:]]
