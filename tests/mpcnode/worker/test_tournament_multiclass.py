"""A multiclass tournament in MPC: softmax models frozen by the freeze's batched pass
and resolved by the stake-weighted mean of their class-probability vectors.

Iris (3 classes) in three datasets of 30 rows; d2's labels are rotated (every label
one class off: a source that is systematically wrong). Model "good" sees d0 and d1,
model "rotated" sees d1 and d2. Three parties run as threads of this process on
in-memory links with the dealer (`plane_memory.run_parties`): each trains the models
with `train_frozen` on CrypTen shares, then runs `metamodel.resolve` on the 60
held-out rows, and reveals (for the test only) the trained models and the metamodel's
class probabilities. These must equal the plaintext stake-weighted (capped) mix of the
reconstructed models' softmax outputs, and the revealed numbers the plaintext
reference's on the reconstructed models.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris

from mpcnode.worker.backend import PlainBackend
from mpcnode.worker.metamodel import (
    _fold,
    _groups,
    _logits,
    _mix_classes,
    _weight_rows,
    plaintext_resolution,
)
from mpcnode.worker.plane_memory import run_parties
from mpcnode.worker.tournament_run import train_frozen
from mpcnode.worker.training import NORMALISE_MEAN, NORMALISE_SCALE
from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.column_scale import column_exponent
from mutualmind.vocabulary.fixed_point import FRAC_BITS
from mutualmind.vocabulary.metamodel_weights import metamodel_weights
from mutualmind.vocabulary.model_spec import parse_model_spec
from mutualmind.vocabulary.tournament_job import WorkerModel
from tests.mpcnode.worker.cluster import encode, split

PARTIES = 3
SOFTMAX = parse_model_spec({"kind": "softmax", "classes": 3, "epochs": 10, "lr": 1.0})
MODELS = [WorkerModel("good", SOFTMAX, ("d0", "d1")), WorkerModel("rotated", SOFTMAX, ("d1", "d2"))]
DATASETS, ROWS = ("d0", "d1", "d2"), (30, 30, 30)
STAKES, CAP_PPM = [300, 500], 600_000        # the cap binds: "rotated" would weigh 0.625, not 0.6
MICRO_TOLERANCE = 5_000                      # on each revealed metric (16-bit fixed point, log)


def _iris() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = load_iris(return_X_y=True)
    order = np.random.default_rng(11).permutation(len(x))
    x, y = x[order], y[order].astype(np.float64)
    x = np.ldexp(x, -np.array([column_exponent(float(m)) for m in np.abs(x).max(axis=0)]))
    y[60:90] = (y[60:90] + 1) % 3            # d2: every label one class off
    return x[:90], y[:90].reshape(-1, 1), x[90:], y[90:].reshape(-1, 1)


def _inputs(x: np.ndarray, y: np.ndarray, rx: np.ndarray, ry: np.ndarray) -> list[list[np.ndarray]]:
    """Each party's shares of the four tables."""
    tables = [split(encode(t), PARTIES) for t in (x, y, rx, ry)]
    return [[table[rank] for table in tables] for rank in range(PARTIES)]


def _variants(trained: list[list[Any]]) -> tuple[list[Any], list[int]]:
    """Full models then every per-dataset variant, and the model each variant stands for
    (the order `tournament_run._resolve` reads the frozen files in)."""
    full = [variants[0] for variants in trained]
    extra = [(k, v) for k, variants in enumerate(trained) for v in variants[1:]]
    return full + [v for _, v in extra], [k for k, _ in extra]


