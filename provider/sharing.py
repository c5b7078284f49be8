"""Turn a provider's table into n additive shares, on the provider's own machine.

Steps, each a plain function so they can be tested apart:
  1. load a table: a CSV file (header row) or a scikit-learn bundled dataset by name;
  2. validate it: numeric, finite, within the fixed-point range with headroom, and with
     the schema the round expects - errors name the column and the row;
  3. scale every column by its public power of two (`column_scale`: |x'| <= 1, exact in
     float64; class labels are left as they are) and encode it as CrypTen's
     FixedPointEncoder does (16 fractional bits, ring Z/2^64; computed in numpy);
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
from mutualmind.vocabulary.column_scale import (
    MAX_ABS_VALUE,
    MAX_CLASSES,
    REAL_LABEL,
    check_label_classes,
    column_exponent,
    describe_labels,
)
from mutualmind.vocabulary.dataset import TableSchema, check_table_shape
from mutualmind.vocabulary.fixed_point import FRAC_BITS

# label kinds a provider declares (`--labels`): binary 0/1, classes:K (0..K-1), real
LABEL_KINDS = ("binary", "classes:K", "real")

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
    # the public power of two each column was divided by before encoding (column_scale)
    column_exponents: tuple[int, ...] = ()
    # 0: a real-valued target; k >= 2: labels are the integers 0..k-1
    label_classes: int = 2


def parse_label_kind(text: str) -> int:
    """`binary` -> 2, `classes:K` -> K, `real` -> 0 (the registration's label_classes)."""
    value = text.strip().lower()
    if value == "binary":
        return 2
    if value == "real":
        return REAL_LABEL
    if value.startswith("classes:"):
        try:
            classes = int(value.split(":", 1)[1])
        except ValueError:
            classes = -1
        check_label_classes(classes if classes >= 2 else -1)
        return classes
    raise InvalidInput(f"label kind {text!r} is not one of {LABEL_KINDS}")


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
        return _read_csv(path, feature_columns, label_column)
    except UnicodeDecodeError as err:
        raise InvalidInput(
            f"{path} is not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start}); "
            "save it as UTF-8 (e.g. 'CSV UTF-8' in a spreadsheet, or iconv -f latin1 -t utf-8)"
        ) from None
    except csv.Error as err:
        raise InvalidInput(f"{path} is not a readable CSV file ({err})") from None
    except FileNotFoundError:
        raise InvalidInput(f"no CSV file at {path}") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a directory; give the path of a CSV file") from None
    except OSError as err:
        raise InvalidInput(f"cannot read {path}: {err.strerror or err}") from None


def _read_csv(path: Path, feature_columns: Sequence[str] | None, label_column: str | None) -> Table:
    # utf-8-sig: a byte-order mark (Excel writes one) is dropped, never part of a column name
    with open(path, newline="", encoding="utf-8-sig") as handle:
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
    label_classes: int | None = None,
) -> None:
    """Refuse a table that cannot be shared faithfully, naming the first bad cell.

    With `label_classes` (k >= 2) every label must be one of the integers 0..k-1: the
    nodes never see labels, so a label 1000 for a binary model is refused here or never.
    """
    values = table.values
    if values.ndim != 2 or values.shape[0] < 1 or values.shape[1] < 1:
        raise InvalidInput(f"a table needs at least one row and one column, got shape {values.shape}")
    check_table_shape(table.rows, table.cols, table.schema)
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
    if label_classes is not None:
        check_labels(table, label_classes)


def check_labels(table: Table, label_classes: int) -> None:
    """Labels must be what the provider declares (see `column_scale`), naming a bad row."""
    check_label_classes(label_classes)
    if label_classes == REAL_LABEL or not table.schema.label_column:
        return
    column = table.schema.columns.index(table.schema.label_column)
    labels = table.values[:, column]
    bad = (labels != np.round(labels)) | (labels < 0) | (labels > label_classes - 1)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise InvalidInput(
            f"label column {table.schema.label_column!r} data row {row + 1}: {labels[row]:g} is not "
            f"one of {describe_labels(label_classes)}; recode the labels as 0..{label_classes - 1}, "
            "or declare another label kind (--labels binary | classes:K | real)"
        )


def column_exponents(table: Table, label_classes: int) -> tuple[int, ...]:
    """Each column's public power of two: the smallest e with max |x| <= 2^e (class
    labels keep exponent 0: they are compared with class indices, never normalised)."""
    magnitudes = np.abs(table.values).max(axis=0)
    exponents = [column_exponent(float(m)) for m in magnitudes]
    if table.schema.label_column and label_classes != REAL_LABEL:
        exponents[table.schema.columns.index(table.schema.label_column)] = 0
    return tuple(exponents)


def prescale(values: np.ndarray, exponents: Sequence[int]) -> np.ndarray:
    """values * 2^-e per column, exact in float64 (what is encoded and shared)."""
    return np.ldexp(np.asarray(values, dtype=np.float64), -np.asarray(exponents, dtype=np.int64)[None, :])


def encode_fixed_point(values: np.ndarray, frac_bits: int = FRAC_BITS) -> np.ndarray:
    """CrypTen's fixed-point encoding (x * 2^frac_bits, truncated toward zero) as int64
    [rows, cols].

    CrypTen's FixedPointEncoder on a float64 tensor computes `(2^frac_bits * x).long()`;
    this is the same arithmetic in numpy (scaling by a power of two is exact in float64,
    the cast truncates toward zero like `.long()`), so `provider share` does not import
    torch and CrypTen (over a second of CPU) to multiply. test_provider_sharing.py checks
    it against CrypTen's encoder. (CrypTen's encoder on a numpy array would truncate to
    integers before scaling, and float32 would lose precision: neither is used.)
    """
    scaled = np.ldexp(np.asarray(values, dtype=np.float64), frac_bits)
    return np.ascontiguousarray(scaled.astype("<i8"))


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


def infer_label_classes(table: Table) -> int:
    """What the labels look like: integers 0..k-1 (k <= 64) give k (at least 2), anything
    else a real-valued target. For tools and tests; the CLI asks the provider instead."""
    if not table.schema.label_column:
        return REAL_LABEL
    labels = table.values[:, table.schema.columns.index(table.schema.label_column)]
    if np.all(labels == np.round(labels)) and labels.min() >= 0 and labels.max() < MAX_CLASSES:
        return max(2, int(labels.max()) + 1)
    return REAL_LABEL


def share_table(
    table: Table, n: int, *, label_classes: int | None = None, frac_bits: int = FRAC_BITS,
    at_least: Sequence[int] | None = None,
) -> SharedTable:
    """Check the labels, scale each column by its public power of two, encode, split into
    n shares and commit to each (validate the table first). `label_classes` is what the
    provider declares (None: inferred from the labels). `at_least`: a floor for each
    column's exponent (a user's query rows take the model's, so the nodes align them
    exactly: `mpcnode.worker.inference`)."""
    if label_classes is None:
        label_classes = infer_label_classes(table)
    check_labels(table, label_classes)
    exponents = column_exponents(table, label_classes)
    if at_least is not None:
        exponents = tuple(max(own, floor) for own, floor in zip(exponents, at_least, strict=True))
    shares = split_additive(encode_fixed_point(prescale(table.values, exponents), frac_bits), n)
    return SharedTable(
        schema=table.schema,
        rows=table.rows,
        cols=table.cols,
        frac_bits=frac_bits,
        shares=shares,
        commitments=[share_commitment(s) for s in shares],
        column_exponents=exponents,
        label_classes=label_classes,
    )
