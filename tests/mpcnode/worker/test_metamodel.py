"""The tournament resolution (mpcnode/worker/metamodel.py) in real CrypTen against the
plaintext reference, on four logistic models of breast cancer.

Models (trained in plaintext by the worker's own `train_masked`: training is not what is
tested here): A and B on the two halves of the training rows, F on A's half with the
labels flipped, C a copy of A. Resolution: the 299 held-out rows. CrypTen runs as one
party in this process (as in test_backend_contract.py): the arithmetic is CrypTen's
fixed point, approximations and truncations; the multi-party cost is measured by
bench/tournament.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes

from mpcnode.worker.backend import CrypTenBackend, PlainBackend
from mpcnode.worker.evaluation import PROBABILITY_SMOOTHING
from mpcnode.worker.metamodel import Resolution, plaintext_resolution, resolve
from mpcnode.worker.row_masks import RowMasks
from mpcnode.worker.training import (
    LABEL_MEAN,
    LABEL_SCALE,
    NORMALISE_MEAN,
    NORMALISE_SCALE,
    train_masked,
)
from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.column_scale import column_exponent
from mutualmind.vocabulary.metamodel_weights import metamodel_weights
from mutualmind.vocabulary.model_spec import ModelSpec, parse_model_spec

SPEC = parse_model_spec({"kind": "logistic", "epochs": 20})
STAKES = [400, 300, 200, 400]   # A, B, flipped, copy of A
CAP = 300_000                   # binds: A and its copy would weigh 0.308 each
MICRO_TOLERANCE = 3_000         # 0.003 on each metric (CrypTen's 16-bit fixed point, log)


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(7).permutation(len(x))
    x, y = x[order], y[order].astype(np.float64)
    # each column divided by its public power of two, as providers share it
    exponents = np.array([column_exponent(float(m)) for m in np.abs(x).max(axis=0)])
    x = np.ldexp(x, -exponents)
    return x[:270], y[:270], x[270:], y[270:]


def _train(x: np.ndarray, y: np.ndarray, spec: ModelSpec = SPEC) -> dict[str, torch.Tensor]:
    tx, ty = torch.tensor(x), torch.tensor(y).reshape(-1, 1)
    result = train_masked(PlainBackend(), spec, tx, ty, tx[:2].clone(), ty[:2].clone(), RowMasks.everyone(len(x)))
    return {name: value.detach().clone() for name, value in result.weights.items()}


@pytest.fixture(scope="module")
def tournament() -> tuple[list[dict[str, torch.Tensor]], torch.Tensor, torch.Tensor]:
    tx, ty, rx, ry = _data()
    a, b = _train(tx[:135], ty[:135]), _train(tx[135:], ty[135:])
    flipped = _train(tx[:135], 1 - ty[:135])
    return [a, b, flipped, {k: v.clone() for k, v in a.items()}], torch.tensor(rx), torch.tensor(ry).reshape(-1, 1)


@pytest.fixture(scope="module")
def crypten_backend() -> Iterator[CrypTenBackend]:
    from mutualmind.crypten_compat import crypten

    crypten.init()
    try:
        yield CrypTenBackend()
    finally:
        crypten.uninit()


def _secret(models: list[dict[str, torch.Tensor]], x: torch.Tensor, y: torch.Tensor):  # type: ignore[no-untyped-def]
    from mutualmind.crypten_compat import crypten

    shared = [{k: crypten.cryptensor(v, src=0) for k, v in m.items()} for m in models]
    return shared, crypten.cryptensor(x, src=0), crypten.cryptensor(y, src=0)


def _numpy_metamodel(models: list[dict[str, torch.Tensor]], x: torch.Tensor, weights_ppm: list[int]) -> np.ndarray:
    """An independent formula: standardise per model, exact sigmoid, weighted mean."""
    out = np.zeros(len(x))
    for model, w in zip(models, weights_ppm, strict=True):
        z = ((x - model[NORMALISE_MEAN]) * model[NORMALISE_SCALE]).numpy() @ model["weight"].numpy() + model["bias"].numpy()
        out += w / 1e6 / (1 + np.exp(-z.reshape(-1)))
    return out


def _log_loss(p: np.ndarray, label: np.ndarray) -> float:
    """Mean -log(probability of the true label), smoothed into [e, 1 - e]."""
    smoothed = PROBABILITY_SMOOTHING + (1 - 2 * PROBABILITY_SMOOTHING) * np.where(label == 1, p, 1 - p)
    return float(-np.mean(np.log(smoothed)))


def test_the_reference_is_the_formula(tournament) -> None:  # type: ignore[no-untyped-def]
    models, x, y = tournament
    got = plaintext_resolution("log_loss", [SPEC] * 4, models, x, y, STAKES, CAP)
    assert got.weights_ppm == [300_000, 240_000, 160_000, 300_000]  # capped, rest by stake
    label = y.numpy().reshape(-1)
    assert abs(got.metamodel_metric - _log_loss(_numpy_metamodel(models, x, got.weights_ppm), label)) < 1e-9
    # the metamodel without the flipped model: the rule re-run on A, B, C's stakes
    without = metamodel_weights([400, 300, 0, 400], CAP)
    assert without == [1_000_000 // 3 + 1, 1_000_000 // 3, 0, 1_000_000 // 3]  # cap can't hold: equal
    assert abs(got.without_metrics[2] - _log_loss(_numpy_metamodel(models, x, without), label)) < 1e-9


@pytest.mark.parametrize(("metric", "cap"), [("log_loss", CAP), ("accuracy", 1_000_000)])
def test_mpc_matches_the_reference(tournament, crypten_backend, metric: str, cap: int) -> None:  # type: ignore[no-untyped-def]
    models, x, y = tournament
    want = plaintext_resolution(metric, [SPEC] * 4, models, x, y, STAKES, cap)
    shared, secret_x, secret_y = _secret(models, x, y)
    got = resolve(crypten_backend, metric, [SPEC] * 4, shared, secret_x, secret_y, STAKES, cap)
    assert got.weights_ppm == want.weights_ppm
    assert abs(got.metamodel_metric_micro - want.metamodel_metric_micro) <= MICRO_TOLERANCE, (got, want)
    gaps = [abs(a - b) for a, b in zip(got.contributions_micro, want.contributions_micro, strict=True)]
    assert max(gaps) <= MICRO_TOLERANCE, (got, want)
    _check_economics(got)


def _check_economics(result: Resolution) -> None:
    """Log-loss: the flipped model hurts, the good ones help. Accuracy is coarse: at
    weight 0.15 the flipped model changes no row's side of 1/2 (observed: contribution 0;
    A and its copy -6,689 each, two rows of 299 - each alone is redundant)."""
    a, b, flipped, copy = result.contributions_micro
    if result.metric == "log_loss":
        assert flipped < 0  # the flipped-label model makes the metamodel worse
        assert b > 0 and a > 0
    else:
        assert flipped <= 0


def test_the_copy_earns_much_less_than_alone(tournament) -> None:  # type: ignore[no-untyped-def]
    """With its copy present A adds little (dropping it leaves the copy's predictions,
    only reweighted); without the copy A's contribution is much larger. Observed
    (log-loss, millionths, no cap): A and its copy +71,648 each; A in the same tournament
    without the copy +220,730 (0.32x); even the pair's sum (143,296) is below A alone."""
    models, x, y = tournament
    with_copy = plaintext_resolution("log_loss", [SPEC] * 4, models, x, y, STAKES, 1_000_000)
    alone = plaintext_resolution("log_loss", [SPEC] * 3, models[:3], x, y, STAKES[:3], 1_000_000)
    assert with_copy.contributions_micro[0] == with_copy.contributions_micro[3]  # same model, same credit
    assert 0 < alone.contributions_micro[0]
    assert 2 * with_copy.contributions_micro[0] < alone.contributions_micro[0], (with_copy, alone)


