"""Copies earn nothing (issue 13): rows that repeat an earlier dataset's rows are counted in MPC.

Real MPC (the worker's `run` as 3 parties + the dealer, threads of one process): a round
of breast-cancer datasets with an exact copy, a copy with 1 % noise, a half copy and a
shuffled copy next to honest splits, and a round of honest splits of the synthetic
credit table (6 features: the table whose honest rows lie nearest each other). The
worker reveals one count per dataset; the plaintext run of the same algorithm
(`PlainBackend`) gives the same counts. Honest splits of breast cancer, wine, digits and
credit are never flagged, over many random splits, in plaintext (the same code; MPC only
adds truncation noise far below the tolerance).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_digits, load_wine

from mpcnode.worker.backend import PlainBackend
from mpcnode.worker.copy_detection import (
    MIN_SAMPLE_ROWS,
    SAMPLE_ROWS,
    count_copies,
    sample_indices,
    sample_sizes,
)
from mutualmind.vocabulary.copy_rule import is_copy
from tests.mpcnode.worker.cluster import run_job_in_process
from tests.mpcnode.worker.test_numerics import credit_table

FAST = {"kind": "logistic", "epochs": 1}  # training is not what is tested here


def _standardised(x: np.ndarray) -> np.ndarray:
    scale = x.std(0)
    scale[scale == 0] = np.inf
    return (x - x.mean(0)) / scale


def _copy_round(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[int], list[str]]:
    """Breast cancer: originals first, then every kind of copy, honest rows last."""
    x, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    a, b, c = slice(0, 60), slice(60, 120), slice(120, 180)
    noise = rng.normal(0, 0.01, (60, x.shape[1])) * x.std(0)  # 1 % of a standard deviation
    shuffle = rng.permutation(60)
    parts = [
        ("original", x[a], y[a]),
        ("honest", x[b], y[b]),
        ("exact", x[a], y[a]),
        ("noisy", x[a] + noise, y[a]),
        ("half", np.concatenate([x[b][:30], x[c][:30]]), np.concatenate([y[b][:30], y[c][:30]])),
        ("shuffled", x[a][shuffle], y[a][shuffle]),
        ("honest-late", x[180:240], y[180:240]),
    ]
    names = [p[0] for p in parts]
    return (np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts]),
            [len(p[1]) for p in parts], names)


def test_every_kind_of_copy_is_caught_in_mpc_and_honest_rows_are_not(tmp_path: Path) -> None:
    """...and no model is trained on the copies: every value (one Newton step from the
    converged model) is the plaintext reference's with the copies excluded, and the
    original's is the one it has in the round without the copies (in plaintext; in MPC
    within its noise: trained on, the copies left it 0.0015 of 0.0145, in plaintext). The
    pooled standardisation still counts the copies' rows: here 240 of 420, which moves
    the honest dataset's value from 0.055 (alone) to 0.051."""
    from mpcnode.worker.reference import plaintext_batched
    from mutualmind.vocabulary.model_spec import parse_model_spec

    x, y, rows, names = _copy_round()
    vx, vy = load_breast_cancer(return_X_y=True)
    results = run_job_in_process(tmp_path, x, y, vx[450:], vy[450:], rows, NEWTON_STEP)
    copies = results[0]["copies"]
    assert all(r["copies"] == copies for r in results)  # every party revealed the same counts
    flagged = {name for name, c, s in zip(names, copies["counts"], copies["samples"], strict=True) if is_copy(c, s)}
    assert flagged == {"exact", "noisy", "half", "shuffled"}, copies
    assert results[0]["excluded"] == [names.index(n) for n in ("exact", "noisy", "half", "shuffled")]
    kept = [names.index(n) for n in ("original", "honest", "honest-late")]
    starts = np.cumsum([0, *rows])
    alone_x = np.concatenate([x[starts[k]:starts[k + 1]] for k in kept])
    alone_y = np.concatenate([y[starts[k]:starts[k + 1]] for k in kept])
    alone = _contributions(plaintext_batched(parse_model_spec(NEWTON_STEP), alone_x, alone_y, vx[450:], vy[450:],
                                             [rows[k] for k in kept]).metrics)
    reference = _contributions(plaintext_batched(parse_model_spec(NEWTON_STEP), x, y, vx[450:], vy[450:], rows,
                                                 excluded=results[0]["excluded"]).metrics)
    got = _contributions(results[0]["metrics"])
    assert (np.abs(got - reference) < 0.005 + 0.1 * np.abs(reference)).all(), (got, reference)
    # the copies out, the original keeps the value it has in the round without them: in
    # plaintext (only the pooled standardisation differs: 0.0156 vs 0.0138), and in MPC,
    # whose value is the reference's (above; its noise here is ~0.003, 0.0114-0.0193 in
    # six runs) and far from what training on the copies leaves it (~0.0015)
    assert alone[0] > 0.01 and abs(reference[0] - alone[0]) < 0.003, (reference, alone)
    assert got[0] > alone[0] / 2, (got, alone)
    assert np.abs(np.delete(got, kept)).max() < 0.002, got  # a copy adds nothing to any model
    by_name = dict(zip(names, zip(copies["counts"], copies["samples"], strict=True), strict=True))
    assert by_name["original"] == (0, 0)  # nothing registered before it
    for name in ("exact", "noisy", "shuffled"):
        assert by_name[name] == (60, 60)  # a dataset below SAMPLE_ROWS rows: every row compared
    assert by_name["half"] == (30, 60)    # exactly its 30 copied rows
    assert by_name["honest"][0] == by_name["honest-late"][0] == 0
    # the same algorithm on plaintext, same sample (the job id seeds it): the same counts
    plain = count_copies(PlainBackend(), torch.tensor(_standardised(x)), rows, b"job")
    assert plain.counts == copies["counts"] and plain.samples == copies["samples"]
    comm = results[0]["comm"]
    assert comm["copy_comparisons"] == sum(s * sum(rows[:j]) for j, s in enumerate(copies["samples"]))
    assert 0 < comm["copy_rounds"] < 200 and comm["copy_bytes"] > 0


