"""One party of a closed tournament's metamodel inference: every frozen model on a user's
query shares, combined with the metamodel's public weights (issue 16).

A tournament's metamodel is no single model file: it is the stake-weighted (capped)
average of the probabilities of every model the freeze trained (`metamodel.py`, steps 1-3
of the resolution, the metamodel row only). This party reads its shares of each frozen
full model (variant 0 of `model-<k>.bin` in its node's freeze job folder, each checked
against the SHA-256 the freeze exchanged and committed to), its node's share of the
query rows, aligns the query's columns to the freeze's column exponents (a public
integer product when the query's exponents are at least the freeze's, as
`provider.predict` chooses; a truncation otherwise), folds each model's standardisation
into its first layer once, and writes this party's share of one probability per row,
[rows, 1] raw LE int64 (16 fractional bits), to `predictions.bin` in the same result
shape as a round model's inference job (`inference.run_inference`). Nothing is revealed.

The weights are public: `metamodel_weights(stakes, cap)` of the stakes the modelers
signed in their submissions (the node verified them, `mpcnode.tournament_check`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mpcnode.share_store import ShareStore
from mpcnode.worker.inference import (
    InferenceKind,
    aligned_query_chunks,
    load_query_share,
    run_inference_kind,
    secret_share,
)
from mpcnode.worker.job_spec import WorkerSpec
from mpcnode.worker.lifetime import Deadline
from mutualmind.errors import IntegrityError
from mutualmind.vocabulary.model_file import read_share_file
from mutualmind.vocabulary.model_spec import ModelSpec
from mutualmind.vocabulary.tournament_job import WorkerTournament

FREEZE_RESULT = "result.json"   # the freeze job's result (tournament_run._freeze)
FULL_MODEL = "0/"               # variant 0 of a frozen model's share file: the full model


@dataclass(frozen=True)
class MetamodelInputs:
    """This party's shares: the query [rows, F] and every frozen full model's tensors."""

    query: np.ndarray
    shift: np.ndarray                  # bits to shift each query column right (negative: left)
    models: list[dict[str, np.ndarray]]
    specs: list[ModelSpec]
    stakes: tuple[int, ...]
    cap_ppm: int


def load_metamodel_inputs(spec: WorkerSpec, tournament: WorkerTournament) -> MetamodelInputs:
    """Read and check this party's query share and frozen model shares (before any network)."""
    frozen = Path(tournament.freeze_dir)
    try:
        freeze = json.loads((frozen / FREEZE_RESULT).read_text(encoding="utf-8"))
        files, reference = freeze["models"], np.asarray(freeze["feature_exponents"], dtype=np.int64)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise IntegrityError(f"the freeze job's files in {frozen.name} are unreadable ({err})") from None
    if [f.get("model_id") for f in files] != [m.model_id for m in tournament.models]:
        raise IntegrityError("the freeze job on this node froze other models than the tournament names")
    models = []
    for model, item in zip(tournament.models, files, strict=True):
        path = frozen / str(item["file"])
        if hashlib.sha256(path.read_bytes()).hexdigest() != item["sha256"]:
            raise IntegrityError(f"the frozen shares of model {model.model_id!r} changed since the freeze")
        tensors = read_share_file(path, [t for t in item["tensors"] if str(t["name"]).startswith(FULL_MODEL)])
        models.append({name[len(FULL_MODEL):]: np.array(t, dtype=np.int64)   # writable copies for torch
                       for name, t in tensors.items()})
    store = ShareStore(spec.data_dir)
    schema = store.describe(tournament.models[0].datasets[0]).schema
    query, exponents = load_query_share(store, spec, schema.feature_columns, "tournament's")
    return MetamodelInputs(query=np.array(query, dtype=np.int64), shift=reference - exponents,
                           models=models, specs=[m.spec for m in tournament.models],
                           stakes=tournament.stakes, cap_ppm=tournament.cap_ppm)


def evaluate_metamodel(inputs: MetamodelInputs,
                       on_chunk: Callable[[int, int], None] = lambda done, total: None) -> np.ndarray:
    """This party's share of the metamodel's probabilities [rows, 1] (LE int64, FRAC_BITS),
    in MPC with the parties of the current CrypTen context; `on_chunk(done, rows)` after
    every row chunk."""
    from mpcnode.worker.backend import CrypTenBackend
    from mpcnode.worker.metamodel import fold_metamodel, metamodel_probabilities

    backend = CrypTenBackend()
    models = [{name: secret_share(t) for name, t in model.items()} for model in inputs.models]
    metamodel = fold_metamodel(backend, inputs.specs, models, inputs.stakes, inputs.cap_ppm)
    rows = inputs.query.shape[0]
    outputs = np.empty((rows, 1), dtype="<i8")
    for start, stop, x in aligned_query_chunks(inputs.query, inputs.shift, metamodel.width):
        outputs[start:stop] = metamodel_probabilities(backend, metamodel, x).share.numpy().reshape(stop - start, 1)
        on_chunk(stop, rows)
    return outputs


def run_metamodel_inference(spec: WorkerSpec, tournament: WorkerTournament, deadline: Deadline | None = None,
                            startup: dict[str, object] | None = None) -> dict[str, object]:
    """Run this party's metamodel inference job; writes predictions.bin and result.json
    as `inference.run_inference` does (the node handles both alike), with the number of
    frozen models it combined. No dealer prefetch: its material is fetched as it goes."""
    return run_inference_kind(spec, InferenceKind(
        load=lambda: load_metamodel_inputs(spec, tournament),
        prefetch=lambda inputs: 0.0,
        evaluate=evaluate_metamodel,
        describe=lambda inputs: {"metamodel": {"models": len(inputs.models)}}), deadline, startup)
