"""Workload rule version 3 counts a round's job part by part, as the worker computes it."""

from __future__ import annotations

import pytest

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.model_spec import parse_model_spec
from mutualmind.vocabulary.workload import MAX_WORK, SOLVE_ROWS, check_round_workload, job_work

NEWTON = {"kind": "logistic", "solver": "newton", "l2": 0.01, "epochs": 6}


def test_a_retrain_counts_every_model_on_every_row_and_the_newton_step_one_model() -> None:
    retrain = job_work(parse_model_spec(NEWTON), 800, 4, 400)
    assert (retrain.models, retrain.training, retrain.evaluation) == (5, 5 * 800 * 6, 5 * 400)
    assert retrain.solves == SOLVE_ROWS * 5 * 6
    stepped = job_work(parse_model_spec({**NEWTON, "loo": "newton_step"}), 800, 4, 400)
    assert (stepped.models, stepped.training, stepped.solves) == (5, 800 * 6, SOLVE_ROWS * (5 + 5))
    coalitions = job_work(parse_model_spec({**NEWTON, "loo": "newton_step", "valuation": "banzhaf"}), 800, 4, 400)
    assert (coalitions.models, coalitions.training, coalitions.evaluation) == (16, 800 * 6, 16 * 400)
    sgd = job_work(parse_model_spec({"kind": "logistic", "epochs": 10}), 800, 4, 400)
    assert (sgd.training, sgd.solves) == (5 * 800 * 10, 0)


def test_the_counts_follow_the_measured_bytes() -> None:
    """bench/valuation.py, 4 providers, 800 and 1,600 rows (docs/mpc.md): the bytes a
    5-model retrain adds per training row are ~4.2x one training's (each model on every
    row; the rule counts 5x, on the safe side), a Newton-step job's exactly one
    training's (its models cost per model, not per row)."""
    measured = {"loo_retrain": (169_120_760, 314_784_760), "newton_step": (54_524_616, 89_340_616),
                "single": (40_528_024, 75_344_024)}
    slope = {name: (big - small) / 800 for name, (small, big) in measured.items()}
    assert slope["newton_step"] == pytest.approx(slope["single"], rel=0.01)
    assert slope["loo_retrain"] / slope["single"] == pytest.approx(5, rel=0.2)
    retrain = job_work(parse_model_spec(NEWTON), 1600, 4, 400).training - job_work(parse_model_spec(NEWTON), 800, 4, 400).training
    stepped = parse_model_spec({**NEWTON, "loo": "newton_step"})
    step = job_work(stepped, 1600, 4, 400).training - job_work(stepped, 800, 4, 400).training
    assert retrain / step == 5


def test_a_job_over_the_cap_is_refused_naming_what_to_reduce() -> None:
    spec = parse_model_spec({"kind": "logistic", "epochs": 10})
    rows = MAX_WORK // (10 * 9) + 1    # 9 models: 8 providers
    with pytest.raises(InvalidInput, match="model-row passes") as caught:
        check_round_workload(spec, rows, 8, 100, 3)
    assert "include fewer datasets" in str(caught.value) and 'solver "newton"' in str(caught.value)
    check_round_workload(spec, rows, 8, 100, 2)     # version 2 did not count the models
    check_round_workload(spec, rows // 2, 8, 100, 3)
