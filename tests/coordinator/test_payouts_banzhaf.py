"""Payouts with error bands (Data Banzhaf by sampling): no payout for a value within
noise, no slash unless the value is below -epsilon across its whole band, supply kept."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.payouts import Participant, settle
from mutualmind.vocabulary.valuation import K_SIGMA


def _people(values: list[tuple[int, int]]) -> list[Participant]:
    return [Participant(f"d{i}", f"p{i}", 1000, value, error) for i, (value, error) in enumerate(values)]


def test_a_value_within_its_noise_earns_nothing_and_is_not_slashed() -> None:
    # d0 clearly positive, d1 positive but within 2 errors, d2 negative within its band,
    # d3 negative beyond its band
    people = _people([(20_000, 1_000), (5_000, 3_000), (-6_000, 3_000), (-20_000, 2_000)])
    result = settle(people, pool=1000, sponsor="s", slash_rate_ppm=500_000, epsilon_micro=1000)
    assert result.slashes == {"d3": 500}
    assert result.payouts == {"p0": 1500}


def test_payouts_are_pro_rata_to_the_lower_bound() -> None:
    people = _people([(20_000, 5_000), (20_000, 0)])  # lower bounds 10,000 and 20,000
    result = settle(people, pool=3000, sponsor="s", slash_rate_ppm=0, epsilon_micro=1000)
    assert result.payouts == {"p0": 1000, "p1": 2000}


def test_zero_errors_are_the_leave_one_out_rule() -> None:
    values = [12_500, -19_000, 7_900, 14_700, 12_500, 900, -1_000]
    plain = settle([Participant(f"d{i}", f"p{i}", 1000, v) for i, v in enumerate(values)],
                   pool=5000, sponsor="s", slash_rate_ppm=500_000, epsilon_micro=1000)
    banded = settle(_people([(v, 0) for v in values]), pool=5000, sponsor="s", slash_rate_ppm=500_000,
                    epsilon_micro=1000)
    assert plain == banded


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.tuples(st.integers(-100_000, 100_000), st.integers(0, 50_000)), min_size=1, max_size=12),
       pool=st.integers(0, 10**9), rate=st.integers(0, 1_000_000), epsilon=st.integers(0, 10_000))
def test_supply_is_conserved_and_noise_never_pays(values: list[tuple[int, int]], pool: int, rate: int,
                                                   epsilon: int) -> None:
    people = _people(values)
    result = settle(people, pool=pool, sponsor="s", slash_rate_ppm=rate, epsilon_micro=epsilon)
    assert sum(result.payouts.values()) == pool + sum(result.slashes.values())
    for p in people:
        low, high = p.contribution_micro - K_SIGMA * p.error_micro, p.contribution_micro + K_SIGMA * p.error_micro
        if low <= epsilon:
            assert p.provider_id not in result.payouts
        if p.dataset_id in result.slashes:
            assert high < -epsilon
        elif high < -epsilon and p.stake * rate // 1_000_000 > 0:
            raise AssertionError(f"{p} should have been slashed")
