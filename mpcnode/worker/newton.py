"""The newton solver: converged logistic and linear models, for any `Backend`.

SGD with a fixed schedule (training.py) stops wherever its epochs run out, so a
leave-one-out difference mixes the provider's effect with training noise. Here every
model is trained to its optimum of

    mean over its rows of loss(x~ theta, y) + l2 / 2 |w|^2      (x~ = [x, 1], theta = [w; b])

by `spec.epochs` Newton (IRLS) steps theta <- theta - H^-1 g from zero, with
g = X~^T (p - y) / c + l2 P theta, H = X~^T diag(W) X~ / c + l2 P, c the model's row count,
P = diag(1, ..., 1, 0) (the bias is not penalised, as in scikit-learn), and p, W the
sigmoid and p (1 - p) (logistic) or the logits and 1 (linear, MSE / 2). The same code
runs on float torch (`PlainBackend`, the reference) and on CrypTen shares.

The d x d solve, in secret shares: A = H / l2 = S / (c l2) + P has eigenvalues in
[~1, B / l2] with the public bound B = w_max ((rows / c) d + 1) + l2 d (standardised
features: the squared norms of all rows sum to d x rows; w_max = 1/4 or 1 bounds W), so
Newton-Schulz X <- X (2I - A X) from X_0 = (l2 / B) I converges (||I - A X_0|| < 1) and
after K = ceil(log2(11 B / l2)) iterations the error (1 - l2/B)^(2^K) is below 2^-16
(coupled with Y = A X, one multiplication round per iteration, see `solve`).
The products are truncated with |result| <= 1 (A X has spectral radius <= 1, X <= 1):
a failure probability of ~2^-32 per element whatever the data. Then
delta = X (g / l2) and theta <- theta - delta. An inverse that is not fully converged
(a bias direction with curvature below l2) is still positive definite and smaller than
H^-1: a damped Newton direction, never a wrong one.

Leave-one-out, two ways (`spec.loo`):
* "retrain": the m = n+1 models of the row masks in one batched pass, one Hessian per
  model ([m, d+1, d+1]), as the SGD path batches its gradients. Cost grows with n.
* "newton_step": train the full model only, for epochs - 1 steps; then every model
  takes its last step from that shared iterate theta: theta - H_-j^-1 g_-j, where g_-j
  and H_-j are the gradient and Hessian of the objective without j's rows at theta (the
  full model's is the same step with nothing removed). One pass over the rows computes
  every provider's gradient and Hessian sums (rows grouped in per-provider blocks, one
  batched matmul), so the rows are touched as often as for one training whatever n is;
  only the n small (d+1)^2 solves, batched with the full model's, and the evaluation
  grow with n. Data Banzhaf's coalitions are taken the same way (`last_step`'s members).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from mpcnode.worker.backend import Backend, Tensor
from mpcnode.worker.evaluation import evaluate
from mpcnode.worker.row_masks import ModelMasks, RowMasks
from mpcnode.worker.training import (
    GRADIENT_BLOCK_ROWS,
    Evaluator,
    LooResult,
    PhaseClock,
    Prepared,
    integer_ratio,
    released_weights,
    standardise_job,
    sums_over_rows,
)
from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.model_spec import ModelSpec

# ln(2^16): Newton-Schulz's error (1 - l2/B)^(2^K) <= exp(-2^K l2 / B) must reach 2^-16
_NS_TARGET = 11.1


def weight_bound(spec: ModelSpec) -> float:
    """The largest IRLS weight W: p (1 - p) <= 1/4 for logistic, 1 for least squares."""
    return 0.25 if spec.kind == "logistic" else 1.0


def curvature_bound(spec: ModelSpec, features: int, rows: int, counts: torch.Tensor) -> torch.Tensor:
    """Public upper bounds B [m] on the largest eigenvalue of each model's Hessian."""
    share = rows / counts.to(torch.float64).clamp_min(1.0)
    return weight_bound(spec) * (share * features + 1.0) + spec.l2 * features


def schulz_iterations(spec: ModelSpec, bounds: torch.Tensor) -> int:
    """Newton-Schulz iterations that bring every model's inverse to 2^-16 (public)."""
    return max(1, math.ceil(math.log2(_NS_TARGET * float(bounds.max()) / spec.l2)))