def test_honest_credit_splits_are_not_flagged_in_mpc(tmp_path: Path) -> None:
    """Six features, income in dollars: honest rows lie closest together on this table."""
    x, y = credit_table(600, seed=5)
    rows = [120] * 4
    results = run_job_in_process(tmp_path, x[:480], y[:480], x[480:], y[480:], rows, FAST)
    copies = results[0]["copies"]
    assert copies["samples"] == [0] + [SAMPLE_ROWS] * 3
    assert not any(is_copy(c, s) for c, s in zip(copies["counts"], copies["samples"], strict=True)), copies
    assert sum(copies["counts"]) <= 2, copies


def _tables() -> dict[str, np.ndarray]:
    return {
        "breast_cancer": load_breast_cancer(return_X_y=True)[0],
        "wine": load_wine(return_X_y=True)[0],
        "digits": load_digits(return_X_y=True)[0],
        "credit": credit_table(3000)[0],
    }


@pytest.mark.parametrize("name", ["breast_cancer", "wine", "digits", "credit"])
def test_honest_splits_are_never_flagged(name: str) -> None:
    """Ten random splits of each table over 5 providers: no dataset flagged, and honest
    rows within the tolerance of an earlier row stay rare (< 3 % of the sampled rows)."""
    x = _standardised(_tables()[name].astype(np.float64))
    for seed in range(10):
        order = np.random.default_rng(seed).permutation(len(x))
        rows = [len(part) for part in np.array_split(order, 5)]
        found = count_copies(PlainBackend(), torch.tensor(x[order]), rows, seed.to_bytes(4, "big"))
        assert not any(is_copy(c, s) for c, s in zip(found.counts, found.samples, strict=True)), (seed, found)
        assert sum(found.counts) * 100 <= 3 * sum(found.samples), (seed, found)


def test_the_sample_shrinks_to_fit_the_comparison_budget_then_checks_nothing() -> None:
    rows = [1000] * 8
    assert sample_sizes(rows) == [0] + [SAMPLE_ROWS] * 7
    assert sample_sizes([10, 5, 3]) == [0, 5, 3]  # small datasets: every row
    # 28,000 earlier rows in all: 64 per dataset is 1.8M comparisons, 32 is 0.9M
    assert sample_sizes(rows, max_comparisons=1_000_000) == [0] + [32] * 7
    assert sample_sizes(rows, max_comparisons=MIN_SAMPLE_ROWS * 28_000 - 1) == [0] * 8


def test_the_job_beacon_seeds_the_sample() -> None:
    """The worker spec's beacon (256 random bits from the coordinator) is the seed; a spec
    without one (tests, benchmarks) falls back on the job id; a short one is refused."""
    import json

    from mpcnode.worker.job_spec import parse_worker_spec
    from mutualmind.errors import InvalidInput
    from tests.mpcnode.worker.cluster import job_plane, worker_spec

    raw = {**worker_spec("job", 0, 3, 29500, Path("/tmp/d"), Path("/tmp/o"), ["a", "b"], "v", FAST),
           **{k: list(v) if isinstance(v, tuple) else v for k, v in job_plane(3).items()},
           "certs_dir": "/tmp/certs"}
    beacon = "5a" * 32
    assert parse_worker_spec(json.dumps({**raw, "beacon": beacon})).seed == bytes.fromhex(beacon)
    assert parse_worker_spec(json.dumps(raw)).seed == b"job"
    with pytest.raises(InvalidInput, match="beacon"):
        parse_worker_spec(json.dumps({**raw, "beacon": "5a" * 16}))
    assert not np.array_equal(sample_indices(bytes.fromhex(beacon), 1, 500, 64), sample_indices(bytes(32), 1, 500, 64))


