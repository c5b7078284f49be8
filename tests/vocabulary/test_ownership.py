"""The ownership arithmetic: known answers, and sums that always come out exact."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mutualmind.errors import InvalidInput, RuleViolation
from mutualmind.vocabulary.ownership import (
    UNITS_PER_MODEL,
    dividend_split,
    has_majority,
    inference_fee,
    units_for_earnings,
)

ids = st.text("abcdefgh", min_size=1, max_size=4)


def test_known_answers() -> None:
    assert units_for_earnings({"bob": 857, "alice": 2143}) == {"alice": 714_333, "bob": 285_667}
    assert units_for_earnings({"b": 1, "a": 1, "c": 1}) == {"a": 333_334, "b": 333_333, "c": 333_333}
    assert units_for_earnings({"a": 5, "zero": 0}) == {"a": UNITS_PER_MODEL}
    assert [inference_fee(7, rows) for rows in (1, 999, 1000, 1001, 2500)] == [7, 7, 7, 14, 21]
    assert dividend_split(21, {"alice": 714_333, "bob": 285_667, "gone": 0}) == {"alice": 15, "bob": 6}
    assert dividend_split(1, {"a": 500_000, "b": 500_000}) == {"a": 1}   # tie to the smaller id
    assert not has_majority(500_000) and has_majority(500_001)


def test_refusals() -> None:
    with pytest.raises(RuleViolation) as caught:
        units_for_earnings({"a": 0})
    assert caught.value.rule == "nothing_earned"
    with pytest.raises(RuleViolation) as caught:
        dividend_split(0, {"a": 1})
    assert caught.value.rule == "nothing_to_pay"
    with pytest.raises(RuleViolation) as caught:
        inference_fee(0, 10)
    assert caught.value.rule == "not_for_sale"
    with pytest.raises(RuleViolation) as caught:
        inference_fee(2**61, 2001)
    assert caught.value.rule == "amount_too_large"
    with pytest.raises(InvalidInput):
        inference_fee(7, 0)
    with pytest.raises(InvalidInput):
        units_for_earnings({"a": -1})


@given(st.dictionaries(ids, st.integers(0, 10**15), min_size=1).filter(lambda d: any(d.values())))
def test_units_always_add_up_and_follow_earnings(earnings: dict[str, int]) -> None:
    units = units_for_earnings(earnings)
    assert sum(units.values()) == UNITS_PER_MODEL
    assert set(units) <= {p for p, e in earnings.items() if e > 0}
    total = sum(earnings.values())
    for party, held in units.items():   # within one unit of the exact share
        assert abs(held * total - earnings[party] * UNITS_PER_MODEL) < total


@given(st.integers(1, 10**12), st.dictionaries(ids, st.integers(0, UNITS_PER_MODEL), min_size=1)
       .filter(lambda d: any(d.values())))
def test_dividends_always_add_up(amount: int, units: dict[str, int]) -> None:
    parts = dividend_split(amount, units)
    assert sum(parts.values()) == amount and all(v > 0 for v in parts.values())


@given(st.integers(1, 10**6), st.integers(1, 10**7))
def test_every_started_thousand_rows_is_paid(price: int, rows: int) -> None:
    fee = inference_fee(price, rows)
    assert fee % price == 0 and (fee // price - 1) * 1000 < rows <= fee // price * 1000
