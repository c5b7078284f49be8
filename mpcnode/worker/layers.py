"""The models' layers: initial weights, forward pass and the gradient at the logits.

Every parameter has a leading model dimension m (the full model and the n
leave-one-out models, see `training.py`); inputs [rows, features] broadcast against it,
so one matmul serves all m models. Shared by training and evaluation.
"""

from __future__ import annotations

import math

import torch

from mpcnode.worker.backend import Backend, Tensor
from mutualmind.vocabulary.model_spec import ModelSpec


def initial_parameters(spec: ModelSpec, features: int, models: int) -> dict[str, torch.Tensor]:
    """Public initial weights, identical for all m models (so LOO differences are data's).

    Linear models start at zero; the MLP draws its first layer from a generator seeded
    by `spec.seed` (He initialisation) so every node and the reference agree.
    """
    k = spec.outputs
    if spec.kind != "mlp":
        return {
            "weight": torch.zeros(models, features, k, dtype=torch.float64),
            "bias": torch.zeros(models, 1, k, dtype=torch.float64),
        }
    generator = torch.Generator().manual_seed(spec.seed)
    hidden = spec.hidden
    w1 = torch.randn(features, hidden, generator=generator, dtype=torch.float64) * math.sqrt(2.0 / features)
    w2 = torch.randn(hidden, k, generator=generator, dtype=torch.float64) * math.sqrt(1.0 / hidden)
    return {
        "hidden_weight": w1.expand(models, features, hidden).clone(),
        "hidden_bias": torch.zeros(models, 1, hidden, dtype=torch.float64),
        "weight": w2.expand(models, hidden, k).clone(),
        "bias": torch.zeros(models, 1, k, dtype=torch.float64),
    }


def targets(backend: Backend, spec: ModelSpec, labels: Tensor) -> Tensor:
    """Labels [r, 1] as the training target: one-hot rows for multiclass, else as is."""
    if spec.task == "multiclass":
        return backend.one_hot(labels, spec.classes)
    return labels


def forward(backend: Backend, spec: ModelSpec, params: dict[str, Tensor], x: Tensor) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Logits [m, rows, k]; for the MLP also the hidden activations and relu gate."""
    if spec.kind != "mlp":
        return x.matmul(params["weight"]) + params["bias"], None, None
    pre = x.matmul(params["hidden_weight"]) + params["hidden_bias"]
    hidden, gate = backend.relu_with_gate(pre)
    return hidden.matmul(params["weight"]) + params["bias"], hidden, gate


def logit_gradient(backend: Backend, spec: ModelSpec, logits: Tensor, target: Tensor) -> Tensor:
    """d(loss)/d(logits) per row: P - Y (log-loss with sigmoid or softmax, or MSE/2)."""
    if spec.task == "binary":
        return backend.sigmoid(logits) - target
    if spec.task == "multiclass":
        return backend.softmax(logits, -1) - target
    return logits - target


