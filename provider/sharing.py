"""Turn a provider's table into n additive shares, on the provider's own machine.

Steps, each a plain function so they can be tested apart:
  1. load a table: a CSV file (header row) or a scikit-learn bundled dataset by name;
  2. validate it: numeric, finite, within the fixed-point range with headroom, and with
     the schema the round expects - errors name the column and the row;
  3. encode it with CrypTen's FixedPointEncoder (16 fractional bits, ring Z/2^64);
  4. split it into n additive shares: shares 0..n-2 are uniform int64 from `os.urandom`
     (never torch.randint or a seeded generator), the last is x - sum(others) with
     wrapping int64 arithmetic, so any n-1 shares are independent of the data.
  5. commit to each share: SHA-256 of its raw little-endian int64 bytes.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.dataset import TableSchema

FRAC_BITS = 16
# |x| must stay well inside int64 after scaling by 2^16 so that MPC products of two
# encoded values (scale 2^32 before truncation) do not wrap: 2^20 * 2^16 = 2^36.
MAX_ABS_VALUE = float(2**20)
SKLEARN_DATASETS = ("breast_cancer", "wine", "digits", "iris", "diabetes")


@dataclass(frozen=True)
class Table:
    """A plaintext table: float64 values [rows, cols] in `schema.columns` order."""

    values: np.ndarray = field(repr=False)
    schema: TableSchema

    @property
    def rows(self) -> int:
        return int(self.values.shape[0])

    @property
    def cols(self) -> int:
        return int(self.values.shape[1])


@dataclass(frozen=True)
class SharedTable:
    """The n shares of one table and their commitments; share i goes to node i."""

    schema: TableSchema
    rows: int
    cols: int
    frac_bits: int
    shares: list[np.ndarray] = field(repr=False)
    commitments: list[bytes]


def _choose_columns(
    header: Sequence[str], feature_columns: Sequence[str] | None, label_column: str | None
) -> TableSchema:
    """Features (default: every column but the label), then the label, as a schema."""
    unknown = [c for c in [*(feature_columns or []), *([label_column] if label_column else [])] if c not in header]
    if unknown:
        raise InvalidInput(f"columns {unknown} are not in the table; it has {list(header)}")
    features = list(feature_columns) if feature_columns else [c for c in header if c != label_column]
    if not features:
        raise InvalidInput("choose at least one feature column")
    label = label_column or ""
    columns = features + ([label] if label else [])
    return TableSchema(tuple(columns), tuple(features), label)


def load_csv(
    path: Path | str,
    *,
    feature_columns: Sequence[str] | None = None,
    label_column: str | None = None,
) -> Table:
    """Read a CSV with a header row; keep the chosen columns (features, then the label).

    Every kept cell must parse as a number; the error names the column and the data row
    (1-based, the header not counted) so the provider can fix the file.
    """
    path = Path(path)
    try:
        handle = open(path, newline="", encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"no CSV file at {path}") from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise InvalidInput(f"{path} is empty; a CSV needs a header row and data rows")
        header = [h.strip() for h in header]
        if len(set(header)) != len(header):
            raise InvalidInput(f"{path} has repeated column names in its header: {header}")
        schema = _choose_columns(header, feature_columns, label_column)
        positions = [header.index(c) for c in schema.columns]
        rows: list[list[float]] = []
        for row_number, row in enumerate(reader, start=1):
            if not row:
                continue
            if len(row) != len(header):
                raise InvalidInput(
                    f"{path} data row {row_number} has {len(row)} cells, the header has {len(header)}"
                )
            rows.append([_parse_cell(row[p], schema.columns[i], row_number) for i, p in enumerate(positions)])
    if not rows:
        raise InvalidInput(f"{path} has a header but no data rows")
    return Table(np.asarray(rows, dtype=np.float64), schema)


def _parse_cell(text: str, column: str, row_number: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(
            f"column {column!r} data row {row_number}: {text!r} is not a number; "
            "every shared column must be numeric"
        ) from None


def load_sklearn(
    name: str,
    *,
    feature_columns: Sequence[str] | None = None,
    label_column: str | None = "target",
) -> Table:
    """A scikit-learn bundled dataset (for demos), its target as column "target"."""
    if name not in SKLEARN_DATASETS:
        raise InvalidInput(f"unknown scikit-learn dataset {name!r}; choose one of {SKLEARN_DATASETS}")
    from sklearn import datasets  # heavy; only when asked for

    bunch = getattr(datasets, f"load_{name}")()
    names = [str(n) for n in getattr(bunch, "feature_names", [])] or [
        f"x{i}" for i in range(bunch.data.shape[1])
    ]
    header = [*names, "target"]
    values = np.column_stack([np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.float64)])
    schema = _choose_columns(header, feature_columns, label_column)
    positions = [header.index(c) for c in schema.columns]
    return Table(np.ascontiguousarray(values[:, positions]), schema)


def validate_table(
    table: Table,
    *,
    expected_schema: TableSchema | None = None,
    max_abs: float = MAX_ABS_VALUE,
) -> None:
    """Refuse a table that cannot be shared faithfully, naming the first bad cell."""
    values = table.values
    if values.ndim != 2 or values.shape[0] < 1 or values.shape[1] < 1:
        raise InvalidInput(f"a table needs at least one row and one column, got shape {values.shape}")
    if values.shape[1] != len(table.schema.columns):
        raise InvalidInput(f"table has {values.shape[1]} columns, its schema names {len(table.schema.columns)}")
    if not np.issubdtype(values.dtype, np.number):
        raise InvalidInput(f"table values must be numeric, got dtype {values.dtype}")
    if expected_schema is not None and table.schema != expected_schema:
        raise InvalidInput(
            f"table schema {table.schema.to_dict()} does not match the round's schema "
            f"{expected_schema.to_dict()}; choose the same feature and label columns in the same order"
        )
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise InvalidInput(
            f"column {table.schema.columns[col]!r} data row {row + 1}: {values[row, col]} is not a "
            "finite number; remove or impute NaN/inf before sharing"
        )
    too_big = np.abs(values) > max_abs
    if too_big.any():
        row, col = (int(i) for i in np.argwhere(too_big)[0])
        raise InvalidInput(
            f"column {table.schema.columns[col]!r} data row {row + 1}: {values[row, col]:g} is outside "
            f"the fixed-point range +-{max_abs:.0f}; rescale the column before sharing"
        )


def encode_fixed_point(values: np.ndarray, frac_bits: int = FRAC_BITS) -> np.ndarray:
    """CrypTen's fixed-point encoding (x * 2^frac_bits, truncated) as int64 [rows, cols].

    The values go in as a float64 torch tensor: CrypTen's encoder truncates a numpy
    array to integers *before* scaling, and float32 would lose precision.
    """
    import torch

    from mutualmind.crypten_compat import FixedPointEncoder

    encoder = FixedPointEncoder(precision_bits=frac_bits)
    tensor = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64))
    return encoder.encode(tensor).numpy().astype("<i8", copy=False)


def random_int64(shape: tuple[int, ...]) -> np.ndarray:
    """Uniform int64 values from the OS CSPRNG (`os.urandom`), as a writable array."""
    count = math.prod(shape)
    return np.frombuffer(bytearray(os.urandom(count * 8)), dtype="<i8").reshape(shape)


def split_additive(encoded: np.ndarray, n: int) -> list[np.ndarray]:
    """n additive shares over Z/2^64 of an int64 matrix: sum (wrapping) == encoded."""
    if n < 2:
        raise InvalidInput(f"split into at least 2 shares (one per node), got {n}")
    encoded = np.ascontiguousarray(encoded, dtype="<i8")
    shares = [random_int64(encoded.shape) for _ in range(n - 1)]
    last = encoded.copy()
    for share in shares:
        np.subtract(last, share, out=last)  # wraps mod 2^64
    shares.append(last)
    return shares


def recombine(shares: Sequence[np.ndarray]) -> np.ndarray:
    """The wrapping int64 sum of the shares: the fixed-point encoding of the table."""
    if not shares:
        raise InvalidInput("recombine needs at least one share")
    total = np.array(shares[0], dtype="<i8", copy=True)
    for share in shares[1:]:
        np.add(total, share, out=total)
    return total


def share_commitment(share: np.ndarray) -> bytes:
    """SHA-256 of a share's raw little-endian int64 bytes, row-major (what a node checks)."""
    return hashlib.sha256(np.ascontiguousarray(share, dtype="<i8").data.cast("B")).digest()


def share_table(table: Table, n: int, *, frac_bits: int = FRAC_BITS) -> SharedTable:
    """Encode, split into n shares and commit to each (validate the table first)."""
    shares = split_additive(encode_fixed_point(table.values, frac_bits), n)
    return SharedTable(
        schema=table.schema,
        rows=table.rows,
        cols=table.cols,
        frac_bits=frac_bits,
        shares=shares,
        commitments=[share_commitment(s) for s in shares],
    )
