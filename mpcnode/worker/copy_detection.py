"""Rows of a dataset that repeat rows of a dataset before it, counted inside MPC.

A provider who re-submits another's rows (exactly, with a little noise, half of them,
shuffled) would otherwise earn what the original earns (issue 13). After the pooled
standardisation every column has unit spread, so "the same row" means a small distance:
a row is a copy when its squared distance to some row of an earlier dataset is below
TOLERANCE_PER_FEATURE * features. For each dataset j (the round's order: the order the
round lists its datasets) a public sample of at most SAMPLE_ROWS of its rows, drawn from
a generator seeded by the job's random beacon (`mutualmind.vocabulary.beacon`: 256 bits
from the coordinator, unknown to a provider when it shares its table, on the ledger with
the result), is compared with every row of datasets 0..j-1:

    d(x, y) = |x|^2 + |y|^2 - 2 x.y        one secret-shared matmul per block
    hit(x, y) = [d(x, y) < tolerance]      the comparison protocol (`comparison.py`)
    copied(x) = [sum_y hit(x, y) > 0]      one more comparison per sampled row
    count_j = sum over the sample of copied(x)

and only count_j and the sample size are revealed (the counts go into what every node
signs). `mutualmind.vocabulary.copy_rule` turns them into the copy flag.

Tolerance (docs/copy-detection.md, measured on pooled-standardised tables): honest rows'
nearest earlier neighbour lies at a squared distance per feature of at least 0.034
(breast cancer), 0.10 (wine), 0.014 (digits), 0.0005 (a 3,000-row synthetic credit
table, 6 features; its 1 % quantile is 0.0049); a copy with Gaussian noise of 1 % of a
standardised unit per feature lies below 0.00035. TOLERANCE_PER_FEATURE = 0.001 sits
between them: ~3x above the noisy copies, and honest rows fall under it for at most a
fraction of a percent of rows (the flag needs a quarter).

Cost: the comparisons, s x (rows before j) for every j, in batches of at most
BATCH_COMPARISONS (one comparison call per batch, its memory bounded); the distances
of a batch are one matmul per block. A job whose comparisons would exceed
MAX_COMPARISONS samples fewer rows per dataset (never fewer than MIN_SAMPLE_ROWS); if
even that is too much, no dataset is checked (every sample size is 0, on the ledger for
all to see, and nothing is flagged) rather than a large round running for hours or
being refused. Measured (3 parties, loopback, docs/copy-detection.md): ~680 bytes and
~30 microseconds per comparison, ~120 rounds for a round of six datasets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mpcnode.worker.backend import Backend, Tensor
from mpcnode.worker.normalisation import row_chunks
from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.fixed_point import FRAC_BITS

SAMPLE_ROWS = 64
MIN_SAMPLE_ROWS = 16
TOLERANCE_PER_FEATURE = 1e-3
# comparisons per call of the comparison protocol: ~40 int64 copies of this size at
# the peak of the binary adder, ~80 MB
BATCH_COMPARISONS = 1 << 18
MAX_COMPARISONS = 1 << 22
# squared distances below this fit the untruncated product at scale 2^32 (`_distances`)
UNTRUNCATED_BELOW = 1 << 31


@dataclass(frozen=True)
class CopyCounts:
    """Per dataset: sampled rows within the tolerance of an earlier row, and rows sampled."""

    counts: list[int]
    samples: list[int]
    comparisons: int

    def as_json(self) -> dict[str, list[int]]:
        return {"counts": list(self.counts), "samples": list(self.samples)}


def sample_sizes(provider_rows: Sequence[int], sample_rows: int = SAMPLE_ROWS,
                 max_comparisons: int = MAX_COMPARISONS) -> list[int]:
    """Rows to sample per dataset (0 for the first: nothing was registered before it).

    The sample shrinks (halving, down to MIN_SAMPLE_ROWS) until the comparisons fit
    `max_comparisons`; a round too large even then is not checked (all sizes 0).
    """
    starts = np.concatenate([[0], np.cumsum(provider_rows)]).astype(int)
    size = sample_rows
    while True:
        sizes = [0 if j == 0 else min(size, int(rows)) for j, rows in enumerate(provider_rows)]
        comparisons = sum(s * int(starts[j]) for j, s in enumerate(sizes))
        if comparisons <= max_comparisons:
            return sizes
        if size <= MIN_SAMPLE_ROWS:
            return [0] * len(sizes)
        size = max(MIN_SAMPLE_ROWS, size // 2)


def sample_indices(seed: bytes, dataset: int, rows: int, size: int) -> np.ndarray:
    """`size` distinct row indices of dataset `dataset`, sorted, from the job's seed."""
    digest = hashlib.sha256(b"mutualmind/copy-sample/v1" + seed + dataset.to_bytes(4, "big")).digest()
    generator = np.random.default_rng(int.from_bytes(digest[:16], "big"))
    return np.sort(generator.choice(rows, size=size, replace=False))


