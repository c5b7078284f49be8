"""Leave-one-out training in one batched pass, for any `Backend`.

With n providers there are m = n+1 models: model 0 sees every row, model j (1-based)
sees every row except provider j's. They are trained together: every parameter carries a
leading model dimension m, and a public row mask M [m, rows, 1] (M[j, r] = 0 iff row r
belongs to provider j) zeroes the rows a model must not see before the gradient sums
over rows. Each communication round therefore carries all m models, and the number of
rounds per step is the same as for one training - which is the whole point.

Gradients are written out by hand (no autograd, no loss evaluation during training): a
step needs only P - Y, never the loss, so nothing is revealed until the final metrics.
The schedule (full batch or mini-batches in a public seeded order, fixed learning rate,
same initial weights for every model) is public and identical for the plaintext
reference, which runs this same code on float tensors.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from mpcnode.worker.backend import Backend, Tensor
from mpcnode.worker.evaluation import evaluate
from mpcnode.worker.layers import forward, initial_parameters, logit_gradient, targets
from mpcnode.worker.normalisation import Standardisation, standardise
from mpcnode.worker.row_masks import ModelMasks, RowMasks
from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.model_spec import ModelSpec

NORMALISE_MEAN = "normalise_mean"
NORMALISE_SCALE = "normalise_scale"
LABEL_MEAN = "label_mean"
LABEL_SCALE = "label_scale"
# public powers of two the providers divided columns by (column_scale); folded at collection
NORMALISE_EXPONENT = "normalise_exponent"
LABEL_EXPONENT = "label_exponent"

# (backend, spec, trained params [m, ...], validation x, validation y) -> (revealed values,
# the full model's accuracy or None)
Evaluator = Callable[[Backend, ModelSpec, dict[str, Tensor], Tensor, Tensor], tuple[list[float], float | None]]


@dataclass
class LooResult:
    """What a training run reveals (metrics) and keeps secret (the full model's weights)."""

    metrics: list[float]  # n+1 values of spec.metric: full model, then all-but-provider-i
    accuracy_full: float | None  # the full model's accuracy (classifiers only)
    weights: dict[str, Tensor]  # the full model's parameters and normalisation, secret-shared
    steps: int
    offline: dict[str, float] | None = None  # the dealer prefetch's figures (MPC only)
    # wall seconds of each phase: standardise, offline (rehearsal + dealer), steps, evaluate
    phases: dict[str, float] = field(default_factory=dict)


def batch_schedule(spec: ModelSpec, rows: int) -> list[torch.Tensor | None]:
    """Row indices of every step (None = all rows), from a public generator.

    Rows are shuffled so that a provider's rows (stored contiguously) fall in any batch.
    """
    if spec.batch_size == 0 or spec.batch_size >= rows:
        return [None] * spec.epochs
    generator = torch.Generator().manual_seed(spec.seed + 1)
    steps: list[torch.Tensor | None] = []
    for _ in range(spec.epochs):
        order = torch.randperm(rows, generator=generator)
        steps.extend(order[start : start + spec.batch_size] for start in range(0, rows, spec.batch_size))
    return steps


def train_loo(
    backend: Backend,
    spec: ModelSpec,
    train_x: Tensor,
    train_y: Tensor,
    validation_x: Tensor,
    validation_y: Tensor,
    provider_rows: Sequence[int],
    on_step: Callable[[int, int], None] | None = None,
    *,
    excluded: Sequence[int] = (),
    prepared: Prepared | None = None,
) -> LooResult:
    """Train the full and every leave-one-out model together; reveal only the metrics.

    `train_x` [rows, features] holds the providers' rows in provider order
    (`provider_rows[i]` rows each), `train_y` [rows, 1] the labels; likewise for the
    validation split. `on_step(done, total)` reports progress (no secret in it).
    `excluded` (0-based providers: the copies) are seen by no model; `prepared`: the
    tables are standardised already (`standardise_job`).
    """
    rows = int(train_x.size(0))
    if rows != sum(provider_rows):
        raise InvalidInput(f"training data has {rows} rows but the providers hold {sum(provider_rows)}")
    masks = RowMasks.leave_one_out(provider_rows, excluded)
    if spec.solver == "newton":
        from mpcnode.worker.newton import train_newton

        return train_newton(backend, spec, train_x, train_y, validation_x, validation_y, masks, provider_rows, on_step,
                            excluded=excluded, prepared=prepared)
    return train_masked(backend, spec, train_x, train_y, validation_x, validation_y, masks, on_step, prepared=prepared)


def train_masked(
    backend: Backend,
    spec: ModelSpec,
    train_x: Tensor,
    train_y: Tensor,
    validation_x: Tensor,
    validation_y: Tensor,
    masks: ModelMasks,
    on_step: Callable[[int, int], None] | None = None,
    evaluator: Evaluator = evaluate,
    *,
    prepared: Prepared | None = None,
) -> LooResult:
    """Train one model per mask (public: which rows each model sees) on pooled-standardised
    features, with the public schedule of `spec`; evaluate each on the validation rows.

    The tables are standardised in place (unless `prepared` says they are already): the
    caller's `train_x` and `validation_x` (and the labels of a regression) hold
    standardised values afterwards. `evaluator` turns the trained models into the
    revealed values (default: each model's metric; Data Banzhaf reveals only its
    per-dataset aggregates, `mpcnode.worker.banzhaf`).
    """
    rows = int(train_x.size(0))
    if masks.rows != rows:
        raise InvalidInput(f"the row masks cover {masks.rows} rows but the training table has {rows}")
    if spec.solver == "newton":
        from mpcnode.worker.newton import train_newton

        return train_newton(backend, spec, train_x, train_y, validation_x, validation_y, masks, None, on_step, evaluator,
                            prepared=prepared)
    models = masks.models
    clock = PhaseClock()
    if prepared is None:
        prepared = standardise_job(backend, spec, train_x, train_y, validation_x, validation_y)
    normalised, labels = prepared.features, prepared.labels
    x, vx = train_x, validation_x
    y = targets(backend, spec, train_y)
    clock.mark("standardise")
    params = {name: backend.public(value) for name, value in initial_parameters(spec, int(x.size(1)), models).items()}
    schedule = batch_schedule(spec, rows)
    decay = 1.0 - spec.lr * spec.l2

    def step(params: dict[str, Tensor], xb: Tensor, yb: Tensor, mb: torch.Tensor) -> dict[str, Tensor]:
        counts = mb.sum(1, keepdim=True).to(torch.float64)  # [m, 1, 1], public
        step_size = torch.where(counts > 0, spec.lr / counts.clamp_min(1.0), torch.zeros_like(counts))
        logits, hidden, gate = forward(backend, spec, params, xb)
        grad = masked_gradient(backend, spec, logits, yb, mb)
        return _apply_step(backend, spec, params, xb, grad, hidden, gate, step_size, decay)

    shapes = [rows if index is None else int(index.numel()) for index in schedule]
    offline, before_step = backend.prefetch(_rehearsals(backend, shapes, x, y, masks, params, step), shapes)
    clock.mark("offline")
    for done, index in enumerate(schedule):
        before_step(done)
        xb, yb = (x, y) if index is None else (x[index], y[index])
        mb = masks.batch(index)
        params = step(params, xb, yb, mb)
        if on_step is not None:
            on_step(done + 1, len(schedule))
    clock.mark("steps")
    metrics, accuracy = evaluator(backend, spec, params, vx, validation_y)
    clock.mark("evaluate")
    return LooResult(
        metrics=metrics, accuracy_full=accuracy, weights=released_weights(params, normalised, labels), steps=len(schedule), offline=offline,
        phases=clock.phases,
    )


def masked_gradient(backend: Backend, spec: ModelSpec, logits: Tensor, target: Tensor, mask: torch.Tensor) -> Tensor:
    """d(loss)/d(logits) [m, rows, k] on each model's rows (its 0/1 `mask`), 0 elsewhere.

    A binary model's sigmoid is a comparison, the bytes of a training pass. When every
    model keeps at most 3/4 of the rows (a tournament's models see their few datasets of
    many), it runs only on each model's own rows: gathered into [m, most kept, k] and put
    back, both local moves of shares, so the rounds stay those of one training."""
    if mask.dim() != 3 or spec.task != "binary":
        return backend.mask_rows(logit_gradient(backend, spec, logits, target), mask)
    models, rows = int(mask.size(0)), int(mask.size(1))
    flat = mask.reshape(models, rows)
    keep = int(flat.sum(1).max()) if models else rows
    if keep * 4 > rows * 3 or int(logits.size(0)) != models or not bool(((flat == 0) | (flat == 1)).all()):
        return backend.mask_rows(logit_gradient(backend, spec, logits, target), mask)
    gather = torch.full((models, keep), rows, dtype=torch.long)     # `rows`: a padding 0
    put_back = torch.full((models, rows), keep, dtype=torch.long)   # `keep`: a row the model does not see
    for j in range(models):
        where = flat[j].nonzero().flatten()
        gather[j, :where.numel()] = where
        put_back[j, where] = torch.arange(where.numel())
    compact = logit_gradient(backend, spec, backend.take_rows(logits, gather), backend.take_rows(target, gather))
    return backend.take_rows(compact, put_back)


@dataclass
class Prepared:
    """How a job's tables were standardised (in place): released with the full model."""

    features: Standardisation
    labels: Standardisation | None  # a regression's target; None for classifiers


def standardise_job(backend: Backend, spec: ModelSpec, train_x: Tensor, train_y: Tensor,
                    validation_x: Tensor, validation_y: Tensor) -> Prepared:
    """Standardise the tables in place with the statistics pooled over every training row.

    Every row, a copy's too: copy detection compares rows on this scale before anyone
    knows which datasets are copies, and the released model's normalisation stays pooled
    over all the round's datasets (README, trust model). A regression's target is
    standardised too: raw targets in the hundreds would put gradients near 2^52 before
    truncation, where CrypTen's truncation starts to fail; the MSE is then in units of
    the pooled target variance.
    """
    features = standardise(backend, train_x, validation_x)
    labels = standardise(backend, train_y, validation_y) if spec.task == "regression" else None
    return Prepared(features, labels)


class PhaseClock:
    """Wall seconds between marks: where a job's time goes (setup versus steps)."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._last = time.monotonic()

    def mark(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase] = round(now - self._last, 4)
        self._last = now


RATIO_PRECISION = 1 << 16
# rows whose products one truncation sums: a gradient over more rows is summed per block
GRADIENT_BLOCK_ROWS = 1 << 13


def released_weights(params: dict[str, Tensor], normalised: Standardisation,
                     labels: Standardisation | None) -> dict[str, Tensor]:
    """The full model (row 0 of each batched parameter) with the standardisation it was
    trained under, as the sponsor collects it: the same for every solver."""
    weights = {name: value[0] for name, value in params.items()}
    weights[NORMALISE_MEAN] = normalised.mean
    weights[NORMALISE_SCALE] = normalised.scale
    if labels is not None:
        weights[LABEL_MEAN] = labels.mean
        weights[LABEL_SCALE] = labels.scale
    return weights


def sums_over_rows(backend: Backend, lefts: list[Tensor], rights: list[Tensor]) -> list[Tensor]:
    """left^T @ right summed over the rows, for each pair, in blocks of bounded size.

    In MPC a product of two fixed-point values is truncated once, after the sum over rows,
    and CrypTen's truncation fails with probability |value| / 2^64: a full-batch gradient
    over a million rows would put that value near 2^52. Blocks of at most
    GRADIENT_BLOCK_ROWS rows are truncated separately (one batched matmul, the same number
    of rounds) and their results, at 16 fractional bits, are added exactly. The rows of
    a batch are padded with public zeros to whole blocks, which add nothing.

    `lefts[i]` is [rows, p] or [m, rows, p], `rights[i]` [m, rows, k]; the results are
    [m, p, k]. Pairs are computed one after the other (the MLP's two depend on each
    other only through `rights`, which are given).
    """
    results = []
    for left, right in zip(lefts, rights, strict=True):
        rows = int(left.size(-2))
        if rows <= GRADIENT_BLOCK_ROWS:
            results.append(left.transpose(-2, -1).matmul(right))
            continue
        blocks = -(-rows // GRADIENT_BLOCK_ROWS)
        padding = blocks * GRADIENT_BLOCK_ROWS - rows
        left, right = _pad_rows(backend, left, padding), _pad_rows(backend, right, padding)
        lead_left, lead_right = tuple(left.size())[:-2], tuple(right.size())[:-2]
        left = left.reshape(*lead_left, blocks, GRADIENT_BLOCK_ROWS, int(left.size(-1))).transpose(-2, -1)
        right = right.reshape(*lead_right, blocks, GRADIENT_BLOCK_ROWS, int(right.size(-1)))
        results.append(left.matmul(right).sum(-3))
    return results


def _pad_rows(backend: Backend, value: Tensor, rows: int) -> Tensor:
    if rows == 0:
        return value
    shape = (*tuple(value.size())[:-2], rows, int(value.size(-1)))
    return backend.cat([value, backend.public(torch.zeros(shape, dtype=torch.float64))], dim=-2)


def integer_ratio(factors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Integers (M, D) with M / D = factor to ~1 / 2^16 relative, for factors >= 0.

    M = ceil(2^16 f) keeps M * value near value * lr * 2^16 whatever the row count, so
    the value truncated by D stays far below 2^64 (see CrypTenBackend's truncation
    note); D = round(M / f). A zero factor (a model with no rows in a batch) is 0 / 1.
    """
    if bool((factors < 0).any()):
        raise InvalidInput("step factors must not be negative")
    numerators = torch.ceil(factors * RATIO_PRECISION).to(torch.long)
    positive = numerators > 0
    safe = torch.where(positive, factors, torch.ones_like(factors))
    denominators = torch.where(positive, torch.round(numerators / safe).to(torch.long), torch.ones_like(numerators))
    return numerators, denominators


def _rehearsals(
    backend: Backend,
    shapes: list[int],
    x: Tensor,
    y: Tensor,
    masks: ModelMasks,
    params: dict[str, Tensor],
    step: Callable[[dict[str, Tensor], Tensor, Tensor, torch.Tensor], dict[str, Tensor]],
) -> dict[int, Callable[[], object]]:
    """One rehearsal per batch size of the schedule, on public zeros of that shape.

    A step's dealer requests depend only on shapes (MPC is oblivious), so a step on
    zeros asks for exactly the material a real step of the same size will use. The
    zeros are public: the rehearsal touches no data and reveals nothing.
    """
    zero_params = {name: backend.public(torch.zeros(tuple(value.size()), dtype=torch.float64)) for name, value in params.items()}
    features, width = int(x.size(1)), int(y.size(1))
    rehearsals: dict[int, Callable[[], object]] = {}
    for size in sorted(set(shapes)):

        def rehearse(size: int = size) -> object:
            zeros_x = backend.public(torch.zeros(size, features, dtype=torch.float64))
            zeros_y = backend.public(torch.zeros(size, width, dtype=torch.float64))
            return step(zero_params, zeros_x, zeros_y, masks.batch(torch.arange(size)))

        rehearsals[size] = rehearse
    return rehearsals


def _apply_step(
    backend: Backend,
    spec: ModelSpec,
    params: dict[str, Tensor],
    x: Tensor,
    grad: Tensor,
    hidden: Tensor | None,
    gate: Tensor | None,
    step: torch.Tensor,
    decay: float,
) -> dict[str, Tensor]:
    """One gradient step for all m models (gradients summed over rows, then scaled).

    Every public scaling of the step (step size per model, weight decay) is applied in
    ONE scaling of a concatenation: in MPC each public fixed-point multiplication
    costs a truncation round, and truncations of independent values batch together.
    The factors are exact integer ratios (`integer_ratio`), not 16-bit fixed point:
    lr / rows for 80,000 rows is 0.8 / 2^16 and would round to 1 / 2^16.
    """
    grads: dict[str, Tensor] = {}
    if spec.kind == "mlp":
        if hidden is None or gate is None:
            raise ValueError("an mlp step needs the hidden activations and the ReLU gate")
        back = grad.matmul(params["weight"].transpose(1, 2)) * gate
        grads["weight"], grads["hidden_weight"] = sums_over_rows(backend, [hidden, x], [grad, back])
        grads["bias"] = grad.sum(1, keepdim=True)
        grads["hidden_bias"] = back.sum(1, keepdim=True)
    else:
        (grads["weight"],) = sums_over_rows(backend, [x], [grad])
        grads["bias"] = grad.sum(1, keepdim=True)
    models = int(step.size(0))
    names = sorted(params)
    decayed = [name for name in names if decay != 1.0 and "weight" in name]
    parts = [grads[name].reshape(models, -1) for name in names] + [params[name].reshape(models, -1) for name in decayed]
    factors = [step.reshape(models, 1).expand(models, int(part.size(1))) for part in parts[: len(names)]]
    factors += [torch.full((models, int(part.size(1))), decay, dtype=torch.float64) for part in parts[len(names) :]]
    numerators, denominators = integer_ratio(torch.cat(factors, dim=1))
    scaled = backend.scale_by_ratio(backend.cat(parts, dim=1), numerators, denominators)
    updated: dict[str, Tensor] = {}
    offset = 0
    pieces: dict[str, Tensor] = {}
    for name in names + [f"decayed:{name}" for name in decayed]:
        source = grads[name] if not name.startswith("decayed:") else params[name.split(":", 1)[1]]
        size = int(source.reshape(models, -1).size(1))
        pieces[name] = scaled[:, offset : offset + size].reshape(tuple(source.size()))
        offset += size
    for name in names:
        kept = pieces.get(f"decayed:{name}", params[name])
        updated[name] = kept - pieces[name]
    return updated
