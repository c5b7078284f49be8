"""Which rows of a table a provider shares: `--rows A:B` or `--split K/N --seed S`.

A bundled scikit-learn table is one table; several providers following the README each
need their own rows of it, or every dataset in a round would be the same and the
valuation meaningless. `--split K/N` gives the K-th of N disjoint parts of a seeded
permutation, so N providers using the same N and seed get parts that are disjoint and
together cover the table. The selection happens before sharing, on the provider's machine.
"""

from __future__ import annotations

import re

import numpy as np

from mutualmind.errors import InvalidInput

_ROWS = re.compile(r"^(\d*):(\d*)$")
_SPLIT = re.compile(r"^(\d+)/(\d+)$")


def parse_rows(text: str) -> tuple[int | None, int | None]:
    """`A:B` (either end may be left out, as in Python) -> (A, B)."""
    match = _ROWS.match(text.strip())
    if match is None:
        raise InvalidInput(f"--rows {text!r} is not A:B (e.g. 0:200, or 200: for the rest)")
    start, stop = (int(g) if g else None for g in match.groups())
    if start is not None and stop is not None and start >= stop:
        raise InvalidInput(f"--rows {text!r} is empty; A must be below B")
    return start, stop


def parse_split(text: str) -> tuple[int, int]:
    """`K/N` -> (K, N) with 0 <= K < N and N >= 2."""
    match = _SPLIT.match(text.strip())
    if match is None:
        raise InvalidInput(f"--split {text!r} is not K/N (e.g. 0/3: the first of three parts)")
    part, parts = int(match.group(1)), int(match.group(2))
    if parts < 2:
        raise InvalidInput(f"--split {text!r}: N must be 2 or more")
    if part >= parts:
        raise InvalidInput(f"--split {text!r}: K counts from 0 and must be below N={parts}")
    return part, parts


def select_rows(
    values: np.ndarray, *, rows: str | None = None, split: str | None = None, seed: int = 0
) -> np.ndarray:
    """The chosen rows of `values` (all of them when neither `rows` nor `split` is given)."""
    total = int(values.shape[0])
    if rows is not None and split is not None:
        raise InvalidInput("give --rows or --split, not both")
    if rows is not None:
        start, stop = parse_rows(rows)
        start, stop = start or 0, total if stop is None else stop
        if stop > total or start >= total:
            raise InvalidInput(f"--rows {rows!r} is outside the table; it has rows 0:{total}")
        return values[start:stop]
    if split is not None:
        part, parts = parse_split(split)
        if seed < 0:
            raise InvalidInput(f"--seed {seed} must be 0 or more")
        if parts > total:
            raise InvalidInput(f"--split {split!r}: the table has only {total} rows for {parts} parts")
        order = np.random.default_rng(seed).permutation(total)
        return values[np.sort(np.array_split(order, parts)[part])]
    return values
