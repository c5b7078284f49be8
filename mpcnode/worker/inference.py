"""One party of a private inference job: the trained model's shares on a user's query shares.

The round's model stays secret-shared on the nodes (`run.py` wrote this party's share to
the training job's `weights.bin`). A paying user secret-shared its query rows like a
dataset (purpose `inference`); this process builds secret tensors from both shares,
aligns the query's columns to the powers of two the model was trained under
(`column_scale`: the training datasets' largest exponent per column, public), applies the
pooled standardisation and the model, and writes this party's share of the outputs,
[rows, outputs] raw LE int64 (16 fractional bits), to `predictions.bin`. Nothing is
revealed: only the user, adding every node's share, sees a prediction.

Outputs are the logits of a classifier (the user takes the sign or the argmax), or a
regression's value in the label's raw units.

The standardisation is folded into the first layer, so that a row costs one secret
matmul, not a truncated product first:

    ((x - m) * s) W + b  =  x (diag(s) W) + (b - m diag(s) W),

diag(s) W is one product of [features, outputs] tensors, and m diag(s) W is one more row
of the first chunk's matmul: two multiplications per job in all (the MLP adds its relu
and second layer per chunk). Their dealer material (Beaver triples, truncation pairs)
depends only on public shapes, so `prefetch` fetches it in one batched request before
the first product: party 0 makes one round trip to the dealer instead of four, and a
one-row job counts 7 rounds, not 16. The query is aligned exactly (a public integer product)
when its exponents are at least the model's, which `provider.predict` chooses; a finer
column would need a truncation of the table (supported, not needed by our client).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mpcnode.share_store import ShareStore
from mpcnode.worker.job_spec import WorkerSpec
from mpcnode.worker.lifetime import Deadline
from mutualmind.errors import IntegrityError, InvalidInput
from mutualmind.vocabulary.dataset import INFERENCE
from mutualmind.vocabulary.fixed_point import FRAC_BITS
from mutualmind.vocabulary.model_file import MODEL_PARAMETERS, read_share_file
from mutualmind.vocabulary.model_spec import ModelSpec

PREDICTIONS_FILE = "predictions.bin"
# the training job's files this job reads (written by run.py and mpcnode.jobs)
TRAINED_RESULT = "result.json"
TRAINED_REQUEST = "request.json"
TRAINED_WEIGHTS = "weights.bin"


@dataclass(frozen=True)
class InferenceInputs:
    """This party's shares: the query [rows, features] and the model's tensors."""

    query: np.ndarray
    # bits to shift each query column right (negative: left) onto the model's exponents
    shift: np.ndarray
    model: dict[str, np.ndarray]
    label_exponent: int


def load_inputs(spec: WorkerSpec) -> InferenceInputs:
    """Read and check this party's query share and model share (before any network)."""
    store = ShareStore(spec.data_dir)
    model_dir = Path(spec.model_dir)
    try:
        trained = json.loads((model_dir / TRAINED_REQUEST).read_text(encoding="utf-8"))
        manifest = json.loads((model_dir / TRAINED_RESULT).read_text(encoding="utf-8"))["weights"]["tensors"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise IntegrityError(f"the trained model's files in {model_dir.name} are unreadable ({err})") from None
    model = {name: np.ascontiguousarray(t, dtype=np.int64)
             for name, t in read_share_file(model_dir / TRAINED_WEIGHTS, manifest).items()}
    metas = [store.describe(d) for d in [*trained["dataset_ids"], trained["validation_dataset_id"]]]
    schema = metas[0].schema
    query, query_exponents = load_query_share(store, spec, schema.feature_columns, "model's")
    index = {name: i for i, name in enumerate(schema.columns)}
    order = [index[c] for c in schema.feature_columns]
    trained_exponents = np.array([np.asarray(m.exponents)[order] for m in metas]).max(axis=0)
    label = index[schema.label_column]
    label_exponent = int(max(np.asarray(m.exponents)[label] for m in metas))
    return InferenceInputs(query=np.ascontiguousarray(query), model=model, label_exponent=label_exponent,
                           shift=trained_exponents - query_exponents)


def load_query_share(store: ShareStore, spec: WorkerSpec, features: Sequence[str],
                     whose: str) -> tuple[np.ndarray, np.ndarray]:
    """This party's share of the query rows and their column exponents, checked before any
    network: a query set (not a dataset), this node's share, the jobs' fixed point, and
    `features` (`whose` features: the model's, the tournament's) in order. A round model's
    and a tournament metamodel's inference read it alike."""
    query_meta = store.describe(spec.dataset_ids[0])
    if query_meta.purpose != INFERENCE:
        raise InvalidInput(f"dataset {query_meta.dataset_id!r} is a {query_meta.purpose} set, not query rows")
    if query_meta.node_index != spec.rank:
        raise IntegrityError(f"the query share on this node is share {query_meta.node_index}, "
                             f"but this node is rank {spec.rank}")
    if query_meta.frac_bits != FRAC_BITS:
        raise InvalidInput(f"the query rows have {query_meta.frac_bits} fractional bits; jobs need {FRAC_BITS}")
    if list(query_meta.schema.columns) != list(features):
        raise InvalidInput(f"the query columns {list(query_meta.schema.columns)[:5]}... are not the "
                           f"{whose} features {list(features)[:5]}... in order")
    query = store.load(query_meta.dataset_id).data   # checked against its commitment
    return query, np.asarray(query_meta.exponents)


def secret_share(array: np.ndarray) -> Any:
    """This party's share (LE int64, FRAC_BITS) as a CrypTen secret tensor."""
    import torch
    from crypten.mpc import MPCTensor

    return MPCTensor.from_shares(torch.from_numpy(np.ascontiguousarray(array)), precision=FRAC_BITS)


def aligned_query_chunks(query: np.ndarray, shift: np.ndarray, width: int) -> Iterator[tuple[int, int, Any]]:
    """(start, stop, x) for each row chunk of this party's query share, x a secret tensor on
    the model's column exponents: a public integer product where the query's exponent is
    the larger (exact), a truncation where it is the smaller (`shift`: bits right)."""
    import torch

    from mpcnode.worker.normalisation import row_chunks

    right = torch.from_numpy(np.left_shift(np.int64(1), np.maximum(shift, 0))).reshape(1, -1)
    left = torch.from_numpy(np.left_shift(np.int64(1), np.maximum(-shift, 0))).reshape(1, -1)
    for start, stop in row_chunks(query.shape[0], width):
        x = secret_share(query[start:stop])
        if (shift < 0).any():
            x = x * left
        if (shift > 0).any():
            x = x.div(right)
        yield start, stop, x


def dealer_requests(inputs: InferenceInputs, model: ModelSpec) -> list[tuple[str, tuple, dict]]:
    """The dealer material `evaluate` asks for (CrypTen's tuple-provider requests, in
    order), as far as it can be listed from public shapes: the folded product and, per
    row chunk, the first layer's matmul and their truncations. The MLP's comparisons and
    a regression's reciprocal are not listed: they ask the dealer when they run, as
    every request the cache does not hold does (`MaterialCache`). At most
    MATERIAL_BUDGET_BYTES are listed; later chunks ask when they run."""
    import torch

    from mpcnode.worker.dealer_prefetch import MATERIAL_BUDGET_BYTES, material_bytes
    from mpcnode.worker.normalisation import row_chunks

    cpu = {"device": torch.device("cpu")}
    first = "hidden_weight" if model.kind == "mlp" else "weight"
    weight = torch.Size(inputs.model[first].shape)
    width_out = weight[-1]
    rows, width = inputs.query.shape
    requests: list[tuple[str, tuple, dict]] = [
        ("generate_additive_triple", (weight, torch.Size([weight[0], 1]), "mul"), cpu),
        ("wrap_rng", (weight,), cpu)]
    for start, stop in row_chunks(rows, max(width, model.hidden if model.kind == "mlp" else 1)):
        chunk = stop - start + (1 if start == 0 else 0)   # the first carries the mean's row
        step: list[tuple[str, tuple, dict]] = []
        if (inputs.shift > 0).any():
            step.append(("wrap_rng", (torch.Size([stop - start, width]),), cpu))
        step += [("generate_additive_triple", (torch.Size([chunk, width]), weight, "matmul"), cpu),
                 ("wrap_rng", (torch.Size([chunk, width_out]),), cpu)]
        if material_bytes([*requests, *step]) > MATERIAL_BUDGET_BYTES:
            break
        requests += step
    return requests


def prefetch(inputs: InferenceInputs, model: ModelSpec) -> int:
    """Fetch the job's listed dealer material in one batched request before the first
    operation (party 0: one round trip to the dealer instead of two per product); every
    party calls it at the same point. Returns the number of requests fetched."""
    from mpcnode.worker.dealer_prefetch import fill_cache_batched
    from mutualmind.crypten_compat import crypten

    requests = dealer_requests(inputs, model)
    fill_cache_batched(crypten.mpc.get_default_provider(), requests)
    return len(requests)


def evaluate(inputs: InferenceInputs, model: ModelSpec,
             on_chunk: Callable[[int, int], None] = lambda done, total: None) -> np.ndarray:
    """This party's share of the outputs [rows, outputs] (LE int64, FRAC_BITS), evaluated
    in MPC with the parties of the current CrypTen context; `on_chunk(done, rows)` after
    every row chunk."""
    from mpcnode.worker.backend import CrypTenBackend

    backend = CrypTenBackend()
    secret = secret_share
    kind = model.kind
    first, bias = ("hidden_weight", "hidden_bias") if kind == "mlp" else ("weight", "bias")
    params = {n: secret(t) for n, t in inputs.model.items() if n in MODEL_PARAMETERS}
    mean = secret(inputs.model["normalise_mean"])
    # diag(s) W: one product of [features, outputs] tensors, once per job
    folded = params[first] * secret(inputs.model["normalise_scale"]).reshape(-1, 1)
    regression = model.task == "regression"
    if regression:
        label_mean = secret(inputs.model["label_mean"])
        label_std = secret(inputs.model["label_scale"]).reciprocal()
    rows, width = inputs.query.shape
    outputs = np.empty((rows, model.outputs), dtype="<i8")
    shifted_bias = None   # b - m diag(s) W, from the first chunk's extra row
    chunk_width = max(width, model.hidden if kind == "mlp" else 1)
    for start, stop, x in aligned_query_chunks(inputs.query, inputs.shift, chunk_width):
        if shifted_bias is None:  # the pooled mean rides along as one more row
            both = backend.cat([x, mean], 0).matmul(folded)
            shifted_bias = params[bias] - both[-1:]
            pre = both[:-1] + shifted_bias
        else:
            pre = x.matmul(folded) + shifted_bias
        if kind == "mlp":
            hidden, _ = backend.relu_with_gate(pre)
            pre = hidden.matmul(params["weight"]) + params["bias"]
        if regression:
            pre = (pre * label_std + label_mean) * float(2.0 ** inputs.label_exponent)
        outputs[start:stop] = pre.share.numpy().reshape(stop - start, -1)
        on_chunk(stop, rows)
    return outputs


OnChunk = Callable[[int, int], None]


@dataclass(frozen=True)
class InferenceKind:
    """What differs between a round model's and a tournament metamodel's inference job:
    how its inputs load (before torch: bad input fails in a second), the dealer material
    it prefetches (rows of material; 0 for none), its evaluation into [rows, outputs]
    prediction shares, and what its result document adds."""

    load: Callable[[], Any]
    prefetch: Callable[[Any], float]
    evaluate: Callable[[Any, OnChunk], np.ndarray]
    describe: Callable[[Any], dict[str, object]]


def run_inference(spec: WorkerSpec, deadline: Deadline | None = None,
                  startup: dict[str, object] | None = None) -> dict[str, object]:
    """Run this party's inference job on a round's model; writes predictions.bin and
    result.json. `deadline` (the job's) bounds every wait for a peer; `startup` says how
    this process was started (a ready worker's pid and wait, `ready.py`)."""
    return run_inference_kind(spec, InferenceKind(
        load=lambda: load_inputs(spec),
        prefetch=lambda inputs: prefetch(inputs, spec.model),
        evaluate=lambda inputs, on_chunk: evaluate(inputs, spec.model, on_chunk),
        describe=lambda inputs: {}), deadline, startup)


def run_inference_kind(spec: WorkerSpec, kind: InferenceKind, deadline: Deadline | None = None,
                       startup: dict[str, object] | None = None) -> dict[str, object]:
    """The job around an inference `kind`: load, join the parties, prefetch, evaluate
    (progress per chunk), write this party's prediction shares and the result document
    the node reads (the same shape for every kind), then leave CrypTen."""
    started, cpu_started, started_at = time.monotonic(), time.process_time(), time.time()
    output = Path(spec.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    inputs = kind.load()
    loaded = time.monotonic()

    from mpcnode.worker.run import PROGRESS_FILE, RESULT_FILE, init_crypten, write_atomic

    crypten = init_crypten(spec, deadline)
    try:
        import crypten.communicator as comm

        communicator = comm.get()
        connected, cpu_connected = time.monotonic(), time.process_time()
        communicator.reset_communication_stats()
        prefetched = kind.prefetch(inputs)
        fetched = time.monotonic()

        def on_chunk(done: int, total: int) -> None:
            write_atomic(output / PROGRESS_FILE, json.dumps({"done": done, "total": total}).encode(),
                         durable=False)

        outputs = kind.evaluate(inputs, on_chunk)
        rows, columns = int(outputs.shape[0]), int(outputs.shape[1])
        stats = dict(communicator.get_communication_stats())
        write_atomic(output / PREDICTIONS_FILE, outputs.tobytes())
        finished = time.monotonic()
        document: dict[str, object] = {
            "kind": "inference", "job_id": spec.job_id, "model_id": spec.round_id, "rank": spec.rank,
            "rows": rows, "outputs": columns,
            "predictions": {"file": PREDICTIONS_FILE, "frac_bits": FRAC_BITS, "shape": [rows, columns]},
            "comm": {"rounds": int(stats["rounds"]), "bytes": int(stats["bytes"]),
                     "comm_time_s": float(stats["time"]),
                     # the evaluation itself, and what came before it (imports, inputs, joining)
                     "mpc_s": finished - connected, "startup_s": connected - started,
                     # their parts: reading the shares, joining the parties, the dealer's
                     # batched material; CPU seconds of the start and of the evaluation
                     "load_s": loaded - started, "connect_s": connected - loaded,
                     "prefetch_s": fetched - connected, "prefetched": float(prefetched),
                     "startup_cpu_s": cpu_connected - cpu_started,
                     "mpc_cpu_s": time.process_time() - cpu_connected,
                     # wall clock (s since the epoch) at the job's start and result: the
                     # benchmark places them between the order and the user's fetch
                     "started_at": started_at, "finished_at": time.time(),
                     # a ready worker's wait for the job: 0 when it was still importing
                     "ready_idle_s": float((startup or {}).get("idle_s", 0.0)),  # type: ignore[arg-type]
                     "ready_worker": 1.0 if (startup or {}).get("mode") == "ready" else 0.0},
            "wall_s": finished - started, "mpc_s": finished - connected,
            "startup": startup or {"mode": "cold"},
            **kind.describe(inputs),
        }
        write_atomic(output / RESULT_FILE, json.dumps(document, indent=2, sort_keys=True).encode())
        return document
    finally:
        crypten.uninit()
