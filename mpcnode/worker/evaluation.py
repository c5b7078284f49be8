"""Metrics of the m = n+1 models on the validation rows: the only values ever revealed.

Every metric is computed for all models at once ([m, rows, k] logits) and summed over
rows on the shares, a chunk of rows at a time (so memory does not grow with the
validation set: at 200,000 rows and 51 models the logits alone would be 80 MB per copy,
and CrypTen's exp and log make many copies); then exactly m numbers are revealed (plus, for classifiers valued by
log-loss, the full model's accuracy, one more number). Log-loss uses the logits
directly (softplus / log-softmax) rather than log(sigmoid), which keeps CrypTen's log in
the range where it is accurate.
"""

from __future__ import annotations

from mpcnode.worker.backend import Backend, Tensor
from mpcnode.worker.layers import forward, targets
from mpcnode.worker.normalisation import row_chunks
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
    totals = metric_sums(backend, spec, params, validation_x, validation_y)
    if spec.task == "regression":
        values = backend.reveal(totals[0].div(rows)).reshape(-1)
        return [float(v) for v in values], None
    if spec.metric == "accuracy":
        values = backend.reveal(totals[0]).reshape(-1) / rows
        return [float(v) for v in values], float(values[0])
    losses = backend.reveal(totals[0].div(rows)).reshape(-1)
    # counts may be integer-encoded (comparison results): divide after revealing
    correct_full = backend.reveal(totals[1]).reshape(-1)
    accuracy_full = float(correct_full[0]) / rows
    return [float(v) for v in losses], accuracy_full


def metric_sums(
    backend: Backend,
    spec: ModelSpec,
    params: dict[str, Tensor],
    validation_x: Tensor,
    validation_y: Tensor,
) -> list[Tensor]:
    """The secret sums over the validation rows the metrics need, [m, 1] each: the
    metric's sum (log-loss, squared error, or correct rows - integer-encoded in MPC), then
    for log-loss the full model's correct rows. Nothing is revealed here."""
    rows = int(validation_x.size(0))
    models = int(params["bias"].size(0))
    # a chunk bounds both the rows of features and the m models' activations on them
    # (few chunks: each costs the metric's rounds again - log-loss's exp and log ~100)
    width = max(int(validation_x.size(1)), models * (spec.outputs + (spec.hidden if spec.kind == "mlp" else 0)))
    totals: list[Tensor] | None = None
    for start, stop in row_chunks(rows, width):
        sums = _chunk_sums(backend, spec, params, validation_x[start:stop], validation_y[start:stop])
        totals = sums if totals is None else [a + b for a, b in zip(totals, sums, strict=True)]
    assert totals is not None  # a validation set has rows (checked when the round opens)
    return totals


def _chunk_sums(backend: Backend, spec: ModelSpec, params: dict[str, Tensor], x: Tensor, y: Tensor) -> list[Tensor]:
    """The sums over these rows that the metrics need: [m, 1] each (see `evaluate`)."""
    logits, _, _ = forward(backend, spec, params, x)
    target = targets(backend, spec, y)
    if spec.task == "regression":
        return [(logits - target).square().sum(1)]
    if spec.metric == "accuracy":
        return [_correct(backend, spec, logits, target)]
    return [_log_loss_sums(backend, spec, logits, target), _correct(backend, spec, logits[0:1], target)]


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