def penalty_mask(features: int) -> torch.Tensor:
    """P = diag(1, ..., 1, 0) over [w; b]: the bias is not penalised."""
    diagonal = torch.ones(features + 1, dtype=torch.float64)
    diagonal[-1] = 0.0
    return torch.diag(diagonal)


def solve(
    backend: Backend, scaled_hessian: Tensor, scaled_gradient: Tensor, bounds: torch.Tensor, iterations: int
) -> Tensor:
    """delta = A^-1 u for each model, A [m, k, k] = H / l2, u [m, k, 1] = g / l2.

    Newton-Schulz from the public start X_0 = I / (B / l2), in its coupled form: with
    Y = A X, X' = X (2I - Y) and Y' = A X' = Y (2I - Y) (X is a polynomial in A, so they
    commute), so both come from ONE batched matmul [X; Y] @ (2I - Y): one multiplication
    round per iteration instead of two. The first iteration is a public scaling
    (X_1 = 2 c I - c^2 A, c public per model), Y_1 = A X_1 one matmul. Y's rounding is
    not corrected against A, so X carries a relative error of ~K x 2^-16: an inexact
    inverse, which Newton's outer steps absorb (the optimum is where g = 0).
    """
    models, size = int(scaled_hessian.size(0)), int(scaled_hessian.size(-1))
    start = (1.0 / bounds).reshape(models, 1, 1)  # l2 / B per model, times l2 / l2
    eye = torch.eye(size, dtype=torch.float64).expand(models, size, size)
    numerators, denominators = integer_ratio((start * start).expand(models, size, size).contiguous())
    inverse = backend.public(2 * start * eye) - backend.scale_by_ratio(scaled_hessian, numerators, denominators)
    product = scaled_hessian.matmul(inverse)
    twice = backend.public(2 * eye)
    for _ in range(iterations - 1):
        both = backend.cat([inverse, product], dim=0).matmul(backend.cat([twice - product] * 2, dim=0))
        inverse, product = both[:models], both[models:]
    return inverse.matmul(scaled_gradient)


def _scale_rows_of(backend: Backend, parts: list[Tensor], factors: torch.Tensor) -> list[Tensor]:
    """Each part [m, a, b] times factors[m], in ONE exact-ratio scaling (one truncation)."""
    models = int(factors.numel())
    flat = [part.reshape(models, -1) for part in parts]
    widths = [int(part.size(1)) for part in flat]
    numerators, denominators = integer_ratio(factors.reshape(models, 1).expand(models, sum(widths)).contiguous())
    scaled = backend.scale_by_ratio(backend.cat(flat, dim=1), numerators, denominators)
    out, offset = [], 0
    for part, width in zip(parts, widths, strict=True):
        out.append(scaled[:, offset : offset + width].reshape(tuple(part.size())))
        offset += width
    return out


def _link(backend: Backend, spec: ModelSpec, logits: Tensor) -> tuple[Tensor, Tensor | None]:
    """(prediction p, IRLS weight W or None for least squares, where W = 1)."""
    if spec.kind == "logistic":
        p = backend.logistic(logits)
        return p, p - p * p
    return logits, None


class _Problem:
    """The standardised tables with a column of ones, and the public quantities."""

    def __init__(self, backend: Backend, spec: ModelSpec, x: Tensor, y: Tensor) -> None:
        self.backend, self.spec = backend, spec
        self.rows, self.features = int(x.size(0)), int(x.size(1))
        self.xt = backend.cat([x, backend.public(torch.ones(self.rows, 1, dtype=torch.float64))], dim=1)
        self.y = y
        self.penalty = penalty_mask(self.features)

    def zeros(self) -> tuple[Tensor, Tensor]:
        """Public zero tables of the same shapes: a rehearsal's input (dealer_prefetch)."""
        public = self.backend.public
        return (public(torch.zeros(self.rows, self.features + 1, dtype=torch.float64)),
                public(torch.zeros(self.rows, 1, dtype=torch.float64)))


def _sums(
    backend: Backend, spec: ModelSpec, xt: Tensor, y: Tensor, theta: Tensor, masks: torch.Tensor, constant: Tensor | None
) -> tuple[Tensor, Tensor]:
    """(X~^T diag(mask W) X~ [m, k, k], X~^T mask (p - y) [m, k, 1]) at theta [m, k, 1]."""
    logits = xt.matmul(theta)  # [m, rows, 1]
    p, weight = _link(backend, spec, logits)
    residual = backend.mask_rows(p - y, masks)
    if constant is not None or weight is None:
        (gradient,) = sums_over_rows(backend, [xt], [residual])
        return constant, gradient
    weighted = backend.mask_rows(weight, masks) * xt  # [m, rows, k]
    (both,) = sums_over_rows(backend, [xt], [backend.cat([weighted, residual], dim=2)])
    return both[:, :, :-1], both[:, :, -1:]


