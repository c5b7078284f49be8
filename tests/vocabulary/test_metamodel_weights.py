"""The metamodel's weight rule (mutualmind/vocabulary/metamodel_weights.py): exact
water-filling on public stakes, integer ppm, never above the cap."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.metamodel_weights import (
    PPM,
    copy_leaders,
    leave_one_out_weights,
    metamodel_weights,
)


def test_known_answers() -> None:
    assert metamodel_weights([100, 100, 100, 100], PPM) == [250_000] * 4
    # 700 / 1000 is over the cap: fixed at 0.4, the other 0.6 shared by stake
    assert metamodel_weights([700, 100, 100, 100], 400_000) == [400_000, 200_000, 200_000, 200_000]
    # capping one model pushes another over: a second pass fixes it too
    assert metamodel_weights([500, 400, 100], 400_000) == [400_000, 400_000, 200_000]
    # the cap cannot hold (3 x 0.3 < 1): equal weights, remainder to the first
    assert metamodel_weights([1, 1, 5], 300_000) == [333_334, 333_333, 333_333]
    assert metamodel_weights([5, 0, 3], PPM) == [625_000, 0, 375_000]


def test_leave_one_out_reruns_the_rule_on_the_others() -> None:
    assert leave_one_out_weights([700, 100, 100, 100], 400_000) == [
        [0, 333_334, 333_333, 333_333],
        [400_000, 0, 300_000, 300_000],
        [400_000, 300_000, 0, 300_000],
        [400_000, 300_000, 300_000, 0],
    ]
    assert leave_one_out_weights([7], PPM) == [[0]]  # nothing left: the baseline


def test_copies_are_the_same_recipe_on_the_same_datasets_and_leave_as_a_group() -> None:
    a, b = {"kind": "logistic", "epochs": 20}, {"kind": "logistic", "epochs": 21}
    assert copy_leaders([(a, ["x", "y"]), (b, ["x", "y"]), (a, ["y", "x"]), (a, ["x", "z"]), (b, ["y", "x"])]) \
        == [0, 1, 0, 3, 1]
    # model 2 copies model 0: leaving either out leaves both out, the rule re-run on model 1
    assert leave_one_out_weights([100, 100, 100], PPM, [0, 1, 0]) == [
        [0, PPM, 0], [500_000, 0, 500_000], [0, PPM, 0]]
    with pytest.raises(InvalidInput):
        leave_one_out_weights([1, 1], PPM, [1, 1])  # a leader after its copy


@pytest.mark.parametrize(("stakes", "cap"), [([], PPM), ([1, -1], PPM), ([0, 0], PPM), ([1], 0), ([1], PPM + 1)])
def test_bad_input_is_refused(stakes: list[int], cap: int) -> None:
    with pytest.raises(InvalidInput):
        metamodel_weights(stakes, cap)


@given(st.lists(st.integers(0, 10**12), min_size=1, max_size=12).filter(any), st.integers(1, PPM))
def test_weights_sum_to_one_and_respect_the_cap(stakes: list[int], cap: int) -> None:
    weights = metamodel_weights(stakes, cap)
    assert sum(weights) == PPM
    assert all(w == 0 for w, s in zip(weights, stakes, strict=True) if s == 0)
    staked = sum(1 for s in stakes if s)
    if cap * staked >= PPM:
        assert max(weights) <= cap
        # uncapped models keep the order of their stakes
        free = sorted((s, w) for s, w in zip(stakes, weights, strict=True) if s and w < cap)
        assert all(a[1] <= b[1] + 1 for a, b in zip(free, free[1:]))
