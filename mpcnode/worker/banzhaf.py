"""Data Banzhaf in one batched pass: a model per coalition, the estimator on the shares.

The coalitions (`mutualmind.vocabulary.valuation.plan`: all 2^n for n <= 8, else Maximum
Sample Reuse) become public row masks, and `training.train_masked` trains one model per
coalition together, exactly as it trains the leave-one-out models (with the newton
solver and `loo: newton_step`: one training, then every coalition's last Newton step
from its iterate, `newton.last_step`: no Hessian per coalition over the rows). Then, instead of
revealing every coalition's metric, the nodes compute the estimator on the secret
metrics u [m] and reveal only 2n+1 numbers (the full model's metric, each dataset's
mean_in - mean_out, each standard error):

- the means are sums under a public 0/1 membership mask (exact, no round), scaled by
  public 1/k in one truncation;
- MSR's variance: the deviations from each group's mean, scaled by 16 (an exact integer
  product, so a small deviation keeps its relative precision), squared in ONE batched
  Beaver square, summed per group and scaled by 2^12 / (k (k - 1)) in one truncation,
  which reveals 2^20 sigma^2 (sigma^2 itself, ~1e-6, would be below the 2^-16 fixed-point
  step); the square root is taken on the revealed value, the same float on every node.

The plaintext reference (`reference.plaintext_banzhaf`) retrains every coalition on its
own and applies `valuation.estimate`; the tests compare the two.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from mpcnode.worker.backend import Backend, Tensor
from mpcnode.worker.evaluation import metric_sums
from mpcnode.worker.row_masks import owners
from mpcnode.worker.training import Evaluator, LooResult, Prepared, train_masked
from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.fixed_point import FRAC_BITS, SCALE
from mutualmind.vocabulary.model_spec import ModelSpec
from mutualmind.vocabulary.valuation import EXACT, Coalitions

DEVIATION_SCALE = 16         # deviations are multiplied by this (exactly) before squaring
VARIANCE_NUMERATOR = 1 << 12  # revealed: 2^12 * 16^2 * sigma^2 = 2^20 sigma^2
REVEALED_VARIANCE_SCALE = VARIANCE_NUMERATOR * DEVIATION_SCALE**2


@dataclass(frozen=True)
class CoalitionMasks:
    """owner[r] is the 1-based dataset of row r; members[j, i] whether model j sees dataset i."""

    owner: torch.Tensor    # [rows] int64
    members: torch.Tensor  # [m, n] bool

    @classmethod
    def of(cls, provider_rows: Sequence[int], coalitions: Coalitions, excluded: Sequence[int] = ()) -> CoalitionMasks:
        """The coalitions' masks; the `excluded` datasets (0-based: the copies) are in no
        coalition, so every model is trained without their rows and their value is 0."""
        if len(provider_rows) != coalitions.providers:
            raise InvalidInput(f"{len(provider_rows)} datasets but coalitions over {coalitions.providers}")
        owner = owners(provider_rows).to(torch.long)
        members = torch.tensor(coalitions.members, dtype=torch.bool)
        if any(not 0 <= i < len(provider_rows) for i in excluded):
            raise InvalidInput(f"excluded datasets {list(excluded)} must lie in 0..{len(provider_rows) - 1}")
        members[:, list(excluded)] = False
        return cls(owner, members)

    @property
    def models(self) -> int:
        return int(self.members.size(0))

    @property
    def rows(self) -> int:
        return int(self.owner.numel())

    def only(self, model: int) -> CoalitionMasks:
        """Model `model` alone (the plaintext reference trains each coalition separately)."""
        return CoalitionMasks(self.owner, self.members[model : model + 1])

    def batch(self, index: torch.Tensor | None) -> torch.Tensor:
        """The public mask [m, batch, 1] (long 0/1) of the rows `index` (None: every row)."""
        owners = self.owner if index is None else self.owner[index]
        return self.members[:, owners - 1].to(torch.long).unsqueeze(-1)


def train_banzhaf(
    backend: Backend,
    spec: ModelSpec,
    train_x: Tensor,
    train_y: Tensor,
    validation_x: Tensor,
    validation_y: Tensor,
    provider_rows: Sequence[int],
    coalitions: Coalitions,
    on_step: Callable[[int, int], None] | None = None,
    *,
    excluded: Sequence[int] = (),
    prepared: Prepared | None = None,
) -> LooResult:
    """Train a model per coalition in one pass; `metrics` holds the 2n+1 revealed values
    (full model's metric, mean_in - mean_out per dataset, standard error per dataset).
    `excluded` (0-based: the copies) are in no coalition; `prepared`: the tables are
    standardised already."""
    rows = int(train_x.size(0))
    if rows != sum(provider_rows):
        raise InvalidInput(f"training data has {rows} rows but the providers hold {sum(provider_rows)}")
    masks = CoalitionMasks.of(provider_rows, coalitions, excluded)
    if spec.solver == "newton" and spec.loo == "newton_step":  # one shared training, a last step each
        from mpcnode.worker.newton import train_newton

        return train_newton(backend, spec, train_x, train_y, validation_x, validation_y, masks, provider_rows, on_step,
                            banzhaf_evaluator(coalitions), excluded=excluded, prepared=prepared,
                            members=masks.members)
    return train_masked(backend, spec, train_x, train_y, validation_x, validation_y, masks, on_step,
                        evaluator=banzhaf_evaluator(coalitions), prepared=prepared)


def banzhaf_evaluator(coalitions: Coalitions) -> Evaluator:
    """An evaluator for `train_masked` that reveals the Banzhaf aggregates only."""

    def evaluate(backend: Backend, spec: ModelSpec, params: dict[str, Tensor], vx: Tensor,
                 vy: Tensor) -> tuple[list[float], float | None]:
        rows = int(vx.size(0))
        totals = metric_sums(backend, spec, params, vx, vy)
        utilities = _fixed_point(backend, totals[0]).reshape(-1)  # [m] sums of the metric
        accuracy = None
        if spec.task != "regression" and spec.metric != "accuracy":
            accuracy = float(backend.reveal(totals[1]).reshape(-1)[0]) / rows
        revealed = aggregate(backend, utilities, coalitions, rows)
        if spec.metric == "accuracy":
            accuracy = revealed[0]
        return revealed, accuracy

    return evaluate


def aggregate(backend: Backend, sums: Tensor, coalitions: Coalitions, rows: int) -> list[float]:
    """[full metric, mean_in - mean_out per dataset, standard error per dataset] from the
    secret per-model metric sums over `rows` validation rows (see the module doc)."""
    n, first, m = coalitions.providers, coalitions.first, coalitions.models
    if int(sums.size(0)) != m:
        raise InvalidInput(f"{int(sums.size(0))} metric sums for {m} coalitions")
    utilities = backend.scale_by_ratio(sums, torch.ones(m, dtype=torch.long), torch.full((m,), rows, dtype=torch.long))
    samples = utilities[first:]
    k = m - first
    inside = torch.tensor(coalitions.samples, dtype=torch.long)           # [k, n]
    count_in = inside.sum(0)                                              # [n], public
    count_out = k - count_in
    column = samples.reshape(k, 1)
    every = torch.ones(k, n, dtype=torch.long)
    sum_in = backend.mask_rows(column, inside).sum(0)                     # [n]
    sum_out = backend.mask_rows(column, every - inside).sum(0)
    means = backend.scale_by_ratio(backend.cat([sum_in, sum_out]), torch.ones(2 * n, dtype=torch.long),
                                   torch.cat([count_in, count_out]))
    mean_in, mean_out = means[:n], means[n:]
    differences = mean_in - mean_out
    if coalitions.method == EXACT:
        plain = backend.reveal(backend.cat([utilities[0:1], differences])).reshape(-1)
        return [float(v) for v in plain] + [0.0] * n
    spread = backend.mask_rows(column, every)                             # [k, n] copies of u_S
    dev_in = backend.mask_rows(spread - backend.mask_rows(mean_in.reshape(1, n), every), inside)
    dev_out = backend.mask_rows(spread - backend.mask_rows(mean_out.reshape(1, n), every), every - inside)
    scaled = backend.cat([dev_in, dev_out]) * DEVIATION_SCALE              # exact integer product
    squares = scaled.square()                                             # one batched square
    sq = backend.cat([squares[:k].sum(0), squares[k:].sum(0)])            # [2n]
    groups = torch.cat([count_in, count_out])
    variance = backend.scale_by_ratio(sq, torch.full((2 * n,), VARIANCE_NUMERATOR, dtype=torch.long),
                                      groups * (groups - 1))
    combined = variance[:n] + variance[n:]                               # 2^20 sigma^2
    plain = backend.reveal(backend.cat([utilities[0:1], differences, combined])).reshape(-1)
    errors = [math.sqrt(max(0.0, float(v)) / REVEALED_VARIANCE_SCALE) for v in plain[1 + n:]]
    return [float(v) for v in plain[: 1 + n]] + errors


def _fixed_point(backend: Backend, value: Tensor) -> Tensor:
    """`value` at 16 fractional bits: in MPC, counts of comparisons are integer-encoded
    (scale 1) and are re-encoded by an exact integer product, no round."""
    if backend.name != "crypten":
        return value
    from crypten.mpc import MPCTensor

    scale = int(value.encoder.scale)
    if scale == SCALE:
        return value
    return MPCTensor.from_shares(value.share * (SCALE // scale), precision=FRAC_BITS)