def newton_iterations(
    problem: _Problem, masks: ModelMasks, on_step: Callable[[int, int], None] | None, extra: dict[int, Callable[[], object]],
    steps: int | None = None, prefetched: int | None = None,
) -> tuple[Tensor, Callable[[int], object], dict[str, float] | None]:
    """Train every masked model by `steps` (default `spec.epochs`) Newton steps:
    (theta [m, k, 1], the dealer hook, offline figures).

    Every Newton step has the same shapes, so one rehearsal on zeros predicts the dealer
    material of all of them (`Backend.prefetch`, key 0); `extra` rehearses what follows
    the steps (key 1: the models' last step, `last_step`), fetched with them, after the
    material of `prefetched` (default `steps`) steps.
    """
    backend, spec = problem.backend, problem.spec
    dense = masks.batch(None)  # [m, rows, 1]
    counts = dense.sum(1).reshape(-1).to(torch.float64)
    # a model without rows (Data Banzhaf's empty coalition) has gradient 0 and stays at
    # theta = 0, as with SGD; its bound is taken as the full table's so it does not
    # raise every model's iteration count
    bounds = curvature_bound(spec, problem.features, problem.rows, torch.where(counts > 0, counts, problem.rows))
    iterations = schulz_iterations(spec, bounds)
    size, models = problem.features + 1, masks.models
    constant = None
    if spec.kind == "linear":  # X~^T diag(mask) X~: the same for every step
        (constant,) = sums_over_rows(backend, [problem.xt], [backend.mask_rows(problem.xt, dense)])
    factors = torch.where(counts > 0, 1.0 / (counts.clamp_min(1.0) * spec.l2), torch.zeros_like(counts))
    penalty = backend.public(problem.penalty.expand(models, size, size))

    def step(theta: Tensor, xt: Tensor, y: Tensor) -> Tensor:
        hessian_sum, gradient_sum = _sums(backend, spec, xt, y, theta, dense, constant)
        hessian, gradient = _scale_rows_of(backend, [hessian_sum, gradient_sum], factors)
        scaled_gradient = gradient + _penalised(backend, theta, problem.penalty)
        return theta - solve(backend, hessian + penalty, scaled_gradient, bounds / spec.l2, iterations)

    theta = backend.public(torch.zeros(models, size, 1, dtype=torch.float64))
    zero_theta = backend.public(torch.zeros(models, size, 1, dtype=torch.float64))
    rehearsals: dict[int, Callable[[], object]] = {0: lambda: step(zero_theta, *problem.zeros()), **extra}
    steps = spec.epochs if steps is None else steps
    prefetched = steps if prefetched is None else prefetched
    offline, before_step = backend.prefetch(rehearsals, [0] * prefetched + sorted(extra))
    for done in range(steps):
        before_step(done)
        theta = step(theta, problem.xt, problem.y)
        if on_step is not None:
            on_step(done + 1, spec.epochs)
    return theta, before_step, offline


def _penalised(backend: Backend, theta: Tensor, penalty: torch.Tensor) -> Tensor:
    """P theta: the weights with the bias zeroed (an exact 0/1 mask)."""
    mask = penalty.diagonal().to(torch.long).reshape(1, -1, 1)
    return backend.mask_rows(theta, mask)


def as_params(theta: Tensor, features: int) -> dict[str, Tensor]:
    """theta [m, d+1, 1] as the layers' parameters: weight [m, d, 1], bias [m, 1, 1]."""
    return {"weight": theta[:, :features, :], "bias": theta[:, features:, :]}


