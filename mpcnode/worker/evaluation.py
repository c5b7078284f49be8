"""Metrics of the m = n+1 models on the validation rows: the only values ever revealed.

Every metric is computed for all models at once ([m, rows, k] logits) and summed over
rows on the shares; then exactly m numbers are revealed (plus, for classifiers valued by
log-loss, the full model's accuracy, one more number). Log-loss uses the logits
directly (softplus / log-softmax) rather than log(sigmoid), which keeps CrypTen's log in
the range where it is accurate.
"""

from __future__ import annotations

from mpcnode.worker.backend import Backend, Tensor
from mpcnode.worker.layers import forward, targets
from mutualmind.vocabulary.model_spec import ModelSpec


def evaluate(
    backend: Backend,
    spec: ModelSpec,
    params: dict[str, Tensor],
    validation_x: Tensor,
    validation_y: Tensor,
) -> tuple[list[float], float | None]:
    """(n+1 values of spec.metric, the full model's accuracy or None for regression)."""
    rows = int(validation_x.size(0))
    logits, _, _ = forward(backend, spec, params, validation_x)
    target = targets(backend, spec, validation_y)
    if spec.task == "regression":
        diff = logits - target
        values = backend.reveal(diff.square().sum(1).div(rows)).reshape(-1)
        return [float(v) for v in values], None
    if spec.metric == "accuracy":
        values = backend.reveal(_correct(backend, spec, logits, target)).reshape(-1) / rows
        return [float(v) for v in values], float(values[0])
    losses = backend.reveal(_log_loss_sums(backend, spec, logits, target).div(rows)).reshape(-1)
    # counts may be integer-encoded (comparison results): divide after revealing
    correct_full = backend.reveal(_correct(backend, spec, logits[0:1], target)).reshape(-1)
    accuracy_full = float(correct_full[0]) / rows
    return [float(v) for v in losses], accuracy_full


def _log_loss_sums(backend: Backend, spec: ModelSpec, logits: Tensor, target: Tensor) -> Tensor:
    """Sum over rows of the log-loss of each model: [m, 1]."""
    if spec.task == "binary":
        # -(y log s(z) + (1-y) log(1-s(z))) = softplus(z) - y z
        per_row = backend.softplus(logits) - logits * target
        return per_row.sum(1)
    per_row = -(backend.log_softmax(logits, -1) * target).sum(-1, keepdim=True)
    return per_row.sum(1)


def _correct(backend: Backend, spec: ModelSpec, logits: Tensor, target: Tensor) -> Tensor:
    """Number of correctly classified rows of each model: [m, 1]."""
    if spec.task == "binary":
        predicted = backend.positive(logits)
        agree = predicted * target + (1 - predicted) * (1 - target)
        return agree.sum(1)
    chosen = backend.argmax_one_hot(logits, -1)
    return (chosen * target).sum(-1, keepdim=True).sum(1)