def test_linear_models_in_mpc_match_the_reference_and_the_formula(crypten_backend) -> None:  # type: ignore[no-untyped-def]
    """Diabetes, three linear models: two on the halves of the training rows, one on
    shuffled targets (noise). The MSE is in units of the resolution target's variance."""
    x, y = load_diabetes(return_X_y=True)
    order = np.random.default_rng(3).permutation(len(x))
    x, y = x[order] / 0.25, y[order] / 512  # providers' powers of two: values within 1
    linear = parse_model_spec({"kind": "linear", "epochs": 20})
    noise = np.random.default_rng(4).permutation(y[:150])
    models = [_train(x[:150], y[:150], linear), _train(x[150:300], y[150:300], linear), _train(x[:150], noise, linear)]
    rx, ry = torch.tensor(x[300:]), torch.tensor(y[300:]).reshape(-1, 1)
    stakes = [300, 300, 200]
    want = plaintext_resolution("mse", [linear] * 3, models, rx, ry, stakes, 1_000_000)
    # the formula: each model's raw-unit predictions, weighted, against the standardised target
    raw = [(((rx - m[NORMALISE_MEAN]) * m[NORMALISE_SCALE]) @ m["weight"] + m["bias"]) / m[LABEL_SCALE] + m[LABEL_MEAN]
           for m in models]
    mixed = sum(w / 1e6 * r for w, r in zip(want.weights_ppm, raw, strict=True))
    assert isinstance(mixed, torch.Tensor)
    mean, std = ry.mean(), ry.std(unbiased=False)
    assert abs(want.metamodel_metric - float((((mixed - mean) / std - (ry - mean) / std) ** 2).mean())) < 1e-9
    assert want.contributions_micro[2] < 0 < min(want.contributions_micro[:2])
    from mutualmind.crypten_compat import crypten

    shared = [{k: crypten.cryptensor(v, src=0) for k, v in m.items()} for m in models]
    got = resolve(crypten_backend, "mse", [linear] * 3, shared, crypten.cryptensor(rx, src=0),
                  crypten.cryptensor(ry, src=0), stakes, 1_000_000)
    gaps = [abs(a - b) for a, b in zip([got.metamodel_metric_micro, *got.contributions_micro],
                                       [want.metamodel_metric_micro, *want.contributions_micro], strict=True)]
    assert max(gaps) <= MICRO_TOLERANCE, (got, want)


