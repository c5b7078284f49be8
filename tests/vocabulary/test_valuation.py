"""The Banzhaf vocabulary: strict spec field, the public coalition plan, the estimator,
and the contributions and errors derived from the signed values."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.model_spec import parse_model_spec
from mutualmind.vocabulary.valuation import (
    EXACT,
    EXACT_LIMIT,
    MIN_GROUP,
    MSR,
    MSR_SAMPLES,
    banzhaf_result_micro,
    estimate,
    model_count,
    msr_seed,
    plan,
    revealed_count,
    round_result_micro,
)


def test_valuation_is_a_strict_spec_field_defaulting_to_loo() -> None:
    assert parse_model_spec({}).valuation == "loo"
    assert parse_model_spec({"valuation": "banzhaf"}).valuation == "banzhaf"
    assert '"valuation":"banzhaf"' in parse_model_spec({"valuation": "banzhaf"}).to_json()
    for bad in ("shapley", "", "BANZHAF"):
        with pytest.raises(InvalidInput, match="valuation"):
            parse_model_spec({"valuation": bad})
    with pytest.raises(InvalidInput, match="valuation"):
        parse_model_spec({"valuation": 1})


def test_exact_up_to_the_limit_then_msr() -> None:
    seed = msr_seed("r", parse_model_spec({"valuation": "banzhaf"}).to_json(), ["a", "b"])
    exact = plan(EXACT_LIMIT, seed)
    assert exact.method == EXACT and exact.models == 2**EXACT_LIMIT and exact.first == 0
    assert exact.members[0] == (True,) * EXACT_LIMIT
    assert len(set(exact.members)) == 2**EXACT_LIMIT  # every coalition once
    sampled = plan(EXACT_LIMIT + 1, seed)
    assert sampled.method == MSR and sampled.models == MSR_SAMPLES + 1 and sampled.first == 1
    for i in range(EXACT_LIMIT + 1):
        inside = sum(s[i] for s in sampled.samples)
        assert MIN_GROUP <= inside <= MSR_SAMPLES - MIN_GROUP
        assert abs(inside - MSR_SAMPLES / 2) < 4 * math.sqrt(MSR_SAMPLES / 4)  # fair coins
    assert plan(EXACT_LIMIT + 1, seed) == sampled  # public and deterministic
    assert plan(EXACT_LIMIT + 1, msr_seed("other", "{}", ["a"])) != sampled
    # the job's beacon (drawn by the coordinator when the job starts) decides the sample
    spec = parse_model_spec({"valuation": "banzhaf"}).to_json()
    beaconed = plan(EXACT_LIMIT + 1, msr_seed("r", spec, ["a", "b"], "01" * 32))
    assert beaconed != sampled and beaconed != plan(EXACT_LIMIT + 1, msr_seed("r", spec, ["a", "b"], "02" * 32))
    assert model_count("banzhaf", 5) == 32 and model_count("banzhaf", 9) == MSR_SAMPLES + 1
    assert model_count("loo", 9) == 10 and revealed_count("banzhaf", 9) == 19


def test_exact_estimate_is_the_banzhaf_value_of_a_known_game() -> None:
    # U(S) = sum of weights in S + 1 if {0, 1} both in S: Banzhaf = w_i + 1/2 for 0 and 1
    weights = [0.3, -0.2, 0.1, 0.05]
    coalitions = plan(4, b"x")
    utilities = [sum(w for w, m in zip(weights, s) if m) + (1.0 if s[0] and s[1] else 0.0)
                 for s in coalitions.members]
    values, errors = estimate(utilities, coalitions)
    assert values == pytest.approx([0.8, 0.3, 0.1, 0.05])
    assert errors == [0.0] * 4


def test_msr_estimate_is_within_its_errors_of_the_exact_value() -> None:
    rng = random.Random(3)
    weights = [rng.uniform(-1, 1) for _ in range(6)]
    game = {s: sum(w for w, m in zip(weights, s) if m) + rng.gauss(0, 0.3)
            for s in itertools.product([False, True], repeat=6)}
    exact = plan(6, b"e")
    exact_values, _ = estimate([game[s] for s in exact.members], exact)
    sampled = plan(6, b"seed-7", method=MSR)
    values, errors = estimate([game[s] for s in sampled.members], sampled)
    for v, e, x in zip(values, errors, exact_values):
        assert e > 0 and abs(v - x) < 4 * e


def test_contributions_and_errors_from_the_signed_values() -> None:
    signed = [300_000, -20_000, 3_000, 4_000, 2_000]
    assert banzhaf_result_micro(signed, "log_loss", 2) == ([20_000, -3_000], [4_000, 2_000])
    assert banzhaf_result_micro(signed, "accuracy", 2) == ([-20_000, 3_000], [4_000, 2_000])
    with pytest.raises(InvalidInput, match="5 values"):
        banzhaf_result_micro(signed[:4], "log_loss", 2)
    with pytest.raises(InvalidInput, match="negative"):
        banzhaf_result_micro([1, 2, 3, -1, 0], "log_loss", 2)
    assert round_result_micro(signed, {"valuation": "banzhaf"}, 2)[1] == [4_000, 2_000]
    assert round_result_micro([900, 850, 910], {"kind": "logistic"}, 2) == ([-50, 10], None)
