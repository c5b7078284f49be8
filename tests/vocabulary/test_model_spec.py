"""Model specs are untrusted JSON: strict parsing, typed refusals, canonical form."""

from __future__ import annotations

import json

import pytest

from mutualmind.errors import Aborted, InvalidInput
from mutualmind.vocabulary.column_scale import check_labels_fit_model
from mutualmind.vocabulary.model_spec import (
    check_plausible,
    contributions_micro,
    parse_model_spec,
    to_micro,
)


def test_defaults_fill_task_metric_and_classes_per_kind() -> None:
    assert parse_model_spec({"kind": "logistic"}).task == "binary"
    linear = parse_model_spec({"kind": "linear"})
    assert (linear.task, linear.metric, linear.outputs) == ("regression", "mse", 1)
    softmax = parse_model_spec({"kind": "softmax", "classes": 3})
    assert (softmax.task, softmax.outputs, softmax.metric) == ("multiclass", 3, "log_loss")
    mlp = parse_model_spec('{"kind": "mlp", "hidden": 4, "task": "multiclass", "classes": 3}')
    assert (mlp.hidden, mlp.outputs) == (4, 3)


def test_canonical_json_round_trips() -> None:
    spec = parse_model_spec({"kind": "mlp", "lr": 1, "epochs": 3})
    text = spec.to_json()
    assert " " not in text and list(json.loads(text)) == sorted(json.loads(text))
    assert parse_model_spec(text) == spec


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ({"kind": "forest"}, "not supported"),
        ({"kind": "logistic", "learning_rate": 1}, "unknown fields"),
        ({"kind": "logistic", "epochs": "10"}, "'epochs' must be a int"),
        ({"kind": "logistic", "epochs": True}, "'epochs' must be a int"),
        ({"kind": "logistic", "lr": 0}, "learning rate"),
        ({"kind": "logistic", "epochs": 0}, "epochs"),
        ({"kind": "logistic", "l2": -1.0}, "L2"),
        ({"kind": "logistic", "task": "regression"}, "solves a binary task"),
        ({"kind": "linear", "metric": "accuracy"}, "valued by mse"),
        ({"kind": "logistic", "metric": "mse"}, "not mse"),
        ({"kind": "softmax", "classes": 1}, "classes"),
        ({"kind": "logistic", "classes": 3}, "2 classes"),
        ({"kind": "mlp", "hidden": 0}, "hidden width"),
    ],
)
def test_bad_specs_are_refused_with_the_field_named(raw: object, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        parse_model_spec(raw)  # type: ignore[arg-type]


def test_contribution_sign_means_better_for_every_metric() -> None:
    # log-loss: lower is better; without provider 1 the loss rises (it helped), without
    # provider 2 it falls (it hurt)
    assert contributions_micro([to_micro(m) for m in (0.20, 0.25, 0.15)], "log_loss") == [50_000, -50_000]
    assert contributions_micro([to_micro(m) for m in (0.90, 0.80, 0.95)], "accuracy") == [100_000, -50_000]
    assert contributions_micro([to_micro(m) for m in (10.0, 12.0, 9.0)], "mse") == [2_000_000, -1_000_000]
    with pytest.raises(InvalidInput):
        contributions_micro([100_000], "log_loss")
    with pytest.raises(InvalidInput):
        contributions_micro([1, 2], "auc")


def test_impossible_revealed_values_abort_instead_of_being_signed() -> None:
    check_plausible([0.2, 0.19, 0.25], "log_loss")
    check_plausible([1.0, 0.0], "accuracy")
    check_plausible([3000.0, 2900.0], "mse")
    for values, metric in (
        ([0.2, 3.26e9], "log_loss"),  # the garbage a wrapped truncation produces
        ([0.2, -0.5], "log_loss"),
        ([1.5], "accuracy"),
        ([float("nan")], "mse"),
        ([-1.0], "mse"),
    ):
        with pytest.raises(Aborted, match="smaller lr") as caught:
            check_plausible(values, metric, lr=1.0)
        # a deterministic failure: asking for a re-run would only fail again
        assert "again gives the same result" in caught.value.message
        assert "re-run the round" not in caught.value.message


@pytest.mark.parametrize(("label_classes", "kind", "fits"), [
    (2, {"kind": "logistic"}, True),
    (0, {"kind": "logistic"}, False),          # a real-valued target in a binary round
    (3, {"kind": "logistic"}, False),
    (3, {"kind": "softmax", "classes": 3}, True),
    (4, {"kind": "softmax", "classes": 3}, False),  # labels up to 3 for a 3-class model
    (0, {"kind": "linear"}, True),
    (2, {"kind": "linear"}, False),
    (2, {"kind": "mlp", "task": "binary"}, True),
])
def test_declared_labels_are_checked_against_the_model_task(label_classes: int, kind: dict, fits: bool) -> None:
    spec = parse_model_spec(kind)
    if fits:
        check_labels_fit_model("clinic-1", label_classes, spec.task, spec.classes)
        return
    with pytest.raises(InvalidInput, match="dataset 'clinic-1' declares"):
        check_labels_fit_model("clinic-1", label_classes, spec.task, spec.classes)


def test_regression_defaults_to_a_learning_rate_that_converges() -> None:
    assert parse_model_spec({"kind": "linear"}).lr == 0.1
    assert parse_model_spec({"kind": "mlp", "task": "regression"}).lr == 0.1
    assert parse_model_spec({"kind": "linear", "lr": 0.5}).lr == 0.5
    assert parse_model_spec({"kind": "logistic"}).lr == 1.0


def test_the_workload_cap_counts_the_leave_one_out_newton_step_under_version_2() -> None:
    """loo newton_step trains the full model, then (as it was when version 2 was made)
    takes one more pass over the rows: version 2 counts it like an epoch; version 3
    counts the epochs only, the step being the last of them now (newton.py)."""
    from mutualmind.vocabulary.model_spec import MAX_ROW_EPOCHS, check_workload, training_steps

    retrain = parse_model_spec({"solver": "newton", "l2": 0.01, "epochs": 9})
    stepped = parse_model_spec({"solver": "newton", "l2": 0.01, "epochs": 9, "loo": "newton_step"})
    assert training_steps(retrain, 10_000, 2) == 9 and training_steps(stepped, 10_000, 2) == 10
    assert training_steps(stepped, 10_000, 3) == 9
    rows = MAX_ROW_EPOCHS // 10
    check_workload(retrain, rows + 1, 2)     # 9 passes fit
    check_workload(stepped, rows, 2)         # 10 passes, exactly at the cap
    with pytest.raises(InvalidInput, match="leave-one-out Newton step"):
        check_workload(stepped, rows + 1, 2)
    check_workload(stepped, rows + 1, 3)     # 9 passes under version 3
