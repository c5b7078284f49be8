"""An inference job's dealer material comes in one batched request (`inference.prefetch`).

Three parties and the dealer as threads of one process (`plane_memory`), the worker's
own `evaluate` on additive shares of a logistic model and of query rows: the outputs
must be the plaintext model's, and listing the material up front must take the dealer's
round trips off the evaluation (CrypTen's counters: 3 rounds per dealer request on
party 0, 16 per job without the prefetch).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import numpy as np

from mpcnode.worker.inference import InferenceInputs, dealer_requests, evaluate, prefetch
from mpcnode.worker.plane_memory import run_parties
from mutualmind.vocabulary.fixed_point import SCALE
from mutualmind.vocabulary.model_spec import parse_model_spec

REPO = Path(__file__).resolve().parents[3]
PARTIES = 3
FEATURES = 6
SPEC = parse_model_spec({"kind": "logistic", "task": "binary", "metric": "log_loss", "epochs": 1})


def _split(values: np.ndarray) -> list[np.ndarray]:
    encoded = np.round(np.asarray(values, dtype=np.float64) * SCALE).astype(np.int64)
    shares = [np.frombuffer(secrets.token_bytes(encoded.size * 8), dtype="<i8").reshape(encoded.shape).copy()
              for _ in range(PARTIES - 1)]
    with np.errstate(over="ignore"):
        shares.append(encoded - sum(shares, np.zeros_like(encoded)))
    return shares


def _run(rows: int, *, with_prefetch: bool) -> tuple[np.ndarray, np.ndarray, list[int]]:
    rng = np.random.default_rng(7)
    plain = {"weight": rng.normal(0, 1, (FEATURES, 1)), "bias": np.array([[0.25]]),
             "normalise_mean": rng.uniform(-0.2, 0.2, (1, FEATURES)),
             "normalise_scale": rng.uniform(1.0, 4.0, (1, FEATURES))}
    query = rng.uniform(-0.5, 0.5, (rows, FEATURES))
    model_shares = {name: _split(value) for name, value in plain.items()}
    query_shares = _split(query)

    def party(rank: int) -> tuple[np.ndarray, int]:
        import crypten.communicator as comm

        inputs = InferenceInputs(query=query_shares[rank], shift=np.zeros(FEATURES, dtype=np.int64),
                                 model={n: s[rank] for n, s in model_shares.items()}, label_exponent=0)
        comm.get().reset_communication_stats()
        if with_prefetch:
            assert prefetch(inputs, SPEC) == len(dealer_requests(inputs, SPEC))
        outputs = evaluate(inputs, SPEC)
        return outputs, int(comm.get().get_communication_stats()["rounds"])

    results = run_parties(PARTIES, party)
    with np.errstate(over="ignore"):
        total = sum((r[0] for r in results), np.zeros_like(results[0][0]))
    expected = ((query - plain["normalise_mean"]) * plain["normalise_scale"]) @ plain["weight"] + plain["bias"]
    return total / SCALE, expected, [r[1] for r in results]


def test_prefetched_material_gives_the_same_outputs_with_one_dealer_request_instead_of_four() -> None:
    outputs, expected, rounds = _run(3, with_prefetch=True)
    np.testing.assert_allclose(outputs, expected, atol=1e-2)
    baseline, expected_again, rounds_before = _run(3, with_prefetch=False)
    np.testing.assert_allclose(baseline, expected_again, atol=1e-2)
    # party 0: two products and two truncations, each a dealer request (3 rounds) and an
    # exchange with the peers (1 round), against one batched request and the 4 exchanges
    assert rounds_before[0] == 16
    assert rounds[0] == 3 + 4
    assert rounds[1:] == rounds_before[1:]   # the others never ask the dealer


def test_every_chunk_of_a_larger_query_is_listed() -> None:
    # 6 features: chunks of normalisation.chunk_rows(6) rows; every chunk's matmul and
    # truncation is served from the cache, so the rounds do not grow with the dealer's
    from mpcnode.worker.normalisation import chunk_rows

    rows = chunk_rows(FEATURES) + 5
    outputs, expected, rounds = _run(rows, with_prefetch=True)
    np.testing.assert_allclose(outputs, expected, atol=1e-2)
    assert rounds[0] == 3 + 2 * 3   # the folded product and two chunks: 2 exchanges each


def test_a_warmed_ready_process_sizes_dealer_requests_without_importing_anything() -> None:
    # the first meta-tensor size computation of a process imports ~800 modules (sympy
    # and torch's decompositions: ~2 s on a loaded machine); ready workers and ready
    # dealers do it while they wait, so a warm model's first dealer request does not
    probe = (
        "import sys, torch\n"
        "from mpcnode.worker.dealer_prefetch import dealer_result_size, warm_shapes\n"
        "warm_shapes()\n"
        "before = set(sys.modules)\n"
        "assert dealer_result_size('additive', (torch.Size([7, 30]), torch.Size([30, 3]), 'matmul')) == (7, 3)\n"
        "assert dealer_result_size('additive', (torch.Size([7, 1]), torch.Size([1, 5]), 'mul')) == (7, 5)\n"
        "print(len(set(sys.modules) - before))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0"]
