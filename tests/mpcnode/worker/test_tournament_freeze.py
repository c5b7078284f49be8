"""The freeze's batched training and the resolution's per-dataset variants, on the
plaintext backend (the same code the MPC worker runs; the MPC path is exercised end to
end in tests/coordinator/rounds/test_tournament.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer

from mpcnode.worker.backend import PlainBackend
from mpcnode.worker.metamodel import _weight_rows, plaintext_resolution
from mpcnode.worker.tournament_run import SubsetMasks, train_frozen, variant_sets
from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.column_scale import column_exponent
from mutualmind.vocabulary.model_spec import parse_model_spec
from mutualmind.vocabulary.tournament_job import WorkerModel

LOGISTIC = parse_model_spec({"kind": "logistic", "epochs": 8})
MLP = parse_model_spec({"kind": "mlp", "hidden": 4, "epochs": 8})
DATASETS = ("d0", "d1", "d2")
ROWS = (60, 60, 60)


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(3).permutation(len(x))
    x, y = x[order][:, :8], y[order].astype(np.float64)
    x = np.ldexp(x, -np.array([column_exponent(float(m)) for m in np.abs(x).max(axis=0)]))
    y[120:180] = 1 - y[120:180]                      # d2's labels flipped
    t = torch.tensor
    return t(x[:180]), t(y[:180]).reshape(-1, 1), t(x[300:420]), t(y[300:420]).reshape(-1, 1)


def _frozen(models: list[WorkerModel], x: torch.Tensor, y: torch.Tensor) -> list[list[dict[str, torch.Tensor]]]:
    return train_frozen(PlainBackend(), models, DATASETS, x.clone(), y.clone(), ROWS)


def test_masks_let_each_model_see_its_datasets_only() -> None:
    masks = SubsetMasks.of([2, 1, 2], [{1, 3}, set(), {2}])
    assert masks.batch(None).squeeze(-1).tolist() == [[1, 1, 0, 1, 1], [0, 0, 0, 0, 0], [0, 0, 1, 0, 0]]
    assert masks.batch(torch.tensor([4, 2])).squeeze(-1).tolist() == [[1, 0], [0, 0], [0, 1]]
    model = WorkerModel("m", LOGISTIC, ("d2", "d0"))
    assert variant_sets(model, DATASETS) == [{3, 1}, {1}, {3}]   # all, without d2, without d0


def test_batched_training_equals_training_each_model_alone(data) -> None:  # type: ignore[no-untyped-def]
    x, y, _, _ = data
    a, b, c = (WorkerModel("a", LOGISTIC, ("d0", "d1")), WorkerModel("b", LOGISTIC, ("d2",)),
               WorkerModel("c", MLP, ("d0",)))
    together = _frozen([a, b, c], x, y)
    assert [len(v) for v in together] == [3, 2, 2]
    alone = _frozen([a], x, y)[0]
    only_d0 = _frozen([WorkerModel("a0", LOGISTIC, ("d0",))], x, y)[0][0]
    for name in ("weight", "bias"):
        assert torch.allclose(together[0][0][name], alone[0][name])          # batching changes nothing
        assert torch.allclose(together[0][2][name], only_d0[name])           # a without d1 = a on d0
        assert not torch.allclose(together[0][0][name], together[0][1][name])
        assert torch.count_nonzero(together[1][1][name]) == 0                # b without its only dataset: untrained
    assert set(together[2][0]) >= {"hidden_weight", "hidden_bias", "normalise_mean", "normalise_scale"}


def test_a_dataset_that_hurt_its_model_has_a_negative_contribution(data) -> None:  # type: ignore[no-untyped-def]
    x, y, rx, ry = data
    models = [WorkerModel("good", LOGISTIC, ("d0", "d1")), WorkerModel("mixed", LOGISTIC, ("d1", "d2"))]
    frozen = _frozen(models, x, y)
    specs = [LOGISTIC] * 2 + [LOGISTIC] * 4
    variants = [0, 0, 1, 1]
    weights = [frozen[0][0], frozen[1][0], *frozen[0][1:], *frozen[1][1:]]
    got = plaintext_resolution("log_loss", specs, weights, rx, ry, [300, 300], 1_000_000, variants)
    good_d0, good_d1, mixed_d1, mixed_d2 = got.variant_contributions_micro
    assert got.contributions_micro[0] > 0 > got.contributions_micro[1]
    assert mixed_d2 < 0 < mixed_d1            # the flipped labels hurt the model that used them
    assert good_d0 > 0 and good_d1 > 0
    # a variant identical to its model contributes exactly nothing
    same = plaintext_resolution("log_loss", [LOGISTIC] * 3, [*weights[:2], weights[0]], rx, ry, [300, 300],
                                1_000_000, [0])
    assert same.variant_contributions_micro == [0]
    assert same.contributions_micro == got.contributions_micro
    with pytest.raises(InvalidInput):
        plaintext_resolution("log_loss", [LOGISTIC] * 3, weights[:3], rx, ry, [300, 300], 1_000_000, [2])


def test_a_variant_takes_its_models_weight() -> None:
    rows = _weight_rows([300, 100], 1_000_000, [1, 0])
    assert rows.tolist() == [
        [750_000, 250_000, 0, 0],            # the metamodel
        [0, 1_000_000, 0, 0],                # without model 0
        [1_000_000, 0, 0, 0],                # without model 1
        [750_000, 0, 250_000, 0],            # model 1's variant in its place
        [0, 250_000, 0, 750_000],            # model 0's variant in its place
    ]


def test_a_copy_and_its_original_leave_and_stand_in_as_one_group() -> None:
    rows = _weight_rows([300, 100, 300], 1_000_000, [0], [0, 1, 0])
    assert rows.tolist() == [
        [428_572, 142_857, 428_571, 0],      # the metamodel
        [0, 1_000_000, 0, 0],                # without model 0 and its copy
        [500_000, 0, 500_000, 0],            # without model 1
        [0, 1_000_000, 0, 0],                # without model 2 and its original
        [0, 142_857, 0, 857_143],            # model 0's variant in the group's place
    ]


def test_a_copy_shares_one_contribution_with_its_original(data) -> None:  # type: ignore[no-untyped-def]
    """The group [good, its copy] weighs and leaves as one model: each gets the group's
    contribution, the one a single model with their joint stake would have."""
    x, y, rx, ry = data
    models = [WorkerModel("good", LOGISTIC, ("d0", "d1")), WorkerModel("mixed", LOGISTIC, ("d1", "d2"))]
    frozen = _frozen(models, x, y)
    weights = [frozen[0][0], frozen[1][0], frozen[0][0]]
    grouped = plaintext_resolution("log_loss", [LOGISTIC] * 3, weights, rx, ry, [300, 300, 300], 1_000_000,
                                   leaders=[0, 1, 0])
    joint = plaintext_resolution("log_loss", [LOGISTIC] * 2, weights[:2], rx, ry, [600, 300], 1_000_000)
    assert grouped.contributions_micro[0] == grouped.contributions_micro[2] == joint.contributions_micro[0] > 0
    assert grouped.metamodel_metric_micro == joint.metamodel_metric_micro
