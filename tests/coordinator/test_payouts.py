"""Payout arithmetic: exact sums, pro-rata order, slashing, the no-winner refund."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coordinator.payouts import Participant, largest_remainder_split, settle
from mutualmind.errors import InvalidInput


@given(
    total=st.integers(min_value=0, max_value=10**15),
    weights=st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=40),
)
def test_split_sums_to_total_and_is_fair(total: int, weights: list[int]) -> None:
    parts = largest_remainder_split(total, weights)
    assert sum(parts) == total
    weight_sum = sum(weights)
    for part, w in zip(parts, weights):
        exact = total * w / weight_sum
        assert exact - 1 < part < exact + 1       # never more than one unit off
    # a larger weight never gets less
    for i in range(len(weights)):
        for j in range(len(weights)):
            if weights[i] > weights[j]:
                assert parts[i] >= parts[j]


def test_split_known_answer_largest_remainder() -> None:
    # 10 over 1:1:1 -> 3.33 each; one leftover unit goes to the first (tie -> lower index)
    assert largest_remainder_split(10, [1, 1, 1]) == [4, 3, 3]
    # 100 over 1:2:3 -> 16.67, 33.33, 50 -> remainder to the first
    assert largest_remainder_split(100, [1, 2, 3]) == [17, 33, 50]


def test_split_rejects_bad_input() -> None:
    with pytest.raises(InvalidInput):
        largest_remainder_split(5, [])
    with pytest.raises(InvalidInput):
        largest_remainder_split(5, [1, 0])
    with pytest.raises(InvalidInput):
        largest_remainder_split(-1, [1])


def _p(i: int, c: int, stake: int = 1000) -> Participant:
    return Participant(dataset_id=f"d{i}", provider_id=f"p{i}", stake=stake, contribution_micro=c)


def test_settle_slashes_negative_and_pays_slash_to_winners() -> None:
    s = settle([_p(0, 30_000), _p(1, 10_000), _p(2, -50_000), _p(3, 5)],
               pool=1000, sponsor="sp", slash_rate_ppm=500_000, epsilon_micro=1_000)
    assert s.slashes == {"d2": 500}
    assert s.total_paid == 1500 and s.refund_to_sponsor == 0
    assert s.payouts == {"p0": 1125, "p1": 375}    # 3:1, p3 is within epsilon


def test_settle_without_winner_refunds_sponsor_with_slashes() -> None:
    s = settle([_p(0, -20_000), _p(1, 0)], pool=700, sponsor="sp",
               slash_rate_ppm=100_000, epsilon_micro=1_000)
    assert s.slashes == {"d0": 100}
    assert s.payouts == {"sp": 800} and s.refund_to_sponsor == 800


@given(
    contribs=st.lists(st.integers(min_value=-10**6, max_value=10**6), min_size=1, max_size=20),
    stakes=st.lists(st.integers(min_value=0, max_value=10**9), min_size=20, max_size=20),
    pool=st.integers(min_value=0, max_value=10**12),
    rate=st.integers(min_value=0, max_value=10**6),
    eps=st.integers(min_value=0, max_value=10**5),
)
def test_settle_conserves_tokens(contribs, stakes, pool, rate, eps) -> None:
    ps = [_p(i, c, stakes[i]) for i, c in enumerate(contribs)]
    s = settle(ps, pool=pool, sponsor="sp", slash_rate_ppm=rate, epsilon_micro=eps)
    assert s.total_paid == pool + sum(s.slashes.values())
    for p in ps:
        assert 0 <= s.slashes.get(p.dataset_id, 0) <= p.stake
        if p.contribution_micro >= -eps:
            assert p.dataset_id not in s.slashes
        if p.contribution_micro <= eps:
            assert s.payouts.get(p.provider_id, 0) == 0 or p.provider_id == "sp"


def test_a_copy_earns_nothing_is_slashed_and_the_original_keeps_its_value() -> None:
    """The copier's contribution (as large as the original's) takes no part in the split."""
    original, copier, honest = _p(0, 12_000), replace(_p(1, 11_900), is_copy=True), _p(2, 6_000)
    s = settle([original, copier, honest], pool=1_800, sponsor="sp", slash_rate_ppm=500_000, epsilon_micro=1_000)
    assert s.slashes == {"d1": 500}
    assert s.payouts == {"p0": 1_533, "p2": 767}  # 2,300 split 2:1 between the two others
    assert s.total_paid == 1_800 + 500
    # without the flag the copier would have taken about a third of the pool
    assert settle([original, replace(copier, is_copy=False), honest], pool=1_800, sponsor="sp",
                  slash_rate_ppm=500_000, epsilon_micro=1_000).payouts["p1"] > 600


def test_a_round_of_copies_only_returns_pool_and_slashes_to_the_sponsor() -> None:
    s = settle([replace(_p(0, 9_000), is_copy=True)], pool=100, sponsor="sp", slash_rate_ppm=200_000, epsilon_micro=0)
    assert s.slashes == {"d0": 200} and s.payouts == {"sp": 300} and s.refund_to_sponsor == 300


@given(
    contribs=st.lists(st.integers(min_value=-10**6, max_value=10**6), min_size=1, max_size=20),
    copies=st.lists(st.booleans(), min_size=20, max_size=20),
    stakes=st.lists(st.integers(min_value=0, max_value=10**9), min_size=20, max_size=20),
    pool=st.integers(min_value=0, max_value=10**12),
    rate=st.integers(min_value=0, max_value=10**6),
    eps=st.integers(min_value=0, max_value=10**5),
)
def test_copies_are_paid_nothing_slashed_at_the_rate_and_supply_is_conserved(contribs, copies, stakes, pool, rate, eps) -> None:
    ps = [Participant(f"d{i}", f"p{i}", stakes[i], c, is_copy=copies[i]) for i, c in enumerate(contribs)]
    s = settle(ps, pool=pool, sponsor="sp", slash_rate_ppm=rate, epsilon_micro=eps)
    assert s.total_paid == pool + sum(s.slashes.values())   # nothing created, nothing lost
    for p in ps:
        if p.is_copy:
            assert s.payouts.get(p.provider_id, 0) == 0
            assert s.slashes.get(p.dataset_id, 0) == p.stake * rate // 1_000_000
        elif p.contribution_micro >= -eps:
            assert p.dataset_id not in s.slashes
    honest_winners = [p for p in ps if not p.is_copy and p.contribution_micro > eps]
    if honest_winners:
        assert sum(s.payouts.get(p.provider_id, 0) for p in honest_winners) == s.total_paid
