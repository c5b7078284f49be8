"""Private inference on a model kind other than the binary logistic one: linear
regression, whose outputs are values in the label's raw units (the label's pooled
standardisation and its public power of two undone in MPC).

The model is trained in real MPC with the parties in this process (`run_job_in_process`,
the worker's own `run`); the inference then runs the worker's own `load_inputs`,
`prefetch` and `evaluate` for each party, again as threads of this process on in-memory
links with the dealer (`plane_memory`): each party reads its node's share of the query
rows and the trained job's folder as a job does. The predictions the shares add up to
must equal the reconstructed model's plaintext ones. The worker process around it
(`run_inference`: TLS plane, files, result.json) is what the logistic model's end-to-end
test drives (tests/coordinator/rounds/test_model_collection.py).
The logistic model's end-to-end test (through the coordinator) is
tests/coordinator/rounds/test_model_collection.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.datasets import load_diabetes

from mpcnode.share_store import ShareStore
from mpcnode.worker.inference import evaluate, load_inputs, prefetch
from mpcnode.worker.job_spec import parse_worker_spec
from mpcnode.worker.plane_memory import run_parties
from mutualmind.vocabulary.fixed_point import SCALE
from mutualmind.vocabulary.model_file import predict, read_share_file, reconstruct
from mutualmind.vocabulary.model_spec import parse_model_spec
from tests.mpcnode.worker.cluster import (
    memory_plane,
    run_job_in_process,
    store_query,
    worker_spec,
)

PARTIES = 3
QUERY_ROWS = 25
TRAIN_ROWS, VALIDATION_ROWS = 150, 60
LINEAR = {"kind": "linear", "epochs": 3, "lr": 0.2}


def test_linear_regression_predictions_are_the_models_values_in_raw_label_units(tmp_path: Path) -> None:
    x, y = load_diabetes(return_X_y=True)
    order = np.random.default_rng(5).permutation(len(x))
    x, y = x[order], y[order].astype(float)
    cut, end = TRAIN_ROWS, TRAIN_ROWS + VALIDATION_ROWS   # a small model: the test is the inference
    rows = [len(p) for p in np.array_split(np.arange(cut), PARTIES)]
    trained = run_job_in_process(tmp_path, x[:cut], y[:cut], x[cut:end], y[cut:end], rows, LINEAR)
    dirs = [tmp_path / f"node{r}" for r in range(PARTIES)]
    for r in range(PARTIES):   # the training job's folder as a node keeps it (mpcnode.jobs)
        (tmp_path / f"out{r}" / "request.json").write_text(json.dumps(
            {"dataset_ids": [f"p{i}" for i in range(PARTIES)], "validation_dataset_id": "val"}))

    # the user's query rows, features only, at the model's column exponents (as provider.predict)
    stored = ShareStore(dirs[0])
    features = x.shape[1]
    exponents = tuple(int(e) for e in np.max([stored.describe(d).exponents[:features]
                                              for d in ("p0", "p1", "p2", "val")], axis=0))
    queries = x[end:end + QUERY_ROWS]                     # rows the model never saw
    store_query(dirs, "q-linear", queries, exponents)

    plane = memory_plane(PARTIES)
    specs = [parse_worker_spec(json.dumps(
        {**worker_spec("q-linear", r, PARTIES, 1, dirs[r], tmp_path / f"inf{r}", ["q-linear"], "", LINEAR),
         **plane, "kind": "inference", "model_dir": str(tmp_path / f"out{r}")}))
        for r in range(PARTIES)]

    def party(rank: int) -> np.ndarray:
        inputs = load_inputs(specs[rank])     # the node's files, checked as a job reads them
        prefetch(inputs, specs[rank].model)
        return evaluate(inputs, specs[rank].model)

    shares = run_parties(PARTIES, party, job_id="q-linear")
    with np.errstate(over="ignore"):
        total = shares[0] + shares[1] + shares[2]
    values = total.astype(np.float64).reshape(QUERY_ROWS, -1)[:, 0] / SCALE

    model = reconstruct([read_share_file(tmp_path / f"out{r}" / "weights.bin", trained[r]["weights"]["tensors"])
                         for r in range(PARTIES)])
    plain = predict(model, parse_model_spec(LINEAR), queries)
    # raw label units (diabetes progression, 25..346). The products run in the label's
    # standardised units and are scaled back by its public 2^e (512 here): each of the
    # ~features + 2 truncations may be off by one 2^-16 step, so the bound is about
    # (10 + 2) x 512 / 65536 ~ 0.1 of a unit (measured 0.02-0.14 in ten runs, so a
    # tenth was flaky). Four times that, 0.375 (0.1% of the label's range), still fails
    # a lost 2^e (x512) or a wrong standardisation fold (tens of units).
    label_scale = 2.0 ** np.ceil(np.log2(np.max(np.abs(y))))
    bound = 4 * (features + 2) * label_scale / SCALE
    assert bound < 0.5
    assert np.max(np.abs(values - plain)) < bound, (np.max(np.abs(values - plain)), bound)
    assert np.std(plain) > 10          # a model that predicts something, not a constant
    assert shares[0].shape == (QUERY_ROWS, 1)
