"""The softmax of the training step, in few rounds, as one algorithm for both backends.

CrypTen's `softmax` costs about 160 rounds per call with 3 parties: a tree of
comparisons for the maximum, `exp` by 8 squarings, and a reciprocal by 10 Newton
iterations from an `exp`-based first guess. Training needs only P - Y, and every
piece can be cheaper because the inputs are known to be well behaved:

* maximum: all k(k-1)/2 pairwise comparisons in ONE batched comparison; class i wins
  a pair against a later class on >=, against an earlier one on > (so exactly one class
  wins every pair, ties included); the winner's one-hot is a product of k-1 bits (a
  tree: ceil(log2(k-1)) rounds, no truncation since bits are integer-encoded);
* exp on (-inf, 0] after subtracting the maximum: max(0, 1 + x / 2^t)^(2^t),
  t = EXP_SQUARINGS (without the clamp, a logit gap beyond 2^t makes the base negative
  and its power huge: digits diverged so, measured);
* the denominator lies in [1, k], so Newton for 1/s starts from the constant 2 / (k+1)
  (|1 - s y0| <= (k-1)/(k+1) < 1) and needs only a few iterations; the first is
  linear in s (one public multiplication).

`plain_softmax` is the same algorithm in float torch (exact maximum), so the plaintext
reference trains exactly what MPC trains. Evaluation keeps CrypTen's log-softmax.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from mpcnode.worker.comparison import less_than_zero

Tensor = Any

EXP_SQUARINGS = 5  # exp(x) ~ (1 + x/32)^32, accurate to ~1e-2 absolute on [-16, 0]
RECIPROCAL_TARGET_ERROR = 1e-2


def newton_iterations(classes: int) -> int:
    """Newton steps for 1/s on [1, k] from 2/(k+1): the error squares every step."""
    start = (classes - 1) / (classes + 1)
    if start <= 0:
        return 1
    needed = math.log(RECIPROCAL_TARGET_ERROR) / math.log(start)
    return max(1, math.ceil(math.log2(needed)))


def plain_softmax(value: torch.Tensor) -> torch.Tensor:
    """The training softmax over the last dimension, in float torch."""
    classes = int(value.size(-1))
    shifted = value - value.max(dim=-1, keepdim=True).values
    base = (1 + shifted / (1 << EXP_SQUARINGS)).clamp_min(0.0)
    numerator = base ** (1 << EXP_SQUARINGS)
    total = numerator.sum(-1, keepdim=True)
    return numerator * _newton_reciprocal(total, classes)


def mpc_softmax(value: Tensor, crypten: Any) -> Tensor:
    """The training softmax over the last dimension of an MPCTensor."""
    classes = int(value.size(-1))
    maximum = _mpc_maximum(value, crypten, classes)
    shifted = value - maximum
    base = 1 + shifted.div(1 << EXP_SQUARINGS)
    base = base * (1 - less_than_zero(base))  # clamp at 0: logit gaps beyond 2^t stay 0
    numerator = base
    for _ in range(EXP_SQUARINGS):
        numerator = numerator.square()
    total = numerator.sum(-1, keepdim=True)
    return numerator * _newton_reciprocal(total, classes)


def _newton_reciprocal(total: Tensor, classes: int) -> Tensor:
    """1/total for total in [1, classes]; works on float torch and MPCTensors alike."""
    start = 2.0 / (classes + 1)
    guess = 2 * start - total * (start * start)  # the first Newton step, linear in total
    for _ in range(newton_iterations(classes) - 1):
        guess = guess * (2 - total * guess)
    return guess


def _mpc_maximum(value: Tensor, crypten: Any, classes: int) -> Tensor:
    """max over the last dimension (keepdim) from one batched pairwise comparison."""
    if classes == 1:
        return value
    pairs = [(i, j) for i in range(classes) for j in range(i + 1, classes)]
    diffs = crypten.cat([(value[..., i] - value[..., j]).unsqueeze(0) for i, j in pairs], dim=0)
    less = less_than_zero(diffs)  # [z_i < z_j] for each pair i < j, integer-encoded
    index = {pair: n for n, pair in enumerate(pairs)}
    wins = []
    for i in range(classes):
        bits = [1 - less[index[(i, j)]] if i < j else less[index[(j, i)]] for j in range(classes) if j != i]
        wins.append(crypten.cat([b.unsqueeze(0) for b in bits], dim=0).unsqueeze(0))
    table = crypten.cat(wins, dim=0)  # [k, k-1, ...]: does class i win against each other
    while int(table.size(1)) > 1:  # product over the k-1 bits, one round per level
        half = int(table.size(1)) // 2
        product = table[:, :half] * table[:, half : 2 * half]
        table = crypten.cat([product, table[:, 2 * half :]], dim=1) if int(table.size(1)) % 2 else product
    one_hot = table[:, 0]  # [k, ...]
    classes_first = crypten.cat([value[..., i].unsqueeze(0) for i in range(classes)], dim=0)
    return (one_hot * classes_first).sum(0).unsqueeze(-1)