def test_the_sample_is_fixed_by_the_seed_and_distinct() -> None:
    first = sample_indices(b"job-1", 3, 500, 64)
    assert np.array_equal(first, sample_indices(b"job-1", 3, 500, 64))
    assert len(set(first.tolist())) == 64 and first.min() >= 0 and first.max() < 500
    assert not np.array_equal(first, sample_indices(b"job-2", 3, 500, 64))
    assert not np.array_equal(first, sample_indices(b"job-1", 4, 500, 64))


NEWTON_STEP = {"kind": "logistic", "solver": "newton", "l2": 0.01, "loo": "newton_step"}


def _original_and_copier() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Breast cancer: an original of 60 rows, two honest datasets, an exact copy last."""
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(3).permutation(len(x))
    x, y = x[order], y[order].astype(float)
    parts = [slice(0, 60), slice(60, 100), slice(100, 140), slice(0, 60)]
    return (np.concatenate([x[p] for p in parts]), np.concatenate([y[p] for p in parts]),
            x[300:], y[300:], [60, 40, 40, 60])


def _contributions(metrics: list[float]) -> np.ndarray:
    return np.array(metrics[1:]) - np.array(metrics[0])  # log-loss without i minus with all


@pytest.mark.parametrize("raw", [NEWTON_STEP, {"kind": "logistic", "solver": "newton", "l2": 0.01}])
def test_a_copy_excluded_leaves_its_original_the_value_it_has_alone(raw: dict) -> None:
    """Plaintext, both converged LOO paths: with the copy excluded the original's value is
    its value in the round without the copy (the pooled standardisation still counts the
    copy's rows: 0.001 of 0.02 measured); with the copy trained on, a seventh of that."""
    from mpcnode.worker.reference import plaintext_batched
    from mutualmind.vocabulary.model_spec import parse_model_spec

    tx, ty, vx, vy, rows = _original_and_copier()
    spec = parse_model_spec(raw)
    alone = _contributions(plaintext_batched(spec, tx[:140], ty[:140], vx, vy, rows[:3]).metrics)
    excluded = _contributions(plaintext_batched(spec, tx, ty, vx, vy, rows, excluded=[3]).metrics)
    trained_on = _contributions(plaintext_batched(spec, tx, ty, vx, vy, rows).metrics)
    assert alone[0] > 0.005, alone  # the original matters in the round without the copy
    assert abs(excluded[0] - alone[0]) < 0.15 * alone[0], (excluded, alone)
    assert abs(excluded[3]) < 0.001  # the copy adds nothing to any model
    assert trained_on[0] < 0.5 * alone[0], trained_on  # what the exclusion is for


def test_sgd_trains_no_model_on_a_copy() -> None:
    """The SGD path's masks: the model without the copy is the full model, exactly."""
    from mpcnode.worker.reference import plaintext_batched
    from mutualmind.vocabulary.model_spec import parse_model_spec

    tx, ty, vx, vy, rows = _original_and_copier()
    spec = parse_model_spec({"kind": "logistic", "epochs": 3})
    metrics = plaintext_batched(spec, tx, ty, vx, vy, rows, excluded=[3]).metrics
    trained_on = plaintext_batched(spec, tx, ty, vx, vy, rows).metrics
    assert metrics[4] == metrics[0] and trained_on[4] != trained_on[0]
    assert metrics[0] == trained_on[4]  # the full model is the one trained without the copy


def test_banzhaf_puts_a_copy_in_no_coalition() -> None:
    from mpcnode.worker.reference import plaintext_banzhaf
    from mutualmind.vocabulary.model_spec import parse_model_spec
    from mutualmind.vocabulary.valuation import plan

    tx, ty, vx, vy, rows = _original_and_copier()
    spec = parse_model_spec({"kind": "logistic", "solver": "newton", "l2": 0.01, "epochs": 4, "valuation": "banzhaf"})
    alone = plaintext_banzhaf(spec, tx[:140], ty[:140], vx, vy, rows[:3], plan(3, b"seed"))
    excluded = plaintext_banzhaf(spec, tx, ty, vx, vy, rows, plan(4, b"seed"), excluded=[3])
    assert abs(excluded[4]) < 1e-9  # the copy's value: every coalition trains without it
    # Banzhaf values are log-loss means with minus without: the original's is negative
    assert alone[1] < -0.005 and abs(excluded[1] - alone[1]) < 0.15 * abs(alone[1]), (excluded, alone)