def _party(shares: list[np.ndarray]) -> dict[str, Any]:
    from crypten.mpc import MPCTensor

    from mpcnode.worker.backend import CrypTenBackend
    from mpcnode.worker.metamodel import resolve

    backend = CrypTenBackend()
    x, y, rx, ry = (MPCTensor.from_shares(torch.from_numpy(s), precision=FRAC_BITS) for s in shares)
    trained = train_frozen(backend, MODELS, DATASETS, x, y, ROWS)
    models, variants = _variants(trained)
    specs = [SOFTMAX] * len(models)
    result = resolve(backend, "log_loss", specs, models, rx, ry, STAKES, CAP_PPM, variants)
    accuracy = resolve(backend, "accuracy", specs[:len(MODELS)], models[:len(MODELS)], rx, ry, STAKES, CAP_PPM)
    full = models[:len(MODELS)]
    groups = _groups(specs[:len(MODELS)])
    folded = {key: _fold(backend, key, [full[i] for i in members]) for key, members in groups.items()}
    logits = _logits(backend, groups, folded, rx, len(MODELS))
    mixed = _mix_classes(backend, logits, _weight_rows(STAKES, CAP_PPM)[:1], 3)
    return {"result": result, "accuracy": accuracy, "probabilities": backend.reveal(mixed)[0].numpy(),
            "models": [{name: backend.reveal(t).to(torch.float64) for name, t in m.items()} for m in models],
            "variants": variants}


def _softmax_mix(models: list[dict[str, torch.Tensor]], x: np.ndarray, weights_ppm: list[int]) -> np.ndarray:
    """An independent formula: each model on its own standardised features (an MLP's
    hidden layer first), the exact softmax, the weighted mean of the class-probability vectors."""
    out = np.zeros((len(x), 3))
    for model, weight in zip(models, weights_ppm, strict=True):
        z = (x - model[NORMALISE_MEAN].numpy()) * model[NORMALISE_SCALE].numpy()
        if "hidden_weight" in model:
            z = np.maximum(z @ model["hidden_weight"].numpy() + model["hidden_bias"].numpy(), 0)
        logits = torch.tensor(z @ model["weight"].numpy() + model["bias"].numpy())
        out += weight / 1e6 * torch.softmax(logits, -1).numpy()
    return out


def test_softmax_models_freeze_and_resolve_in_mpc_as_in_plaintext() -> None:
    x, y, rx, ry = _iris()
    inputs = _inputs(x, y, rx, ry)
    parties = run_parties(PARTIES, lambda rank: _party(inputs[rank]), job_id="multiclass")
    got = parties[0]["result"]
    assert all(p["result"] == got for p in parties)           # every party revealed the same numbers
    models, variants = parties[0]["models"], parties[0]["variants"]
    weights = metamodel_weights(STAKES, CAP_PPM)
    assert got.weights_ppm == weights == [400_000, 600_000]

    # the metamodel's class probabilities are the stake-weighted mix of the frozen models
    expected = _softmax_mix(models[:2], rx, weights)
    probabilities = parties[0]["probabilities"]
    assert probabilities.shape == (60, 3)
    assert np.max(np.abs(probabilities - expected)) < 0.03, np.max(np.abs(probabilities - expected))
    good_alone = _softmax_mix(models[:1], rx, [1_000_000])
    assert (good_alone.argmax(1) == ry.reshape(-1)).mean() > 0.7   # a model worth mixing (10 epochs: 0.78)

    # the revealed numbers are the plaintext reference's on the reconstructed models
    want = plaintext_resolution("log_loss", [SOFTMAX] * len(models), models, torch.tensor(rx), torch.tensor(ry),
                                STAKES, CAP_PPM, variants)
    mpc = [got.metamodel_metric_micro, *got.contributions_micro, *got.variant_contributions_micro]
    plain = [want.metamodel_metric_micro, *want.contributions_micro, *want.variant_contributions_micro]
    assert max(abs(a - b) for a, b in zip(mpc, plain, strict=True)) <= MICRO_TOLERANCE, (got, want)
    good, rotated = got.contributions_micro
    assert good > 0 > rotated                                  # the rotated data's model hurts the metamodel
    # within "rotated", d2 (the rotated labels) hurt and d1 helped; within "good", d0 and
    # d1 are redundant (each alone does as well: observed within +-3,000 micro of 0)
    _, _, rotated_d1, rotated_d2 = got.variant_contributions_micro
    assert rotated_d2 < -MICRO_TOLERANCE and rotated_d1 > MICRO_TOLERANCE
    clear = [(a, b) for a, b in zip(mpc[1:], plain[1:], strict=True) if abs(b) > MICRO_TOLERANCE]
    assert len(clear) >= 4 and all(np.sign(a) == np.sign(b) for a, b in clear)

    # accuracy (arg-max of the mixed vectors, in MPC): as the reference's, up to a row near a tie
    plain_accuracy = plaintext_resolution("accuracy", [SOFTMAX] * 2, models[:2], torch.tensor(rx), torch.tensor(ry),
                                          STAKES, CAP_PPM)
    got_accuracy = parties[0]["accuracy"]
    assert abs(got_accuracy.metamodel_metric - plain_accuracy.metamodel_metric) <= 1 / 60 + 1e-9
    assert got_accuracy.metamodel_metric > 0.5

    # and the models are the ones the plaintext freeze trains (training is the same algorithm)
    reference = train_frozen(PlainBackend(), MODELS, DATASETS, torch.tensor(x), torch.tensor(y), ROWS)
    assert torch.allclose(models[0]["weight"], reference[0][0]["weight"], atol=0.05)


