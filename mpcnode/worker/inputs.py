"""Load this node's shares of a job's datasets and check they fit together.

Everything here is local: the node's own share files, read by the share store with
numpy (never pickle) and checked against their commitments. What is public about a
dataset - its shape, schema and precision - must agree across the job's datasets;
which rows are whose follows from the provider order.

Providers share every column scaled by a public power of two (`column_scale`); datasets
of one job may use different exponents for a column, so each is aligned to the job's
largest exponent of that column: `shift` says by how many bits (a division by a public
power of two of values at most 1, done by the caller on the secret-shared values).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mpcnode.share_store import ShareStore
from mpcnode.worker.job_spec import WorkerSpec
from mpcnode.worker.memory_budget import JobShape, check_memory
from mutualmind.errors import IntegrityError, InvalidInput
from mutualmind.vocabulary.column_scale import MAX_JOB_ROWS
from mutualmind.vocabulary.dataset import TableSchema
from mutualmind.vocabulary.fixed_point import FRAC_BITS
from mutualmind.vocabulary.valuation import model_count


@dataclass(frozen=True)
class LocalShares:
    """This party's shares: int64 fixed-point (16 fractional bits), rows in provider order."""

    train_features: np.ndarray  # [rows, features]
    train_labels: np.ndarray  # [rows, 1]
    validation_features: np.ndarray
    validation_labels: np.ndarray
    provider_rows: tuple[int, ...]
    schema: TableSchema
    # the job's power-of-two exponent of every feature column and of the label: the
    # values here are raw / 2^exponent once aligned by the shifts below
    feature_exponents: tuple[int, ...] = ()
    label_exponent: int = 0
    # bits to shift each column right to align it, per training dataset [datasets,
    # features + 1] (label last) and for the validation set [features + 1]; None: nothing
    # to align. Per dataset, not per row: a row-sized array would double the memory.
    train_shifts: np.ndarray | None = None
    validation_shift: np.ndarray | None = None


def _columns(schema: TableSchema) -> tuple[list[int], int]:
    if not schema.label_column:
        raise InvalidInput("a dataset used for training needs a label column in its schema")
    if not schema.feature_columns:
        raise InvalidInput("a dataset used for training needs at least one feature column")
    index = {name: i for i, name in enumerate(schema.columns)}
    return [index[c] for c in schema.feature_columns], index[schema.label_column]


def load_local_shares(spec: WorkerSpec) -> LocalShares:
    """Read share number `spec.rank` of every dataset; refuse mismatched inputs.

    Datasets are read one at a time into arrays allocated once for the whole job, so the
    peak is the job's table plus one dataset, not twice the table.
    """
    store = ShareStore(spec.data_dir)
    metas = [store.describe(d) for d in spec.dataset_ids]
    validation_meta = store.describe(spec.validation_dataset_id)
    schema = metas[0].schema
    for meta in [*metas, validation_meta]:
        if meta.node_index != spec.rank:
            raise IntegrityError(
                f"share of {meta.dataset_id!r} on this node is share {meta.node_index}, but this "
                f"node is rank {spec.rank} of the job; check the node order of the round"
            )
        if meta.frac_bits != FRAC_BITS:
            raise InvalidInput(f"dataset {meta.dataset_id!r} has {meta.frac_bits} fractional bits; jobs need {FRAC_BITS}")
        if meta.schema != schema:
            raise InvalidInput(
                f"dataset {meta.dataset_id!r} has a different column schema from "
                f"{metas[0].dataset_id!r}; every dataset of a job shares one schema"
            )
    features, label = _columns(schema)
    rows = sum(m.rows for m in metas)
    if rows > MAX_JOB_ROWS:
        raise InvalidInput(
            f"the job's training datasets hold {rows:,} rows together; the fixed-point bounds "
            f"hold for at most {MAX_JOB_ROWS:,} (docs/mpc.md): include fewer datasets"
        )
    check_memory(
        spec.memory_budget_bytes,
        JobShape(rows, validation_meta.rows, len(features), model_count(spec.model.valuation, len(metas)), spec.model),
    )
    order = [*features, label]
    exponents = np.array([np.asarray(m.exponents)[order] for m in [*metas, validation_meta]])
    job = exponents.max(axis=0)
    shifts = job - exponents
    train_features = np.empty((rows, len(features)), dtype=np.int64)
    train_labels = np.empty((rows, 1), dtype=np.int64)
    start = 0
    for meta in metas:
        data = store.load(meta.dataset_id).data  # checked against its commitment
        train_features[start : start + meta.rows] = data[:, features]
        train_labels[start : start + meta.rows, 0] = data[:, label]
        start += meta.rows
        del data
    validation = store.load(validation_meta.dataset_id).data
    return LocalShares(
        train_features=train_features,
        train_labels=train_labels,
        validation_features=np.ascontiguousarray(validation[:, features]),
        validation_labels=np.ascontiguousarray(validation[:, [label]]),
        provider_rows=tuple(m.rows for m in metas),
        schema=schema,
        feature_exponents=tuple(int(e) for e in job[:-1]),
        label_exponent=int(job[-1]),
        train_shifts=shifts[:-1] if shifts[:-1].any() else None,
        validation_shift=shifts[-1] if shifts[-1].any() else None,
    )