def provider_blocks(provider_rows: Sequence[int]) -> tuple[int, list[tuple[int, int, int]]]:
    """Rows grouped in blocks of one provider each: (block rows b, [(provider, start, stop)]).

    b = ceil(rows / n) (at most 8,192, the gradient's truncation block), so the padding
    to whole blocks at most doubles the rows whatever the split.
    """
    total, providers = sum(provider_rows), len(provider_rows)
    block = max(1, min(GRADIENT_BLOCK_ROWS, -(-total // providers)))
    blocks: list[tuple[int, int, int]] = []
    start = 0
    for provider, count in enumerate(provider_rows):
        for first in range(start, start + count, block):
            blocks.append((provider, first, min(first + block, start + count)))
        start += count
    return block, blocks


def per_provider_sums(
    backend: Backend, xt: Tensor, right: Tensor, provider_rows: Sequence[int]
) -> Tensor:
    """xt^T right summed over each provider's rows: [n, k, w], in one batched matmul.

    The rows are cut into blocks of one provider each (padded with public zeros), the
    blocks multiplied at once ([blocks, k, b] @ [blocks, b, w], each block truncated on
    its own), and the blocks of a provider added (exact, local).
    """
    block, blocks = provider_blocks(provider_rows)

    def padded(table: Tensor) -> Tensor:
        width = int(table.size(1))
        parts = []
        for _, first, stop in blocks:
            parts.append(table[first:stop])
            if stop - first < block:
                parts.append(backend.public(torch.zeros(block - (stop - first), width, dtype=torch.float64)))
        return backend.cat(parts, dim=0).reshape(len(blocks), block, width)

    products = padded(xt).transpose(1, 2).matmul(padded(right))  # [blocks, k, w]
    sums = []
    index = 0
    for provider in range(len(provider_rows)):
        stop = index
        while stop < len(blocks) and blocks[stop][0] == provider:
            stop += 1
        sums.append(products[index:stop].sum(0, keepdim=True))
        index = stop
    return backend.cat(sums, dim=0)


def leave_one_out_members(providers: int, excluded: Sequence[int] = ()) -> torch.Tensor:
    """[n+1, n] bool: model 0 sees every provider but the `excluded` (0-based: copies),
    model 1+j every one of those but j (an excluded j's model is the full one)."""
    kept = torch.ones(providers, dtype=torch.bool)
    kept[list(excluded)] = False
    members = kept.expand(providers + 1, providers).clone()
    members[1:] &= ~torch.eye(providers, dtype=torch.bool)
    return members


def last_step(problem: _Problem, theta: Tensor, provider_rows: Sequence[int], members: torch.Tensor) -> Tensor:
    """Every model's last Newton step from the shared iterate `theta` [1, k, 1].

    `members` [m, n] (public) says which providers' rows model s sees. At theta one pass
    over the rows gives each provider's sums S_i = X~_i^T W X~_i and G_i = X~_i^T (p - y)
    (`provider_sums`); model s's are the sums over its members (a public 0/1
    combination: exact, local), so theta_s = theta - H_s^-1 g_s with
    g_s = G_s / c_s + l2 P theta and H_s = S_s / c_s + l2 P costs m small (d+1)^2 solves
    in one batch (`step_models`), not m passes over the rows. Returns [m, k, 1].
    """
    return step_models(problem, theta, provider_sums(problem, theta, provider_rows), provider_rows, members)


def provider_sums(problem: _Problem, theta: Tensor, provider_rows: Sequence[int]) -> Tensor:
    """[S_i, G_i] of every provider at theta [1, k, 1]: [n, k, k+1].

    The sigmoid and the weighted rows take the shapes of a training step's (`_sums`, one
    model), so the dealer material prefetched for a step serves them; only the batched
    per-provider matmul differs (`per_provider_sums`)."""
    backend, spec, xt = problem.backend, problem.spec, problem.xt
    p, weight = _link(backend, spec, xt.matmul(theta))  # [1, rows, 1]
    residual = (p - problem.y).reshape(problem.rows, 1)
    weighted = xt if weight is None else (weight * xt).reshape(problem.rows, problem.features + 1)
    return per_provider_sums(backend, xt, backend.cat([weighted, residual], dim=1), provider_rows)


def step_models(
    problem: _Problem, theta: Tensor, sums: Tensor, provider_rows: Sequence[int], members: torch.Tensor
) -> Tensor:
    """theta - H_s^-1 g_s for every model s of `members` [m, n], from the providers' sums
    [n, k, k+1] at theta (see `last_step`). A model without rows (Banzhaf's empty
    coalition) is theta = 0, as when it is trained."""
    backend, spec = problem.backend, problem.spec
    providers, size, models = len(provider_rows), problem.features + 1, int(members.size(0))
    chosen = members.to(torch.long).reshape(models, providers, 1)
    model_sums = backend.mask_rows(sums.reshape(1, providers, size * (size + 1)), chosen).sum(1)
    counts = members.to(torch.float64) @ torch.tensor(list(provider_rows), dtype=torch.float64)  # [m]
    factors = torch.where(counts > 0, 1.0 / (counts.clamp_min(1.0) * spec.l2), torch.zeros_like(counts))
    (scaled,) = _scale_rows_of(backend, [model_sums.reshape(models, size, size + 1)], factors)
    penalty = backend.public(problem.penalty.expand(models, size, size))
    scaled_gradient = scaled[:, :, -1:] + _penalised(backend, theta, problem.penalty)
    bounds = curvature_bound(spec, problem.features, problem.rows, torch.where(counts > 0, counts, problem.rows))
    iterations = schulz_iterations(spec, bounds)
    stepped = theta - solve(backend, scaled[:, :, :-1] + penalty, scaled_gradient, bounds / spec.l2, iterations)
    if bool((counts == 0).any()):
        stepped = backend.mask_rows(stepped, (counts > 0).to(torch.long).reshape(models, 1, 1))
    return stepped


def train_newton(
    backend: Backend,
    spec: ModelSpec,
    train_x: Tensor,
    train_y: Tensor,
    validation_x: Tensor,
    validation_y: Tensor,
    masks: ModelMasks,
    provider_rows: Sequence[int] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    evaluator: Evaluator = evaluate,
    *,
    excluded: Sequence[int] = (),
    prepared: Prepared | None = None,
    members: torch.Tensor | None = None,
) -> LooResult:
    """Train with the newton solver and evaluate.

    With `provider_rows` and `spec.loo == "newton_step"`, only the full model takes the
    first epochs - 1 steps; every model then takes its last step from that shared iterate
    (`last_step`). The models are given by `members` [m, n] (Data Banzhaf's coalitions)
    or are the leave-one-out models of those providers (`masks` their row masks,
    `excluded` the 0-based providers no model sees, as in the masks). Otherwise every
    mask's model is trained (row masks or Data Banzhaf's coalitions); `evaluator`
    reveals what `training.train_masked`'s does. `prepared`: the tables are standardised
    already (`training.standardise_job`).
    """
    clock = PhaseClock()
    if prepared is None:
        prepared = standardise_job(backend, spec, train_x, train_y, validation_x, validation_y)
    normalised, labels = prepared.features, prepared.labels
    clock.mark("standardise")
    problem = _Problem(backend, spec, train_x, train_y)
    if provider_rows is not None and spec.loo == "newton_step":
        rows, dropped = tuple(provider_rows), tuple(excluded)
        if members is None:
            members = leave_one_out_members(len(rows), dropped)
            seen = members.to(torch.long) @ torch.tensor(rows, dtype=torch.long)
            if bool((seen == 0).any()):
                raise InvalidInput("leave-one-out needs rows beyond the left-out provider's")
        chosen = members
        size = problem.features + 1
        zero_theta = backend.public(torch.zeros(1, size, 1, dtype=torch.float64))
        zero_sums = backend.public(torch.zeros(len(rows), size, size + 1, dtype=torch.float64))
        # the last step's pass over the rows has a training step's shapes (its material
        # is prefetched as step `epochs`, whose own small solve goes unused); only the
        # m-model solve is rehearsed on its own (~20 rounds, not a whole step's ~300)
        extra: dict[int, Callable[[], object]] = {1: lambda: step_models(problem, zero_theta, zero_sums, rows, chosen)}
        theta, before_step, offline = newton_iterations(
            problem, RowMasks.full(rows, dropped), on_step, extra, steps=spec.epochs - 1, prefetched=spec.epochs)
        clock.mark("steps")
        before_step(spec.epochs - 1)  # (each fetches only where a chunk of material starts)
        before_step(spec.epochs)
        theta = last_step(problem, theta, rows, chosen)
        if on_step is not None:
            on_step(spec.epochs, spec.epochs)
        clock.mark("last_step")
    else:
        theta, _, offline = newton_iterations(problem, masks, on_step, {})
        clock.mark("steps")
    params = as_params(theta, problem.features)
    metrics, accuracy = evaluator(backend, spec, params, validation_x, validation_y)
    clock.mark("evaluate")
    return LooResult(
        metrics=metrics, accuracy_full=accuracy, weights=released_weights(params, normalised, labels), steps=spec.epochs, offline=offline, phases=clock.phases
    )
