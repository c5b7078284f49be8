"""The plaintext reference: the same algorithm in float torch, LOO by naive retraining.

Tests and `mutualmind admin round verify`-style checks compare the MPC result with this:
every model here is trained on its own (n+1 separate trainings, each seeing only its
rows), with the same pooled normalisation, initial weights, schedule and step sizes as
the batched MPC pass. Agreement therefore checks both the secret-shared arithmetic and
the batching trick. Never used on secret data: it needs the plaintext.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mpcnode.worker.backend import PlainBackend
from mpcnode.worker.banzhaf import CoalitionMasks
from mpcnode.worker.row_masks import RowMasks
from mpcnode.worker.training import LooResult, train_loo, train_masked
from mutualmind.vocabulary.model_spec import ModelSpec
from mutualmind.vocabulary.valuation import Coalitions, estimate


def _tensor(values: np.ndarray) -> torch.Tensor:
    """A float64 copy (training standardises its tables in place: never the caller's array)."""
    return torch.tensor(np.asarray(values, dtype=np.float64))


def plaintext_loo(
    spec: ModelSpec,
    train_x: np.ndarray,
    train_y: np.ndarray,
    validation_x: np.ndarray,
    validation_y: np.ndarray,
    provider_rows: Sequence[int],
) -> list[float]:
    """n+1 metric values from n+1 separate plaintext trainings (full, then without i)."""
    masks = RowMasks.leave_one_out(provider_rows)
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
) -> LooResult:
    """The batched LOO pass on plaintext (what the MPC computes, without the secrecy)."""
    return train_loo(
        PlainBackend(),
        spec,
        _tensor(train_x),
        _tensor(train_y).reshape(-1, 1),
        _tensor(validation_x),
        _tensor(validation_y).reshape(-1, 1),
        provider_rows,
    )


def plaintext_banzhaf(
    spec: ModelSpec,
    train_x: np.ndarray,
    train_y: np.ndarray,
    validation_x: np.ndarray,
    validation_y: np.ndarray,
    provider_rows: Sequence[int],
    coalitions: Coalitions,
) -> list[float]:
    """The 2n+1 Banzhaf values (full metric, mean_in - mean_out, standard error) from one
    separate plaintext training per coalition and the plaintext estimator."""
    masks = CoalitionMasks.of(provider_rows, coalitions)
    backend = PlainBackend()
    utilities = []
    for j in range(masks.models):
        args = (_tensor(train_x), _tensor(train_y).reshape(-1, 1), _tensor(validation_x), _tensor(validation_y).reshape(-1, 1))
        utilities.append(train_masked(backend, spec, *args, masks.only(j)).metrics[0])
    values, errors = estimate(utilities, coalitions)
    return [utilities[0], *values, *errors]
