"""The few operations where secret-shared and plaintext training differ.

The training and evaluation code (`training.py`, `evaluation.py`, `normalisation.py`) is
written once against tensors that support `matmul`, `mul`, `add`, `sub`, `sum`,
`transpose`, `reshape` and `__getitem__`: both `torch.Tensor` and CrypTen's `MPCTensor`
do. What is left - non-linearities, exact masking, creating and revealing values - goes
through a `Backend`, with one implementation in float torch (the plaintext reference the
tests and the benchmark compare against) and one in CrypTen (the real thing).

So "the same algorithm" in the MPC result and in the plaintext reference is true by
construction, not by keeping two copies in sync.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import torch

from mpcnode.worker.comparison import less_than_zero
from mpcnode.worker.softmax_training import mpc_softmax, plain_softmax
from mutualmind.vocabulary.fixed_point import FRAC_BITS, SCALE

# a training tensor: torch.Tensor (plaintext) or crypten MPCTensor (secret-shared)
Tensor = Any

# The sigmoid of the training step: hard_sigmoid(z) = clamp(0.5 + z / (2 W), 0, 1).
# Chosen by measurement (docs/performance.md): on standardised features it trains to
# scikit-learn's accuracy (breast cancer, wine 0-vs-rest, digits 0-4 vs 5-9) where
# CrypTen's exp + reciprocal sigmoid costs ~200 rounds per step and odd polynomials of
# degree 3 and 5 diverge (their values leave [0, 1] for large logits, and the gradient
# then pushes the logits further out). W = 4 matches the exact sigmoid's accuracy best.
HARD_SIGMOID_HALF_WIDTH = 4.0


def hard_sigmoid(value: torch.Tensor) -> torch.Tensor:
    """clamp(0.5 + z / (2 W), 0, 1) on float torch: the plaintext form of the same step."""
    return torch.clamp(0.5 + value / (2 * HARD_SIGMOID_HALF_WIDTH), 0.0, 1.0)


def take_rows(value: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """`Backend.take_rows` on a plain tensor (values or one party's shares)."""
    models = int(index.size(0))
    batched = value if value.dim() == 3 else value.unsqueeze(0)
    batched = batched.expand(models, *batched.shape[1:])
    padded = torch.cat([batched, batched.new_zeros(models, 1, batched.size(2))], 1)
    return padded.gather(1, index.unsqueeze(2).expand(-1, -1, batched.size(2)))


class Backend(Protocol):
    """Operations whose implementation depends on whether values are secret."""

    name: str

    def public(self, value: torch.Tensor) -> Tensor:
        """A value every party knows (e.g. an initial weight) as a training tensor."""

    def mask_rows(self, value: Tensor, mask: torch.Tensor) -> Tensor:
        """`value * mask` for a public 0/1 integer mask, exactly (no rounding, no round)."""

    def take_rows(self, value: Tensor, index: torch.Tensor) -> Tensor:
        """Rows of `value` [m, rows, k] (or [rows, k], the same for every model) by a public
        index [m, n]: place i of model j holds row index[j, i], 0 where the index is
        `rows`. Local and exact (shares are moved, not computed on)."""

    def sigmoid(self, value: Tensor) -> Tensor:
        """The sigmoid training uses: `hard_sigmoid` (see there), in both backends."""

    def logistic(self, value: Tensor) -> Tensor:
        """The exact sigmoid 1 / (1 + exp(-z)) (to fixed-point accuracy in MPC): the
        newton solver's link, whose optimum is the plaintext logistic regression's, and
        a model's predicted probability in the tournament metamodel."""

    def prefetch(
        self, rehearsals: dict[int, Callable[[], object]], step_shapes: list[int]
    ) -> tuple[dict[str, float] | None, Callable[[int], object]]:
        """Fetch a run's dealer material before it starts (see `dealer_prefetch`):
        the offline phase's figures (None where there is no dealer) and the hook to
        call before every step i (it fetches the next chunk of a long run)."""

    def softmax(self, value: Tensor, dim: int) -> Tensor:
        """The softmax training uses (`softmax_training`), in both backends."""

    def log_softmax(self, value: Tensor, dim: int) -> Tensor: ...

    def relu_with_gate(self, value: Tensor) -> tuple[Tensor, Tensor]:
        """relu(value) and its derivative (1 where value > 0, else 0)."""

    def scale_by_ratio(self, value: Tensor, numerators: torch.Tensor, denominators: torch.Tensor) -> Tensor:
        """value * numerators / denominators for public integer tensors (in MPC: an exact
        integer product, then one truncation by the denominators)."""

    def softplus(self, value: Tensor) -> Tensor:
        """log(1 + exp(value)), computed where it is accurate for large |value|."""

    def weighted_sums(self, value: Tensor, numerators: torch.Tensor, denominator: int) -> Tensor:
        """[J, ...] = sum_k numerators[j, k] * value[k, ...] / denominator for a public
        integer matrix [J, K] (in MPC: an exact integer product, then ONE truncation of
        each of the J sums - not one per term)."""

    def log(self, value: Tensor) -> Tensor:
        """Natural log of values in [1e-4, 250] (where CrypTen's approximation holds)."""

    def positive(self, value: Tensor) -> Tensor:
        """1 where value > 0, else 0."""

    def argmax_one_hot(self, value: Tensor, dim: int) -> Tensor: ...

    def one_hot(self, labels: Tensor, classes: int) -> Tensor:
        """Class-index labels [r, 1] as one-hot rows [r, classes]."""

    def column_sums_of_squares(self, values: Tensor) -> Tensor:
        """sum over rows of values**2, per column: [features]."""

    def inverse_std(self, sums: Tensor, rows: int) -> Tensor:
        """sqrt(rows / sums) per column for sums of squares in [4^-6, 4^17): the inverse
        standard deviation; 0 for a column whose sum of squares is below 4^-6 (constant
        within the fixed-point resolution: it is dropped rather than blown up). The floor
        is in the units of the job's values (each column scaled to |x| <= 1 by a power of
        two): the plaintext reference scales the same way (`reference.job_scaled`)."""

    def write_rows(self, table: Tensor, start: int, rows: Tensor) -> None:
        """table[start : start + len(rows)] = rows, in place (no copy of the table)."""

    def cat(self, parts: list[Tensor], dim: int = 0) -> Tensor: ...

    def reveal(self, value: Tensor) -> torch.Tensor:
        """The plaintext of `value` (in MPC: every party learns it - use for results only)."""


def _last_dim_only(value: Tensor, dim: int) -> None:
    if dim not in (-1, value.dim() - 1):
        raise ValueError(f"the training softmax runs over the last dimension, not {dim}")


class PlainBackend:
    """Float64 torch: the plaintext reference of the same algorithm."""

    name = "plain"

    def public(self, value: torch.Tensor) -> torch.Tensor:
        return value.to(torch.float64).clone()

    def mask_rows(self, value: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return value * mask.to(torch.float64)

    def take_rows(self, value: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return take_rows(value, index)

    def sigmoid(self, value: torch.Tensor) -> torch.Tensor:
        return hard_sigmoid(value)

    def logistic(self, value: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(value)

    def prefetch(
        self, rehearsals: dict[int, Callable[[], object]], step_shapes: list[int]
    ) -> tuple[None, Callable[[int], object]]:
        return None, lambda index: None

    def softmax(self, value: torch.Tensor, dim: int) -> torch.Tensor:
        _last_dim_only(value, dim)
        return plain_softmax(value)

    def log_softmax(self, value: torch.Tensor, dim: int) -> torch.Tensor:
        return torch.log_softmax(value, dim)

    def relu_with_gate(self, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gate = (value > 0).to(torch.float64)
        return value * gate, gate

    def scale_by_ratio(self, value: torch.Tensor, numerators: torch.Tensor, denominators: torch.Tensor) -> torch.Tensor:
        return value * (numerators.to(torch.float64) / denominators.to(torch.float64))

    def softplus(self, value: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.softplus(value)

    def weighted_sums(self, value: torch.Tensor, numerators: torch.Tensor, denominator: int) -> torch.Tensor:
        shape = tuple(value.shape)
        flat = value.reshape(shape[0], -1)
        return (numerators.to(torch.float64).matmul(flat) / denominator).reshape(int(numerators.size(0)), *shape[1:])

    def log(self, value: torch.Tensor) -> torch.Tensor:
        return torch.log(value)

    def positive(self, value: torch.Tensor) -> torch.Tensor:
        return (value > 0).to(torch.float64)

    def argmax_one_hot(self, value: torch.Tensor, dim: int) -> torch.Tensor:
        index = value.argmax(dim=dim, keepdim=True)
        return torch.zeros_like(value).scatter_(dim, index, 1.0)

    def column_sums_of_squares(self, values: torch.Tensor) -> torch.Tensor:
        return (values * values).sum(0)

    def inverse_std(self, sums: torch.Tensor, rows: int) -> torch.Tensor:
        varying = sums >= CONSTANT_BELOW
        return torch.where(varying, torch.sqrt(rows / sums.clamp_min(CONSTANT_BELOW)), torch.zeros_like(sums))

    def write_rows(self, table: torch.Tensor, start: int, rows: torch.Tensor) -> None:
        table[start : start + int(rows.size(0))] = rows

    def one_hot(self, labels: torch.Tensor, classes: int) -> torch.Tensor:
        index = labels.round().to(torch.long).clamp(0, classes - 1)
        return torch.nn.functional.one_hot(index.reshape(-1), classes).to(torch.float64)

    def cat(self, parts: list[torch.Tensor], dim: int = 0) -> torch.Tensor:
        return torch.cat(parts, dim=dim)

    def reveal(self, value: torch.Tensor) -> torch.Tensor:
        return value.detach().clone()


LOGISTIC_RECIPROCAL_STEPS = 3

# inverse_std's range reduction: a sum of squares v lies in [4^k, 4^(k+1)) for one level
# k of LEVELS (4^17 = 2^34 > 4 * MAX_JOB_ROWS); below 4^-6 a column counts as constant
LEVELS = torch.arange(-6, 17)
CONSTANT_BELOW = 4.0**-6


class CrypTenBackend:
    """CrypTen MPCTensors (arithmetic shares, 16 fractional bits, Z/2^64).

    Requires `crypten.init()` to have run in this process (the worker does it).
    """

    name = "crypten"

    def __init__(self) -> None:
        from mutualmind.crypten_compat import crypten

        self._crypten = crypten

    def public(self, value: torch.Tensor) -> Tensor:
        # every party passes the same public value; src 0 adds it to a sharing of zero,
        # which CrypTen builds from pairwise PRG seeds without communication
        return self._crypten.cryptensor(value.to(torch.float64), src=0)

    def mask_rows(self, value: Tensor, mask: torch.Tensor) -> Tensor:
        shape = torch.broadcast_shapes(tuple(value.size()), tuple(mask.shape))
        out = value.clone()
        out.share = value.share.expand(shape) * mask.to(torch.long)
        return out

    def take_rows(self, value: Tensor, index: torch.Tensor) -> Tensor:
        out = value.clone()
        out.share = take_rows(value.share, index)   # a share of 0 is 0 at every party
        return out

    def sigmoid(self, value: Tensor) -> Tensor:
        """hard_sigmoid with one batched comparison and one exact multiplication.

        a = [z > -W], b = [z > W] (one `_ltz` on both shifted copies, integer-encoded),
        d = a - b; then hard_sigmoid(z) = d * (0.5 + z / (2W)) + b
        = (z * d) / (2W) + d / 2 + b. `z * d` multiplies by an integer-encoded value
        (no truncation); / (2W) is one truncation; d / 2 and b are exact re-encodings.
        """
        from crypten.mpc import MPCTensor

        width = HARD_SIGMOID_HALF_WIDTH
        shifted = self._crypten.cat([(value + width).unsqueeze(0), (value - width).unsqueeze(0)], dim=0)
        below = less_than_zero(shifted)  # [2, ...] integer-encoded: [z < -W], [z < W]
        inside = below[1] - below[0]  # d = a - b = [z >= -W] - [z >= W]
        above = 1 - below[1]
        product = (value * inside).div(int(2 * width))
        half = SCALE // 2
        # integer-encoded 0/1 tensors to fixed point without a multiplication round
        fixed = MPCTensor.from_shares(inside.share * half + above.share * SCALE, precision=FRAC_BITS)
        return product + fixed

    def logistic(self, value: Tensor) -> Tensor:
        """sigmoid(|z|) = 1 / (1 + exp(-|z|)), then mirrored for z < 0: 1 - sigmoid(|z|).

        exp runs on -|z| <= 0 only (CrypTen's limit approximation (1 - |z|/256)^256 stays
        in (0, 1] for |z| < 512), so 1 + exp(-|z|) lies in (1, 2], where Newton's
        reciprocal from the linear start 1.5 - d/2 (exact at 1 and 2, error <= 0.12 in
        between) reaches 2^-16 in 3 steps (CrypTen's own sigmoid starts at 0.75: its
        relative error after 3 steps is 0.5^8 = 0.4 % at z = 0, a bias in every gradient).
        One comparison, 8 squarings, 6 multiplications, one selection.
        """
        negative = less_than_zero(value)  # integer-encoded 0/1
        magnitude = value * (1 - 2 * negative)  # exact: a product with an integer
        denominator = (-magnitude).exp() + 1
        reciprocal = 1.5 - denominator.div(2)
        for _ in range(LOGISTIC_RECIPROCAL_STEPS):
            reciprocal = reciprocal * (2 - denominator * reciprocal)
        return reciprocal + (1 - 2 * reciprocal) * negative  # exact: negative is integer-encoded

    def prefetch(
        self, rehearsals: dict[int, Callable[[], object]], step_shapes: list[int]
    ) -> tuple[dict[str, float], Callable[[int], object]]:
        from dataclasses import asdict

        from mpcnode.worker.dealer_prefetch import DealerPrefetch

        prefetched = DealerPrefetch(rehearsals, step_shapes)
        return {**asdict(prefetched.offline), "chunks": prefetched.chunks}, prefetched.before_step

    def softmax(self, value: Tensor, dim: int) -> Tensor:
        _last_dim_only(value, dim)
        return mpc_softmax(value, self._crypten)

    def log_softmax(self, value: Tensor, dim: int) -> Tensor:
        return value.log_softmax(dim)

    def relu_with_gate(self, value: Tensor) -> tuple[Tensor, Tensor]:
        gate = 1 - less_than_zero(value)
        return value * gate, gate

    def scale_by_ratio(self, value: Tensor, numerators: torch.Tensor, denominators: torch.Tensor) -> Tensor:
        product = value.clone()
        product.share = value.share * numerators  # an integer product: exact, no round
        return product.div(denominators)  # one truncation by public integers

    def softplus(self, value: Tensor) -> Tensor:
        # softplus(z) = relu(z) + log(1 + exp(-|z|)): the log's argument stays in (1, 2],
        # where CrypTen's log is accurate, whatever the size of z
        negative = less_than_zero(value)
        sign = 1 - 2 * negative
        magnitude = value * sign
        relu = value * (1 - negative)
        return relu + (1 + (-magnitude).exp()).log()

    def weighted_sums(self, value: Tensor, numerators: torch.Tensor, denominator: int) -> Tensor:
        shape = tuple(value.size())
        flat = value.reshape(shape[0], -1)
        mixed = flat.clone()
        mixed.share = numerators.to(torch.long).matmul(flat.share)  # integer: exact (mod 2^64)
        return mixed.div(denominator).reshape(int(numerators.size(0)), *shape[1:])

    def log(self, value: Tensor) -> Tensor:
        return value.log()

    def positive(self, value: Tensor) -> Tensor:
        return 1 - less_than_zero(value)

    def argmax_one_hot(self, value: Tensor, dim: int) -> Tensor:
        return value.argmax(dim=dim, one_hot=True)

    def column_sums_of_squares(self, values: Tensor) -> Tensor:
        """Exact-as-possible sums of squares without a truncation of a huge value.

        CrypTen's truncation for more than two parties fails (a garbage element) with
        probability |x| / 2^64 for the value x it truncates. A raw feature in the
        thousands has a sum of squares near 2^59 at 32 fractional bits, so a plain matmul
        fails a few percent of the time. So the fixed-point integers C are split as
        C = 256 * hi + lo (one truncation of a small value), and
        sum C^2 / 2^16 = sum hi^2 + (sum hi*lo) / 128 + (sum lo^2) / 2^16
        is computed on integer-encoded tensors: the big term needs no truncation at all.
        The three products come from ONE batched Beaver square of [hi; lo; hi + lo]
        (2 hi lo = (hi + lo)^2 - hi^2 - lo^2): elementwise, where a matmul of int64
        columns is slow in torch, and one opened value instead of a matmul's two.
        """
        from crypten.mpc import MPCTensor
        from crypten.mpc.primitives import beaver

        integers = MPCTensor.from_shares(values.share, precision=0)
        high = integers.div(256)
        low = integers - high * 256
        rows = int(values.size(0))
        stacked = self._crypten.cat([high, low, high + low], dim=0)
        # integer-encoded square: exact, no truncation (CrypTen's square would divide by 1)
        squares = MPCTensor.from_shares(beaver.square(stacked._tensor).share, precision=0)
        high_sq, low_sq, mixed_sq = squares[:rows].sum(0), squares[rows : 2 * rows].sum(0), squares[2 * rows :].sum(0)
        parts = self._crypten.stack([mixed_sq - high_sq - low_sq, low_sq])  # [2 sum hi lo, sum lo^2]
        scaled = parts.div(torch.tensor([[256], [SCALE]]))  # one truncation of both
        total = high_sq + scaled.sum(0)
        return MPCTensor.from_shares(total.share, precision=FRAC_BITS)

    def inverse_std(self, sums: Tensor, rows: int) -> Tensor:
        """sqrt(rows / v) on [features] vectors: range reduction by powers of 4, Newton on [1, 4).

        One batched comparison of v against the thresholds 4^k gives the one-hot level
        e_k = [4^k <= v < 4^(k+1)] (integer-encoded 0/1). Then r = sum_k e_k v 4^-k lies
        in [1, 4) (an exact product with the 0/1 bits, then one truncation by the public
        4^k), Newton's inverse square root runs on r from a linear start, and the public
        factor of the level, sqrt(rows) 2^-k, is selected by the same bits without a
        multiplication round: sqrt(rows / v) = r^-1/2 sqrt(rows) 2^-k. A v below 4^-6
        selects no level: its factor is 0. Everything here is [levels, features], so the
        cost does not depend on the row count (it used to scale the whole table 23 times).
        """
        from crypten.mpc import MPCTensor

        crypten = self._crypten
        levels = len(LEVELS)
        thresholds = (4.0**LEVELS).to(torch.float64).reshape(-1, 1)
        stacked = crypten.cat([sums.unsqueeze(0)] * levels, dim=0)
        at_least = 1 - less_than_zero(stacked - thresholds)  # [v >= 4^k], integer-encoded
        onehot = crypten.cat([at_least[:-1] - at_least[1:], at_least[-1:]], dim=0)
        numerators = (4 ** (-LEVELS).clamp_min(0)).reshape(-1, 1)
        denominators = (4 ** LEVELS.clamp_min(0)).reshape(-1, 1)
        reduced = self.scale_by_ratio(stacked * onehot, numerators, denominators).sum(0)  # exact product
        guess = 1.2 - 0.17 * reduced
        for _ in range(4):
            guess = guess * (3 - reduced * guess.square()) / 2
        factors = torch.round(math.sqrt(rows) * 2.0 ** (-LEVELS.to(torch.float64)) * SCALE).to(torch.long)
        level_factor = MPCTensor.from_shares((onehot.share * factors.reshape(-1, 1)).sum(0), precision=FRAC_BITS)
        return guess * level_factor

    def write_rows(self, table: Tensor, start: int, rows: Tensor) -> None:
        table.share[start : start + int(rows.size(0))] = rows.share

    def one_hot(self, labels: Tensor, classes: int) -> Tensor:
        # labels [r, 1] holding class indices -> [r, k]: one batched equality test
        centred = labels - torch.arange(classes, dtype=torch.float64).reshape(1, classes)
        return centred.eq(0)

    def cat(self, parts: list[Tensor], dim: int = 0) -> Tensor:
        return self._crypten.cat(parts, dim=dim)

    def reveal(self, value: Tensor) -> torch.Tensor:
        # gloo sums the shares' memory as laid out: a transposed view would be revealed
        # element-mismatched (garbage), so reveal a row-major copy
        if not value.share.is_contiguous():
            value = value.clone()
            value.share = value.share.contiguous()
        return value.get_plain_text().to(torch.float64)
