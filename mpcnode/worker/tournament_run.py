"""One party of a tournament's MPC job: the freeze (train every model) or the resolve.

Freeze. The chosen datasets are loaded once (rows in the eligible list's order) and
every distinct recipe is trained in ONE batched pass (`training.train_masked`): a public
row mask per trained model, as the round's leave-one-out batching does, where model k
sees the rows of its own datasets and each of its per-dataset variants the rows of its
datasets but one. The features are standardised with the pooled statistics of the loaded
rows (secret, kept with each model; the resolution folds them per model). Nothing is
revealed. Each model's weights and variants are written as this party's shares
(`model-<k>.bin`, raw LE int64, a manifest in result.json), their SHA-256 is exchanged
with the other nodes (each node's digest is a public input, summed and revealed), and
every node computes the same commitment per model (`tournament_job.model_commitment`),
which the node signs and the ledger records before any resolution data exists.

Resolve. The resolution rows are loaded and aligned to the column exponents the freeze
trained under; this party's shares of every frozen model and variant are read back from
the freeze job's directory; `metamodel.resolve` computes the metamodel's metric, each
model's contribution and each dataset's contribution within its model, revealing only
those numbers.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mpcnode.share_store import ShareStore
from mpcnode.worker.backend import Backend, Tensor
from mpcnode.worker.job_spec import WorkerSpec
from mpcnode.worker.lifetime import Deadline
from mutualmind.errors import IntegrityError, InvalidInput
from mutualmind.vocabulary.column_scale import MAX_JOB_ROWS
from mutualmind.vocabulary.fixed_point import FRAC_BITS
from mutualmind.vocabulary.model_spec import ModelSpec
from mutualmind.vocabulary.tournament_job import (
    FREEZE,
    WorkerModel,
    WorkerTournament,
    model_commitment,
)

# a SHA-256 as sixteen 16-bit words: each revealed as word / 2^16 < 1, exact even in the
# float32 that CrypTen's decoder returns (a 32-bit word would lose its low bits)
DIGEST_WORDS = 16


@dataclass(frozen=True)
class Tables:
    """This party's shares of some datasets, with each dataset's column exponents."""

    features: np.ndarray          # [rows, F] int64 fixed point
    labels: np.ndarray            # [rows, 1]
    rows: tuple[int, ...]         # per dataset
    exponents: np.ndarray         # [datasets, F + 1], label last


def load_tables(spec: WorkerSpec, dataset_ids: Sequence[str]) -> Tables:
    """Share number `spec.rank` of each dataset (one schema, checked against its commitment)."""
    from mpcnode.worker.inputs import _columns

    store = ShareStore(spec.data_dir)
    metas = [store.describe(d) for d in dataset_ids]
    schema = metas[0].schema
    for meta in metas:
        if meta.node_index != spec.rank:
            raise IntegrityError(f"share of {meta.dataset_id!r} on this node is share {meta.node_index}, "
                                 f"but this node is rank {spec.rank} of the job")
        if meta.frac_bits != FRAC_BITS or meta.schema != schema:
            raise InvalidInput(f"dataset {meta.dataset_id!r} differs from {metas[0].dataset_id!r} in its "
                               "schema or precision; a tournament's datasets share one schema")
    features, label = _columns(schema)
    total = sum(m.rows for m in metas)
    if total > MAX_JOB_ROWS:
        raise InvalidInput(f"the job's datasets hold {total:,} rows; at most {MAX_JOB_ROWS:,} fit the bounds")
    x = np.empty((total, len(features)), dtype=np.int64)
    y = np.empty((total, 1), dtype=np.int64)
    start = 0
    for meta in metas:
        data = store.load(meta.dataset_id).data
        x[start:start + meta.rows] = data[:, features]
        y[start:start + meta.rows, 0] = data[:, label]
        start += meta.rows
    order = [*features, label]
    exponents = np.array([np.asarray(m.exponents)[order] for m in metas], dtype=np.int64)
    return Tables(x, y, tuple(m.rows for m in metas), exponents)


@dataclass(frozen=True)
class SubsetMasks:
    """Row masks for models that each see a subset of the datasets (`row_masks.ModelMasks`).

    owner[r] is the 1-based dataset of row r; member[j, d] = 1 iff model j sees dataset d."""

    owner: torch.Tensor      # [rows] long
    member: torch.Tensor     # [models, datasets + 1] long

    @classmethod
    def of(cls, rows: Sequence[int], allowed: Sequence[set[int]]) -> SubsetMasks:
        owner = torch.repeat_interleave(torch.arange(1, len(rows) + 1), torch.tensor(list(rows)))
        member = torch.zeros(len(allowed), len(rows) + 1, dtype=torch.long)
        for j, datasets in enumerate(allowed):
            for d in datasets:
                member[j, d] = 1
        return cls(owner, member)

    @property
    def models(self) -> int:
        return int(self.member.size(0))

    @property
    def rows(self) -> int:
        return int(self.owner.numel())

    def batch(self, index: torch.Tensor | None) -> torch.Tensor:
        owners = self.owner if index is None else self.owner[index]
        return self.member[:, owners].unsqueeze(-1)


def variant_sets(model: WorkerModel, dataset_ids: Sequence[str]) -> list[set[int]]:
    """The 1-based datasets the model sees, then those of each variant without one."""
    own = [dataset_ids.index(d) + 1 for d in model.datasets]
    return [set(own), *({o for o in own if o != drop} for drop in own)]


def recipe_groups(models: Sequence[WorkerModel]) -> dict[str, list[int]]:
    """Model indices by recipe (one batched pass each), in submission order."""
    groups: dict[str, list[int]] = {}
    for index, model in enumerate(models):
        groups.setdefault(model.spec.to_json(), []).append(index)
    return groups


def train_frozen(backend: Backend, models: Sequence[WorkerModel], dataset_ids: Sequence[str],
                 x: Tensor, y: Tensor, rows: Sequence[int],
                 on_step: Callable[[int, int], None] | None = None) -> list[list[dict[str, Tensor]]]:
    """Every model's weights, then its variants' ([model][variant] -> tensors), one batched
    pass per recipe; `x`, `y` are left as they were (each pass standardises a copy)."""
    from mpcnode.worker.training import (
        LABEL_MEAN,
        LABEL_SCALE,
        NORMALISE_MEAN,
        NORMALISE_SCALE,
        train_masked,
    )

    trained: dict[int, list[dict[str, Tensor]]] = {}
    for members in recipe_groups(models).values():
        spec = models[members[0]].spec
        allowed = [variant_sets(models[k], dataset_ids) for k in members]
        masks = SubsetMasks.of(rows, [s for sets in allowed for s in sets])
        kept: dict[str, dict[str, Tensor]] = {}

        def keep(backend: Backend, spec: ModelSpec, params: dict[str, Tensor], vx: Tensor, vy: Tensor,
                 kept: dict[str, dict[str, Tensor]] = kept) -> tuple[list[float], float | None]:
            kept["params"] = params
            return [], None

        tx, ty = x.clone(), y.clone()
        result = train_masked(backend, spec, tx, ty, tx[0:1].clone(), ty[0:1].clone(), masks, on_step, keep)
        shared = {name: result.weights[name] for name in (NORMALISE_MEAN, NORMALISE_SCALE, LABEL_MEAN, LABEL_SCALE)
                  if name in result.weights}
        row = 0
        for k, sets in zip(members, allowed, strict=True):
            trained[k] = [{**{n: v[row + j] for n, v in kept["params"].items()}, **shared} for j in range(len(sets))]
            row += len(sets)
    return [trained[k] for k in range(len(models))]


def _digest_words(digest: str) -> list[int]:
    raw = bytes.fromhex(digest)
    return [int.from_bytes(raw[i:i + 2], "big") for i in range(0, 32, 2)]


def exchange_digests(backend: Backend, rank: int, world: int, digests: Sequence[str]) -> list[list[str]]:
    """Every node's digests ([node][model]): each party puts its own in its row of a shared
    table of zeros; revealing the sum gives every row to every party (public values only)."""
    from crypten.mpc import MPCTensor

    table = torch.zeros(world, len(digests), DIGEST_WORDS, dtype=torch.long)
    for k, digest in enumerate(digests):
        table[rank, k] = torch.tensor(_digest_words(digest), dtype=torch.long)
    revealed = backend.reveal(MPCTensor.from_shares(table, precision=FRAC_BITS))
    words = torch.round(revealed * (1 << FRAC_BITS)).to(torch.long).tolist()
    return [[b"".join(int(w).to_bytes(2, "big") for w in model).hex() for model in node] for node in words]


def write_shares(path: Path, variants: Sequence[dict[str, Tensor]]) -> tuple[str, list[dict[str, Any]]]:
    """This party's shares of one model and its variants; (SHA-256 hex, manifest)."""
    from mpcnode.worker.run import _write_weights

    manifest = _write_weights(path, {f"{v}/{name}": value for v, weights in enumerate(variants)
                                     for name, value in weights.items()})
    return hashlib.sha256(path.read_bytes()).hexdigest(), manifest


