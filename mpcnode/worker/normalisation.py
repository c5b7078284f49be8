"""Pooled standardisation of a job's tables, in passes of bounded size over the rows.

Training uses standardised features, feature = (raw - mean) * scale with the pooled
training mean and scale = 1 / standard deviation, both kept secret (they become part of
the model's shares). The statistics are per column: only the column sums and sums of
squares run over the rows, and the inverse standard deviation is computed on [features]
vectors (`Backend.inverse_std`), never on the table.

Cost and memory do not grow with rows beyond the table itself: every pass over the rows
works on chunks of at most `chunk_rows(features)` rows, and the table is standardised in
place (each chunk's result overwrites its raw rows). Before, the inverse root's range
reduction multiplied the whole table 23 times, which cost 20x the training steps at
240,000 rows and most of a party's memory at a million.

Fixed-point bounds (docs/mpc.md): raw values are at most 1 (providers scale columns by a
power of two), so a column sum is at most N (2^16 N encoded) and its truncation by N is
the only truncation whose value grows with the row count; the sums of squares are exact
integer sums (`column_sums_of_squares`) accumulated chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from mpcnode.worker.backend import Backend, Tensor

# elements of one chunk of a pass over a table (8 MB per int64 share tensor)
CHUNK_ELEMENTS = 1 << 20


def chunk_rows(width: int) -> int:
    """Rows per chunk for a table `width` columns wide (at least 1,024)."""
    return max(1024, CHUNK_ELEMENTS // max(1, width))


def row_chunks(rows: int, width: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of every chunk of a pass over `rows` rows."""
    step = chunk_rows(width)
    for start in range(0, rows, step):
        yield start, min(rows, start + step)


@dataclass
class Standardisation:
    """feature = (raw - mean) * scale; both [1, columns], secret-shared in MPC."""

    mean: Tensor
    scale: Tensor


def fit(backend: Backend, train: Tensor) -> Standardisation:
    """The pooled mean and inverse standard deviation of every column of `train`.

    The sums of squares are taken around the mean (x - mean), not as sum x^2 - N mean^2,
    which would cancel catastrophically for a column whose spread is small next to its
    level (prices near 1,000 that differ by cents).
    """
    rows, width = int(train.size(0)), int(train.size(1))
    mean = train.sum(0, keepdim=True).div(rows)
    sums = None
    for start, stop in row_chunks(rows, width):
        part = backend.column_sums_of_squares(train[start:stop] - mean)
        sums = part if sums is None else sums + part
    return Standardisation(mean, backend.inverse_std(sums, rows).reshape(1, width))


def apply_in_place(backend: Backend, table: Tensor, standardisation: Standardisation) -> Tensor:
    """Overwrite `table` with its standardised values, chunk by chunk; returns it."""
    rows, width = int(table.size(0)), int(table.size(1))
    for start, stop in row_chunks(rows, width):
        scaled = (table[start:stop] - standardisation.mean) * standardisation.scale
        backend.write_rows(table, start, scaled)
    return table


def align_columns(backend: Backend, table: Tensor, shift: np.ndarray, rows: tuple[int, int]) -> None:
    """Divide rows [start, stop) of `table` by 2^shift per column, in place (chunked).

    Providers scale each column by their own power of two (`column_scale`); the job
    aligns every dataset to its largest exponent: a truncation by public powers of two
    of values at most 1 (failure probability <= 2^-47 per element).
    """
    bits = np.asarray(shift, dtype=np.int64)
    if not bits.any():
        return
    divisors = torch.from_numpy(np.left_shift(np.int64(1), bits)).reshape(1, -1)
    first, last = rows
    for start, stop in row_chunks(last - first, int(table.size(1))):
        part = table[first + start : first + stop]
        backend.write_rows(table, first + start, part.div(divisors))


def standardise(backend: Backend, train: Tensor, validation: Tensor) -> Standardisation:
    """Fit on the training rows, then standardise both tables in place."""
    statistics = fit(backend, train)
    apply_in_place(backend, train, statistics)
    apply_in_place(backend, validation, statistics)
    return statistics
