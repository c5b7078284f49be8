"""A closed tournament's metamodel answers queries in MPC: every frozen model evaluated on
the query shares, their probabilities combined with the metamodel's public weights.

Two frozen models (a logistic one and a binary MLP, trained by the freeze's own
`train_frozen` on the plaintext backend: the training is not what is tested here) are
secret-shared into three nodes' freeze job folders as the freeze writes them (each
model's variants in `model-<k>.bin`, a manifest and SHA-256 in result.json). The query
rows are shared at a coarser exponent on one column than the freeze's (as
`provider.predict` may choose). Then the worker's own `load_metamodel_inputs` and
`evaluate_metamodel` run for each party as threads of this process on in-memory links
with the dealer (`plane_memory.run_parties`). The shares must add up to the plaintext
stake-weighted average of the reconstructed models' probabilities.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer

from mpcnode.worker.backend import PlainBackend
from mpcnode.worker.job_spec import parse_worker_spec
from mpcnode.worker.metamodel_inference import evaluate_metamodel, load_metamodel_inputs
from mpcnode.worker.plane_memory import run_parties
from mpcnode.worker.tournament_run import train_frozen
from mutualmind.errors import IntegrityError
from mutualmind.vocabulary.fixed_point import SCALE
from mutualmind.vocabulary.metamodel_weights import metamodel_weights
from mutualmind.vocabulary.model_spec import parse_model_spec
from mutualmind.vocabulary.tournament_job import WorkerModel, WorkerTournament
from tests.mpcnode.worker.cluster import (
    encode,
    memory_plane,
    split,
    store_dataset,
    store_query,
    worker_spec,
)

PARTIES = 3
FEATURES, TRAIN_ROWS, QUERY_ROWS = 6, 160, 20
LOGISTIC = parse_model_spec({"kind": "logistic", "epochs": 6})
MLP = parse_model_spec({"kind": "mlp", "hidden": 4, "epochs": 6})
STAKES, CAP_PPM = (300, 100), 700_000


def _freeze_folders(tmp_path: Path, models: list[WorkerModel], exponents: np.ndarray,
                    x: np.ndarray, y: np.ndarray) -> tuple[list[Path], list[list[dict[str, np.ndarray]]]]:
    """Train the models on the plaintext backend and write each party's share of them as
    the freeze job writes its folder; returns the folders and the plaintext full models."""
    scaled = torch.tensor(np.ldexp(x, -exponents))
    trained = train_frozen(PlainBackend(), models, ("d0",), scaled, torch.tensor(y).reshape(-1, 1), (len(x),))
    folders = [tmp_path / f"freeze{r}" for r in range(PARTIES)]
    for folder in folders:
        folder.mkdir()
    files: list[list[dict[str, object]]] = [[] for _ in range(PARTIES)]
    plain = []
    for k, variants in enumerate(trained):
        flat = {f"{v}/{name}": encode(t.numpy()) for v, weights in enumerate(variants) for name, t in weights.items()}
        plain.append({name: t.numpy() for name, t in variants[0].items()})
        shares = {name: split(value, PARTIES) for name, value in flat.items()}
        for r, folder in enumerate(folders):
            manifest, chunks, offset = [], [], 0
            for name in sorted(flat):
                share = shares[name][r].astype("<i8")
                manifest.append({"name": name, "shape": list(share.shape), "offset": offset})
                chunks.append(share.tobytes())
                offset += share.size
            (folder / f"model-{k}.bin").write_bytes(b"".join(chunks))
            files[r].append({"model_id": models[k].model_id, "file": f"model-{k}.bin", "variants": len(variants),
                             "tensors": manifest, "sha256": hashlib.sha256(b"".join(chunks)).hexdigest()})
    for r, folder in enumerate(folders):
        (folder / "result.json").write_text(json.dumps({
            "models": files[r], "feature_exponents": [int(e) for e in exponents], "label_exponent": 0}))
    return folders, [plain]


def _plain_metamodel(models: list[dict[str, np.ndarray]], kinds: list[str], x: np.ndarray) -> np.ndarray:
    """The stake-weighted (capped) average of the models' probabilities, in numpy."""
    weights = metamodel_weights(list(STAKES), CAP_PPM)
    total = np.zeros(len(x))
    for model, kind, weight in zip(models, kinds, weights, strict=True):
        z = (x - model["normalise_mean"]) * model["normalise_scale"]
        if kind == "mlp":
            z = np.maximum(z @ model["hidden_weight"] + model["hidden_bias"], 0)
        logits = (z @ model["weight"] + model["bias"]).reshape(-1)
        total += weight / 1e6 / (1 + np.exp(-logits))
    return total


def test_metamodel_predictions_are_the_stake_weighted_average_of_the_frozen_models(tmp_path: Path) -> None:
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(7).permutation(len(x))
    x, y = x[order][:, :FEATURES], y[order].astype(np.float64)
    dirs = [tmp_path / f"node{r}" for r in range(PARTIES)]
    # the tournament's training set on every node (the query's schema is checked against it)
    stored = store_dataset(dirs, "d0", x[:TRAIN_ROWS], y[:TRAIN_ROWS])
    exponents = np.asarray(stored[:FEATURES], dtype=np.int64)
    models = [WorkerModel("lin", LOGISTIC, ("d0",)), WorkerModel("net", MLP, ("d0",))]
    folders, (plain,) = _freeze_folders(tmp_path, models, exponents, x[:TRAIN_ROWS], y[:TRAIN_ROWS])

    # the user's rows, column 0 one power of two coarser than the freeze's (an exact shift)
    query_exponents = tuple(int(e) + (1 if i == 0 else 0) for i, e in enumerate(exponents))
    queries = x[TRAIN_ROWS:TRAIN_ROWS + QUERY_ROWS]
    store_query(dirs, "q-meta", queries, query_exponents)
    plane = memory_plane(PARTIES)
    specs = [parse_worker_spec(json.dumps(
        {**worker_spec("q-meta", r, PARTIES, 1, dirs[r], tmp_path / f"inf{r}", ["q-meta"], "",
                       {"kind": "logistic"}), **plane, "kind": "inference", "model_dir": str(folders[r])}))
        for r in range(PARTIES)]
    tournaments = [WorkerTournament("predict", "t1", "log_loss", tuple(models), STAKES, CAP_PPM, str(folders[r]))
                   for r in range(PARTIES)]

    def party(rank: int) -> np.ndarray:
        return evaluate_metamodel(load_metamodel_inputs(specs[rank], tournaments[rank]))

    shares = run_parties(PARTIES, party, job_id="q-meta")
    with np.errstate(over="ignore"):
        total = shares[0] + shares[1] + shares[2]
    got = total.astype(np.float64).reshape(-1) / SCALE
    expected = _plain_metamodel(plain, ["logistic", "mlp"], np.ldexp(queries, -exponents))
    assert shares[0].shape == (QUERY_ROWS, 1)
    assert np.max(np.abs(got - expected)) < 0.02, np.max(np.abs(got - expected))
    assert np.std(expected) > 0.1 and ((expected > 0.5) == (y[TRAIN_ROWS:TRAIN_ROWS + QUERY_ROWS] > 0.5)).mean() > 0.8

    # a frozen share file changed since the freeze is refused before any network
    (folders[1] / "model-1.bin").write_bytes(b"\0" * 8 + (folders[1] / "model-1.bin").read_bytes()[8:])
    with pytest.raises(IntegrityError, match="changed since the freeze"):
        load_metamodel_inputs(specs[1], tournaments[1])