def test_a_logistic_model_and_an_mlp_in_one_metamodel(tournament, crypten_backend) -> None:  # type: ignore[no-untyped-def]
    """Kinds mix when they solve the same task: the MLP's first layer takes the folded
    standardisation like the logistic model's only layer."""
    models, x, y = tournament
    tx, ty, _, _ = _data()
    mlp = parse_model_spec({"kind": "mlp", "hidden": 4, "epochs": 10, "lr": 0.5})
    pair, specs, stakes = [models[1], _train(tx[:135], ty[:135], mlp)], [SPEC, mlp], [300, 500]
    want = plaintext_resolution("log_loss", specs, pair, x, y, stakes, 1_000_000)
    m = pair[1]
    hidden = torch.relu(((x - m[NORMALISE_MEAN]) * m[NORMALISE_SCALE]) @ m["hidden_weight"] + m["hidden_bias"])
    p_mlp = torch.sigmoid(hidden @ m["weight"] + m["bias"]).numpy().reshape(-1)
    p = _numpy_metamodel(pair[:1], x, [375_000]) + 0.625 * p_mlp
    assert abs(want.metamodel_metric - _log_loss(p, y.numpy().reshape(-1))) < 1e-9
    shared, secret_x, secret_y = _secret(pair, x, y)
    got = resolve(crypten_backend, "log_loss", specs, shared, secret_x, secret_y, stakes, 1_000_000)
    gaps = [abs(a - b) for a, b in zip([got.metamodel_metric_micro, *got.contributions_micro],
                                       [want.metamodel_metric_micro, *want.contributions_micro], strict=True)]
    assert max(gaps) <= MICRO_TOLERANCE, (got, want)


def test_unsupported_kinds_and_shapes_are_refused(tournament) -> None:  # type: ignore[no-untyped-def]
    models, x, y = tournament
    softmax = parse_model_spec({"kind": "softmax", "classes": 3})
    with pytest.raises(InvalidInput, match="task"):   # a multiclass model in a binary metamodel
        plaintext_resolution("log_loss", [SPEC, softmax], models[:2], x, y, [1, 1], CAP)
    with pytest.raises(InvalidInput, match="task"):
        plaintext_resolution("mse", [SPEC], models[:1], x, y, [1], CAP)
    with pytest.raises(InvalidInput, match="one stake per model"):
        plaintext_resolution("log_loss", [SPEC] * 2, models[:2], x, y, [1], CAP)
    with pytest.raises(InvalidInput, match="features"):
        plaintext_resolution("log_loss", [SPEC], models[:1], x[:, :5], y, [1], CAP)