def count_copies(backend: Backend, table: Tensor, provider_rows: Sequence[int], seed: bytes,
                 *, sample_rows: int = SAMPLE_ROWS, tolerance_per_feature: float = TOLERANCE_PER_FEATURE,
                 max_comparisons: int = MAX_COMPARISONS) -> CopyCounts:
    """Count each dataset's sampled rows that repeat an earlier dataset's row.

    `table` [rows, features] holds the pooled-standardised training rows in the round's
    dataset order (`provider_rows[j]` rows each); it is only read. Reveals one count per
    dataset, nothing else.
    """
    rows, width = int(table.size(0)), int(table.size(1))
    if rows != sum(provider_rows):
        raise InvalidInput(f"the table has {rows} rows but the datasets hold {sum(provider_rows)}")
    sizes = sample_sizes(provider_rows, sample_rows, max_comparisons)
    starts = np.concatenate([[0], np.cumsum(provider_rows)]).astype(int)
    tolerance = tolerance_per_feature * width
    # pooled-standardised rows: the squared norms sum to features x rows, so a squared
    # distance is at most 2 x features x rows (public; doubled again for the fixed-point
    # standardisation's error); below 2^31 it fits untruncated
    untruncated = 4 * width * rows < UNTRUNCATED_BELOW
    norms = _squared_norms(backend, table)  # [rows, 1]
    picks = [starts[j] + sample_indices(seed, j, int(provider_rows[j]), s) for j, s in enumerate(sizes) if s]
    checked = [j for j, s in enumerate(sizes) if s]
    if not checked:
        return CopyCounts([0] * len(sizes), sizes, 0)
    # every (dataset, block of earlier rows) pair: at most BATCH_COMPARISONS each
    blocks: list[tuple[int, int, int]] = []
    for k, j in enumerate(checked):
        step = max(1, BATCH_COMPARISONS // sizes[j])
        blocks += [(k, start, min(int(starts[j]), start + step)) for start in range(0, int(starts[j]), step)]
    hits: list[Tensor | None] = [None] * len(checked)  # per checked dataset: [s, 1] hit sums
    batch: list[tuple[int, int, int]] = []
    load = 0
    for block in [*blocks, None]:
        size = 0 if block is None else sizes[checked[block[0]]] * (block[2] - block[1])
        if batch and (block is None or load + size > BATCH_COMPARISONS):
            for k, total in _compare_batch(backend, table, norms, picks, batch, tolerance, untruncated):
                hits[k] = total if hits[k] is None else hits[k] + total
            batch, load = [], 0
        if block is not None:
            batch.append(block)
            load += size
    copied = _any_hit(backend, backend.cat([h for h in hits if h is not None], dim=0))
    offsets = np.concatenate([[0], np.cumsum([sizes[j] for j in checked])]).astype(int)
    totals = backend.cat([copied[int(offsets[k]) : int(offsets[k + 1])].sum(0, keepdim=True) for k in range(len(checked))], dim=0)
    revealed = backend.reveal(totals).reshape(-1)
    counts = [0] * len(sizes)
    for k, j in enumerate(checked):
        counts[j] = int(round(float(revealed[k])))
    return CopyCounts(counts, sizes, sum(s * int(starts[j]) for j, s in enumerate(sizes)))


def _squared_norms(backend: Backend, table: Tensor) -> Tensor:
    """|x|^2 of every row, [rows, 1], a chunk of rows at a time (one round per chunk)."""
    rows, width = int(table.size(0)), int(table.size(1))
    parts = [table[start:stop].square().sum(1, keepdim=True) for start, stop in row_chunks(rows, width)]
    return parts[0] if len(parts) == 1 else backend.cat(parts, dim=0)


def _compare_batch(backend: Backend, table: Tensor, norms: Tensor, picks: list[np.ndarray],
                   batch: list[tuple[int, int, int]], tolerance: float,
                   untruncated: bool) -> list[tuple[int, Tensor]]:
    """Hits per sampled row for each block of the batch, from ONE comparison call."""
    flats, shapes = [], []
    for k, start, stop in batch:
        index = torch.from_numpy(picks[k])
        sample, sample_norms = table[index], norms[index]  # [s, f], [s, 1]
        reference, reference_norms = table[start:stop], norms[start:stop]
        distances = _distances(backend, sample, sample_norms, reference, reference_norms, tolerance, untruncated)
        flats.append(distances.reshape(-1))  # < 0: within the tolerance
        shapes.append((int(sample.size(0)), stop - start))
    within = _positive(backend, -backend.cat(flats, dim=0) if len(flats) > 1 else -flats[0])
    results, offset = [], 0
    for (k, _, _), (s, r) in zip(batch, shapes, strict=True):
        results.append((k, within[offset : offset + s * r].reshape(s, r).sum(1, keepdim=True)))
        offset += s * r
    return results


def _distances(backend: Backend, sample: Tensor, sample_norms: Tensor, reference: Tensor,
               reference_norms: Tensor, tolerance: float, untruncated: bool) -> Tensor:
    """d(x, y) - tolerance for every (sampled, reference) pair, [s, r].

    In MPC, when `untruncated`, the product x.y is not truncated: both operands as
    integers (their fixed-point encodings), the result at scale 2^32, the norms and the
    tolerance lifted to it by a public factor (no round). Only its sign is used, and the
    64-bit comparison holds it exactly while |d| < 2^31: the caller's public bound
    (`UNTRUNCATED_BELOW`) guarantees it."""
    if backend.name != "crypten" or not untruncated:
        return sample_norms + reference_norms.transpose(0, 1) - sample.matmul(reference.transpose(0, 1)) * 2 - tolerance
    from crypten.mpc import MPCTensor

    def integers(value: Tensor) -> Tensor:
        return MPCTensor.from_shares(value.share, precision=0)

    lift = 1 << FRAC_BITS
    product = integers(sample).matmul(integers(reference).transpose(0, 1))   # one round, no truncation
    norms = integers(sample_norms) + integers(reference_norms).transpose(0, 1)
    # shares times a public integer: local; the tolerance is added by one party (CrypTen)
    within = MPCTensor.from_shares(norms.share * lift - product.share * 2, precision=0) - round(tolerance * lift * lift)
    return MPCTensor.from_shares(within.share, precision=2 * FRAC_BITS)


def _positive(backend: Backend, value: Tensor) -> Tensor:
    """[value > 0]: in MPC by the packed comparison (`comparison.less_than_zero_packed`:
    the same bit in the same rounds for ~40 % of the bytes; here are millions of them)."""
    if backend.name != "crypten":
        return backend.positive(value)
    from mpcnode.worker.comparison import less_than_zero_packed

    return 1 - less_than_zero_packed(value)


def _any_hit(backend: Backend, sums: Tensor) -> Tensor:
    """[sum > 0] per sampled row. In MPC the sums are integer-encoded (comparison results);
    as fixed point they are compared with 1/2 (both backends: [sum - 1/2 > 0])."""
    if backend.name == "crypten":
        from crypten.mpc import MPCTensor

        sums = MPCTensor.from_shares(sums.share * (1 << FRAC_BITS), precision=FRAC_BITS)
    return backend.positive(sums - 0.5)
