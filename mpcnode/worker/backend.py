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


class Backend(Protocol):
    """Operations whose implementation depends on whether values are secret."""

    name: str

    def public(self, value: torch.Tensor) -> Tensor:
        """A value every party knows (e.g. an initial weight) as a training tensor."""

    def mask_rows(self, value: Tensor, mask: torch.Tensor) -> Tensor:
        """`value * mask` for a public 0/1 integer mask, exactly (no rounding, no round)."""

    def sigmoid(self, value: Tensor) -> Tensor:
        """The sigmoid training uses: `hard_sigmoid` (see there), in both backends."""

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

    def positive(self, value: Tensor) -> Tensor:
        """1 where value > 0, else 0."""

    def argmax_one_hot(self, value: Tensor, dim: int) -> Tensor: ...

    def one_hot(self, labels: Tensor, classes: int) -> Tensor:
        """Class-index labels [r, 1] as one-hot rows [r, classes]."""

    def column_sums_of_squares(self, values: Tensor) -> Tensor:
        """sum over rows of values**2, per column: [features]."""

    def scale_by_inv_sqrt(self, values: Tensor, sums: Tensor) -> Tensor:
        """values / sqrt(sums) (sums broadcast over rows), for sums in ~[1e-4, 4e9]."""

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

    def sigmoid(self, value: torch.Tensor) -> torch.Tensor:
        return hard_sigmoid(value)

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

    def positive(self, value: torch.Tensor) -> torch.Tensor:
        return (value > 0).to(torch.float64)

    def argmax_one_hot(self, value: torch.Tensor, dim: int) -> torch.Tensor:
        index = value.argmax(dim=dim, keepdim=True)
        return torch.zeros_like(value).scatter_(dim, index, 1.0)

    def column_sums_of_squares(self, values: torch.Tensor) -> torch.Tensor:
        return (values * values).sum(0)

    def scale_by_inv_sqrt(self, values: torch.Tensor, sums: torch.Tensor) -> torch.Tensor:
        return values * torch.rsqrt(sums.clamp_min(1e-12))

    def one_hot(self, labels: torch.Tensor, classes: int) -> torch.Tensor:
        index = labels.round().to(torch.long).clamp(0, classes - 1)
        return torch.nn.functional.one_hot(index.reshape(-1), classes).to(torch.float64)

    def cat(self, parts: list[torch.Tensor], dim: int = 0) -> torch.Tensor:
        return torch.cat(parts, dim=dim)

    def reveal(self, value: torch.Tensor) -> torch.Tensor:
        return value.detach().clone()


# inv_sqrt range reduction: thresholds 4^k above and below 1 (covers ~1e-4 .. ~4e9)
_POWERS_ABOVE = 16
_POWERS_BELOW = 7


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
        """
        from crypten.mpc import MPCTensor

        integers = MPCTensor.from_shares(values.share, precision=0)
        high = integers.div(256)
        low = integers - high * 256
        high_columns, low_columns = high.t(), low.t()

        def column_dot(a: Tensor, b: Tensor) -> Tensor:  # [features] sum over rows of a*b
            return a.unsqueeze(1).matmul(b.unsqueeze(2)).reshape(-1)

        total = (
            column_dot(high_columns, high_columns)
            + column_dot(high_columns, low_columns).div(128)
            + column_dot(low_columns, low_columns).div(SCALE)
        )
        return MPCTensor.from_shares(total.share, precision=FRAC_BITS)

    def scale_by_inv_sqrt(self, values: Tensor, sums: Tensor) -> Tensor:
        """values / sqrt(sums): range reduction by powers of 4, Newton on [1, 4].

        CrypTen's own inv_sqrt starts from a guess that diverges above a few hundred, and
        a pooled sum of squares of a raw feature (an area in the thousands) is far larger;
        its inverse root is also too small for 16 fractional bits. So one batched
        comparison against the thresholds 4^k finds how often to divide (or multiply)
        `sums` by 4, Newton runs on the reduced value in [1, 4] from a linear start, and
        the factors of 2 are applied to `values` one at a time, keeping it well scaled.
        """
        crypten = self._crypten
        count = _POWERS_ABOVE + _POWERS_BELOW
        above = [4.0**k for k in range(1, _POWERS_ABOVE + 1)]
        below = [4.0 ** (1 - k) for k in range(1, _POWERS_BELOW + 1)]
        thresholds = torch.tensor(above + below, dtype=torch.float64).reshape((-1,) + (1,) * sums.dim())
        stacked = crypten.cat([sums.unsqueeze(0)] * count, dim=0)
        less = less_than_zero(stacked - thresholds)  # one batched comparison: [v < threshold_k]
        # flags[k] = [v > 4^k] for the powers above, [v < 4^(1-k)] for those below
        flags = crypten.cat([1 - less[:_POWERS_ABOVE], less[_POWERS_ABOVE:]], dim=0)
        reduced = sums
        scaled = values
        # flags are integer-encoded 0/1, so `x * flag` is exact; scale public factors after
        for k in range(count):
            flag = flags[k]
            if k < _POWERS_ABOVE:
                # x * 3 / 4 with an integer product: a public-float multiply would truncate
                # a value near 2^59 (see column_sums_of_squares)
                reduced = reduced - ((reduced * flag) * 3).div(4)
                scaled = scaled - (scaled * flag).div(2)
            else:
                reduced = reduced + (reduced * flag) * 3
                scaled = scaled + scaled * flag
        guess = 1.2 - 0.17 * reduced
        for _ in range(4):
            guess = guess * (3 - reduced * guess.square()) / 2
        return scaled * guess

    def one_hot(self, labels: Tensor, classes: int) -> Tensor:
        # labels [r, 1] holding class indices -> [r, k]: one batched equality test
        centred = labels - torch.arange(classes, dtype=torch.float64).reshape(1, classes)
        return centred.eq(0)

    def cat(self, parts: list[Tensor], dim: int = 0) -> Tensor:
        return self._crypten.cat(parts, dim=dim)

    def reveal(self, value: Tensor) -> torch.Tensor:
        return value.get_plain_text().to(torch.float64)