def read_shares(path: Path, manifest: Sequence[dict[str, Any]], variants: int) -> list[dict[str, Tensor]]:
    """A model's variants from this party's share file (numpy, never pickle)."""
    from crypten.mpc import MPCTensor

    data = np.frombuffer(path.read_bytes(), dtype="<i8")
    out: list[dict[str, Tensor]] = [{} for _ in range(variants)]
    for item in manifest:
        shape = [int(s) for s in item["shape"]]
        size = int(np.prod(shape)) if shape else 1
        offset = int(item["offset"])
        if offset + size > data.size:
            raise IntegrityError(f"the frozen share file {path.name} is shorter than its manifest")
        variant, name = str(item["name"]).split("/", 1)
        share = torch.from_numpy(data[offset:offset + size].astype(np.int64).reshape(shape))
        out[int(variant)][name] = MPCTensor.from_shares(share, precision=FRAC_BITS)
    return out


def run_tournament(spec: WorkerSpec, tournament: WorkerTournament,
                   deadline: Deadline | None = None) -> dict[str, object]:
    """This party's part of the job; the result dict is written to result.json;
    `deadline` (the job's) bounds every wait for a peer, as in a round's job."""
    from mpcnode.worker.backend import CrypTenBackend
    from mpcnode.worker.normalisation import align_columns
    from mpcnode.worker.run import PROGRESS_FILE, RESULT_FILE, init_crypten, write_atomic

    started = time.monotonic()
    output = Path(spec.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    if tournament.phase == FREEZE:
        tables = load_tables(spec, spec.dataset_ids)
        reference = tables.exponents.max(axis=0)
        freeze: dict[str, Any] = {}
    else:
        freeze = json.loads((Path(tournament.freeze_dir) / RESULT_FILE).read_text(encoding="utf-8"))
        tables = load_tables(spec, spec.dataset_ids[:1])
        reference = np.array([*freeze["feature_exponents"], freeze["label_exponent"]], dtype=np.int64)
    crypten = init_crypten(spec, deadline)  # imports CrypTen through mutualmind.crypten_compat first
    try:
        import crypten.communicator as comm
        from crypten.mpc import MPCTensor

        communicator = comm.get()
        communicator.reset_communication_stats()
        backend = CrypTenBackend()

        def secret(array: np.ndarray) -> Tensor:
            return MPCTensor.from_shares(torch.from_numpy(np.ascontiguousarray(array)), precision=FRAC_BITS)

        x, y = secret(tables.features), secret(tables.labels)
        starts = np.concatenate([[0], np.cumsum(tables.rows)])
        for index, exponents in enumerate(tables.exponents):
            shift = reference - exponents
            span = (int(starts[index]), int(starts[index + 1]))
            if (shift < 0).any():  # resolution columns scaled further than the training ones
                _scale_up(x, y, np.maximum(-shift, 0), span)
            align_columns(backend, x, np.maximum(shift[:-1], 0), span)
            align_columns(backend, y, np.maximum(shift[-1:], 0), span)

        def on_step(done: int, total: int) -> None:
            write_atomic(output / PROGRESS_FILE, json.dumps({"done": done, "total": total}).encode(), durable=False)

        if tournament.phase == FREEZE:
            document = _freeze(spec, tournament, backend, x, y, tables, reference, on_step)
        else:
            document = _resolve(spec, tournament, backend, x, y, freeze)
        final = dict(communicator.get_communication_stats())
        document.update({"job_id": spec.job_id, "tournament_id": tournament.tournament_id,
                         "phase": tournament.phase, "rank": spec.rank,
                         "comm": {"rounds": int(final["rounds"]), "bytes": int(final["bytes"]),
                                  "comm_time_s": float(final["time"])},
                         "wall_s": time.monotonic() - started})
        write_atomic(output / RESULT_FILE, json.dumps(document, indent=2, sort_keys=True).encode())
        return document
    finally:
        crypten.uninit()


def _scale_up(x: Tensor, y: Tensor, bits: np.ndarray, span: tuple[int, int]) -> None:
    """Multiply rows [span) by public powers of two per column: exact on the shares."""
    first, last = span
    factors = torch.from_numpy(np.left_shift(np.int64(1), bits))
    x.share[first:last] = x.share[first:last] * factors[:-1].reshape(1, -1)
    y.share[first:last] = y.share[first:last] * factors[-1:].reshape(1, -1)


def _freeze(spec: WorkerSpec, tournament: WorkerTournament, backend: Backend, x: Tensor, y: Tensor,
            tables: Tables, reference: np.ndarray, on_step: Callable[[int, int], None]) -> dict[str, Any]:
    trained = train_frozen(backend, tournament.models, spec.dataset_ids, x, y, tables.rows, on_step)
    output = Path(spec.output_dir)
    digests, files = [], []
    for k, variants in enumerate(trained):
        digest, manifest = write_shares(output / f"model-{k}.bin", variants)
        digests.append(digest)
        files.append({"model_id": tournament.models[k].model_id, "file": f"model-{k}.bin",
                      "variants": len(variants), "tensors": manifest, "sha256": digest})
    every = exchange_digests(backend, spec.rank, spec.world_size, digests)
    if [row[spec.rank] for row in zip(*every)] != digests:
        raise IntegrityError("the exchanged share digests lost this node's own; the freeze is void")
    commitments = [model_commitment(tournament.tournament_id, m.model_id, [node[k] for node in every])
                   for k, m in enumerate(tournament.models)]
    return {"commitments": commitments, "share_digests": every, "models": files,
            "feature_exponents": [int(e) for e in reference[:-1]], "label_exponent": int(reference[-1]),
            "provider_rows": list(tables.rows)}


def _resolve(spec: WorkerSpec, tournament: WorkerTournament, backend: Backend, x: Tensor, y: Tensor,
             freeze: dict[str, Any]) -> dict[str, Any]:
    from mpcnode.worker.metamodel import resolve

    frozen = Path(tournament.freeze_dir)
    files = freeze["models"]
    if [f["model_id"] for f in files] != [m.model_id for m in tournament.models]:
        raise IntegrityError("the freeze job on this node froze other models than this resolution names")
    specs, weights, variants = [], [], []
    extra_specs, extra = [], []
    for k, (model, item) in enumerate(zip(tournament.models, files, strict=True)):
        path = frozen / str(item["file"])
        if hashlib.sha256(path.read_bytes()).hexdigest() != item["sha256"]:
            raise IntegrityError(f"the frozen shares of model {model.model_id!r} changed since the freeze")
        read = read_shares(path, item["tensors"], int(item["variants"]))
        specs.append(model.spec)
        weights.append(read[0])
        for variant in read[1:]:
            extra_specs.append(model.spec)
            extra.append(variant)
            variants.append(k)
    result = resolve(backend, tournament.metric, [*specs, *extra_specs], [*weights, *extra], x, y,
                     tournament.stakes, tournament.cap_ppm, variants, tournament.copy_leaders())
    per_model: list[list[int]] = [[] for _ in tournament.models]
    for k, contribution in zip(variants, result.variant_contributions_micro, strict=True):
        per_model[k].append(contribution)
    return {"metamodel_metric_micro": result.metamodel_metric_micro,
            "contributions_micro": result.contributions_micro,
            "dataset_contributions_micro": per_model, "weights_ppm": result.weights_ppm,
            "metamodel_metric": result.metamodel_metric, "rows": int(x.size(0))}
