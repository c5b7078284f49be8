"""Private inference on a model kind other than the binary logistic one: linear
regression, whose outputs are values in the label's raw units (the label's pooled
standardisation and its public power of two undone in MPC).

The model is trained in real MPC with the parties in this process (`run_job_in_process`,
the worker's own `run`); the inference job then runs as a node runs it: three real worker
processes and the dealer's TTP process on the gRPC data plane with the cluster's TLS, each
worker reading its node's share of the query rows and the trained job's folder. The
predictions the shares add up to must equal the reconstructed model's plaintext ones.
The logistic model's end-to-end test (through the coordinator) is
tests/coordinator/rounds/test_model_collection.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.datasets import load_diabetes

from mpcnode.share_store import ShareSpec, ShareStore
from mpcnode.worker.inference import PREDICTIONS_FILE
from mutualmind.transport.pki import create_cluster
from mutualmind.vocabulary.dataset import TableSchema
from mutualmind.vocabulary.fixed_point import SCALE
from mutualmind.vocabulary.model_file import predict, read_share_file, reconstruct
from mutualmind.vocabulary.model_spec import parse_model_spec
from provider.sharing import prescale
from tests.mpcnode.worker.cluster import (
    encode,
    free_port,
    plane_fields,
    run_job_in_process,
    split,
    start_ttp,
    start_worker,
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
    names = tuple(f"x{i}" for i in range(features))
    for r, share in enumerate(split(encode(prescale(queries, exponents)), PARTIES)):
        ShareStore(dirs[r]).put_array(ShareSpec.of_array(
            "q-linear", r, share, provider_id="user", schema=TableSchema(names, names, ""),
            purpose="inference", column_exponents=exponents), share)

    certs = tmp_path / "certs"
    create_cluster(certs, PARTIES)
    plane = plane_fields("q-linear", PARTIES, certs)
    port = free_port()
    workers = [start_worker({**worker_spec("q-linear", r, PARTIES, port, dirs[r], tmp_path / f"inf{r}",
                                           ["q-linear"], "", LINEAR),
                             **plane, "kind": "inference", "model_dir": str(tmp_path / f"out{r}")},
                            tmp_path / f"inference{r}.json")
               for r in range(PARTIES)]
    ttp = start_ttp(PARTIES, port, plane)
    try:
        codes = [w.wait(timeout=180) for w in workers]
        ttp.wait(timeout=30)
    finally:
        for process in (*workers, ttp):
            if process.poll() is None:
                process.kill()
    assert codes == [0] * PARTIES, [(tmp_path / f"inf{r}" / "error.json").read_text()
                                    for r in range(PARTIES) if (tmp_path / f"inf{r}" / "error.json").exists()]

    shares = [np.frombuffer((tmp_path / f"inf{r}" / PREDICTIONS_FILE).read_bytes(), dtype="<i8")
              for r in range(PARTIES)]
    with np.errstate(over="ignore"):
        total = shares[0] + shares[1] + shares[2]
    values = total.astype(np.float64).reshape(QUERY_ROWS, -1)[:, 0] / SCALE

    model = reconstruct([read_share_file(tmp_path / f"out{r}" / "weights.bin", trained[r]["weights"]["tensors"])
                         for r in range(PARTIES)])
    plain = predict(model, parse_model_spec(LINEAR), queries)
    # raw label units (diabetes progression, 25..346): fixed point through the folded
    # standardisation and the label's 2^e scale stays well under a tenth of a unit
    assert np.max(np.abs(values - plain)) < 0.1, np.max(np.abs(values - plain))
    assert np.std(plain) > 10          # a model that predicts something, not a constant
    result = json.loads((tmp_path / "inf0" / "result.json").read_text())
    assert result["predictions"]["shape"] == [QUERY_ROWS, 1] and result["comm"]["rounds"] > 0