def test_multiclass_accuracy_and_refusals() -> None:
    """Accuracy counts rows whose arg-max class is true; a multiclass MLP mixes with a
    softmax model; models of another class count, or of another task, cannot share a
    multiclass metamodel (plaintext reference: the MPC path is the test above)."""
    x, y, rx, ry = _iris()
    frozen = train_frozen(PlainBackend(), MODELS, DATASETS, torch.tensor(x), torch.tensor(y), ROWS)
    models = [frozen[0][0], frozen[1][0]]
    rx_t, ry_t = torch.tensor(rx), torch.tensor(ry)
    got = plaintext_resolution("accuracy", [SOFTMAX] * 2, models, rx_t, ry_t, STAKES, CAP_PPM)
    mixed = _softmax_mix(models, rx, metamodel_weights(STAKES, CAP_PPM))
    assert abs(got.metamodel_metric - (mixed.argmax(1) == ry.reshape(-1)).mean()) < 0.02
    # a multiclass MLP mixes with a softmax model (its own forward pass, the same classes)
    mlp = parse_model_spec({"kind": "mlp", "task": "multiclass", "classes": 3, "hidden": 4, "epochs": 10})
    net = train_frozen(PlainBackend(), [WorkerModel("net", mlp, ("d0", "d1"))], DATASETS, torch.tensor(x),
                       torch.tensor(y), ROWS)[0][0]
    pair = plaintext_resolution("log_loss", [SOFTMAX, mlp], [models[0], net], rx_t, ry_t, STAKES, CAP_PPM)
    mixed = _softmax_mix([models[0], net], rx, pair.weights_ppm)
    true_class = mixed[np.arange(len(ry)), ry.reshape(-1).astype(int)]
    # the reference's softmax is the training's (accurate to ~1e-2), the formula's exact
    assert abs(pair.metamodel_metric - float(-np.log(true_class).mean())) < 0.01   # observed 0.005
    four = parse_model_spec({"kind": "softmax", "classes": 4})
    with pytest.raises(InvalidInput, match="same classes"):
        plaintext_resolution("log_loss", [SOFTMAX, four], models, rx_t, ry_t, STAKES, CAP_PPM)
    with pytest.raises(InvalidInput, match="task"):
        plaintext_resolution("log_loss", [SOFTMAX, parse_model_spec({"kind": "logistic"})], models, rx_t, ry_t,
                             STAKES, CAP_PPM)
    with pytest.raises(InvalidInput, match="task"):
        plaintext_resolution("mse", [SOFTMAX] * 2, models, rx_t, ry_t, STAKES, CAP_PPM)
