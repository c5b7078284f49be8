"""Issue 5: MPC training in few rounds, without losing accuracy.

The worker's `run` as 3 parties and the real (batching) dealer, threads of one process
on in-memory links through the plane's codec, which count rounds as the gRPC plane
does (test_grpc_plane checks they are equal): the number of
online rounds per training step is deterministic, so it is asserted exactly, on every
party - party 0 no longer talks to the dealer during training, so it pays the same as
the others. Accuracy is checked against scikit-learn's plaintext LogisticRegression on
the same split (within 1 percentage point), in MPC on breast cancer and, for the
derived binary tasks, on the plaintext reference (the same algorithm, whose agreement
with MPC the MPC runs here and in test_model_kinds check).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bench.datasets import load_task, sklearn_accuracy
from mpcnode.worker.backend import hard_sigmoid
from mpcnode.worker.dealer_prefetch import (
    _chunk_starts,
    dealer_result_size,
    material_bytes,
    serve_batch,
)
from mpcnode.worker.reference import plaintext_batched
from mpcnode.worker.softmax_training import newton_iterations, plain_softmax
from mutualmind.vocabulary.model_spec import parse_model_spec
from tests.mpcnode.worker.cluster import run_job_in_process

# online rounds per step with 3 parties: logits (Beaver + truncation) 2, hard sigmoid
# (carry-save comparison 9, exact product 1, /8 truncation 1) 11, gradient matmul 2,
# one batched truncation for every public scaling 1
LOGISTIC_ROUNDS_PER_STEP = 16
# softmax with k = 3: logits 2; pairwise max: comparison 9, one product level 1, pick 1;
# exp: /32 1, clamp 9 + 1, five squarings 10; Newton: first step 1, two more 8;
# P = e * (1/s) 2; gradient 2; scaling 1
SOFTMAX_3_ROUNDS_PER_STEP = 48
# bytes per step on parties 1 and 2 (4 models x 128 rows, 30 features), by comparison
LOGISTIC_BYTES_PER_STEP = {"adder": 591_658, "packed": 300_492}
LOGISTIC = {"kind": "logistic", "lr": 1.0, "epochs": 10, "batch_size": 128, "metric": "accuracy"}


def _providers(rows: int, count: int) -> list[int]:
    return [len(p) for p in np.array_split(np.arange(rows), count)]


@pytest.mark.parametrize("comparison", ["adder", "packed"])
def test_logistic_step_is_16_rounds_on_every_party_and_as_accurate_as_sklearn(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, comparison: str) -> None:
    """128-row steps compare 256 elements: the adder; from `PACKED_FROM` (here forced
    to 0) the packed comparison, in the same rounds and to the same accuracy."""
    from mpcnode.worker import comparison as comparisons

    if comparison == "packed":
        monkeypatch.setattr(comparisons, "PACKED_FROM", 0)   # the parties are threads: they see it
    tx, ty, vx, vy, task, _ = load_task("breast_cancer")
    results = run_job_in_process(tmp_path, tx, ty, vx, vy, _providers(len(tx), 3), LOGISTIC)
    assert [r["comm"]["rounds_per_step"] for r in results] == [LOGISTIC_ROUNDS_PER_STEP] * 3
    # bytes are exact too (parties 1 and 2; party 0 also sends the dealer's batch): the
    # packed comparison sends about half a step's bytes
    assert [round(r["comm"]["bytes_per_step"]) for r in results[1:]] == [LOGISTIC_BYTES_PER_STEP[comparison]] * 2
    # the dealer material came in the offline phase: party 0 made its requests then
    assert all(r["comm"]["offline_rounds"] > 0 for r in results)
    assert results[0]["comm"]["offline_rounds"] > results[1]["comm"]["offline_rounds"]
    assert all(r["steps"] == 40 for r in results)
    spec = parse_model_spec(LOGISTIC)
    reference = plaintext_batched(spec, tx, ty, vx, vy, _providers(len(tx), 3)).metrics
    np.testing.assert_allclose(results[0]["metrics"], reference, atol=1.5 / len(vx))
    assert results[0]["metrics"][0] >= sklearn_accuracy(task, tx, ty, vx, vy) - 0.01


def test_softmax_step_rounds_are_exact(tmp_path: Path) -> None:
    tx, ty, vx, vy, _, classes = load_task("iris")
    model = {"kind": "softmax", "classes": classes, "lr": 1.0, "epochs": 1, "batch_size": 32, "metric": "accuracy"}
    results = run_job_in_process(tmp_path, tx, ty, vx, vy, _providers(len(tx), 2), model)
    assert [r["comm"]["rounds_per_step"] for r in results] == [SOFTMAX_3_ROUNDS_PER_STEP] * 3
    reference = plaintext_batched(parse_model_spec(model), tx, ty, vx, vy, _providers(len(tx), 2)).metrics
    np.testing.assert_allclose(results[0]["metrics"], reference, atol=1.5 / len(vx))


@pytest.mark.parametrize("dataset", ["breast_cancer", "wine_0_vs_rest", "digits_low_vs_high"])
def test_the_training_algorithm_matches_sklearn_within_one_point(dataset: str) -> None:
    tx, ty, vx, vy, task, _ = load_task(dataset)
    accuracy = plaintext_batched(parse_model_spec(LOGISTIC), tx, ty, vx, vy, [len(tx)]).metrics[0]
    assert accuracy >= sklearn_accuracy(task, tx, ty, vx, vy) - 0.01


@pytest.mark.parametrize("dataset", ["iris", "wine"])
def test_the_softmax_training_matches_sklearn_within_one_point(dataset: str) -> None:
    tx, ty, vx, vy, task, classes = load_task(dataset)
    spec = parse_model_spec({"kind": "softmax", "classes": classes, "lr": 1.0, "epochs": 10, "batch_size": 32, "metric": "accuracy"})
    accuracy = plaintext_batched(spec, tx, ty, vx, vy, [len(tx)]).metrics[0]
    assert accuracy >= sklearn_accuracy(task, tx, ty, vx, vy) - 0.01


def test_training_non_linearities() -> None:
    z = torch.tensor([-10.0, -4.0, -2.0, 0.0, 2.0, 4.0, 10.0], dtype=torch.float64)
    assert hard_sigmoid(z).tolist() == [0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    logits = torch.tensor([[0.0, 0.0, 0.0], [3.0, -1.0, 0.5], [40.0, 0.0, -3.0]], dtype=torch.float64)
    approx = plain_softmax(logits)
    assert torch.allclose(approx, torch.softmax(logits, -1), atol=0.02)
    assert approx.min() >= 0  # a logit gap beyond 32 gives 0, not a huge even power
    assert [newton_iterations(k) for k in (2, 3, 10)] == [3, 3, 5]


def test_dealer_batch_sizes_and_refusals() -> None:
    assert dealer_result_size("additive", (torch.Size([5, 3]), torch.Size([2, 3, 1]), "matmul")) == torch.Size([2, 5, 1])
    assert dealer_result_size("binary", (torch.Size([2, 1]), torch.Size([2, 4]))) == torch.Size([2, 4])
    assert dealer_result_size("wraps", (torch.Size([7]),)) == torch.Size([7])

    class Dealer:
        def square(self, size: torch.Size) -> torch.Tensor:
            return torch.arange(int(torch.Size(size).numel())).reshape(size)

    flat = serve_batch(Dealer(), [("square", (torch.Size([2, 2]),), {}), ("square", (torch.Size([3]),), {})])
    assert flat.tolist() == [0, 1, 2, 3, 0, 1, 2]
    for bad in ([], "square", [("shutdown", (), {})], [("square", [2], {})], [("square",)]):
        with pytest.raises(ValueError):
            serve_batch(Dealer(), bad)


def test_long_runs_fetch_their_material_in_chunks_within_the_memory_budget() -> None:
    assert _chunk_starts([10] * 7, budget=25) == [0, 2, 4, 6]
    assert _chunk_starts([10] * 7, budget=1000) == [0]
    assert _chunk_starts([50, 5, 5], budget=20) == [0, 1]  # a step over budget gets its own chunk
    triple = ("generate_additive_triple", (torch.Size([4, 3]), torch.Size([1, 3, 1]), "matmul"), {})
    wraps = ("wrap_rng", (torch.Size([4]),), {})
    assert material_bytes([triple, wraps]) == 8 * ((12 + 3 + 4) + 2 * 4)


def test_the_config_view_reads_like_crypten_config_and_keeps_temp_override() -> None:
    from mpcnode.worker.crypten_config_view import install
    from mutualmind.crypten_compat import crypten

    cfg = crypten.cfg
    original = cfg.config
    before = (cfg.functions.exp_iterations, cfg["mpc.provider"], cfg.debug.validation_mode)
    try:
        install(cfg)
        assert (cfg.functions.exp_iterations, cfg["mpc.provider"], cfg.debug.validation_mode) == before
        with cfg.temp_override({"functions.exp_iterations": 3}):
            assert cfg.functions.exp_iterations == 3
        assert cfg.functions.exp_iterations == before[0]
        with pytest.raises(AttributeError):
            cfg.config.functions.exp_iterations = 5
    finally:
        cfg.config = original
        cfg.__dict__.pop("temp_override", None)
    assert cfg.functions.exp_iterations == before[0]
