"""What a shared dataset is, as every role names it: its id rules, purposes and schema.

Dataset ids are chosen by providers and become directory names on every node, so the id
rule lives here once; the schema is the column list a provider signs at registration.

The schema rules live here once too, in three layers every role uses:
  - `TableSchema` (and `TableSchema.from_dict` for its JSON form): column names are
    strings of at most 128 characters and distinct, the features and the label are
    among the columns, the label is not a feature; the JSON form has exactly the keys
    columns, feature_columns and label_column. A table may lack a label (features only).
  - `check_table_shape`: a table (or one node's share of it) has 1..MAX_ROWS rows and
    1..MAX_COLUMNS columns, and its schema names every column.
  - `check_registration`: what the ledger accepts as a dataset_registered entry: the
    above, plus at least one feature column and a label column (every registered dataset
    is trained on or validates a model). The ledger's payload check, the coordinator and
    the provider all call it, so they cannot disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeGuard

from mutualmind.errors import InvalidInput

DATASET_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
INT64_BYTES = 8
# "inference": a paying user's query rows for a model (issue 16): features only, no label
PURPOSES = ("training", "validation", "inference")
INFERENCE = "inference"
# rows of one dataset; a job's training rows together have the same limit
# (column_scale.MAX_JOB_ROWS): the fixed-point bounds of docs/mpc.md and the test at the limit
MAX_ROWS = 2_097_152  # 2^21
MAX_COLUMNS = 4096
MAX_NAME_CHARS = 128  # names people read; the ledger bounds them the same (payloads.display_name)
SCHEMA_KEYS = frozenset({"columns", "feature_columns", "label_column"})


def validate_dataset_id(dataset_id: str) -> str:
    """Return `dataset_id` if it is safe to use as a directory name, else InvalidInput.

    Ids are chosen by providers, so they are untrusted input: letters, digits, '.', '_'
    and '-', starting with a letter or digit, at most 64 characters (no '/', no '..').
    """
    if not isinstance(dataset_id, str) or not DATASET_ID_PATTERN.fullmatch(dataset_id):
        raise InvalidInput(
            f"dataset id {dataset_id!r} is not valid: use 1-64 characters from "
            "A-Z a-z 0-9 . _ - starting with a letter or digit"
        )
    return dataset_id


@dataclass(frozen=True)
class TableSchema:
    """The columns of a shared table in share-matrix order, and which are features/label.

    `label_column` is "" for a table without a label (e.g. features only).
    """

    columns: tuple[str, ...]
    feature_columns: tuple[str, ...]
    label_column: str = ""

    def __post_init__(self) -> None:
        for name in (*self.columns, *self.feature_columns, self.label_column):
            if not isinstance(name, str) or len(name) > MAX_NAME_CHARS:
                shown = repr(name)[:40] + ("..." if len(repr(name)) > 40 else "")
                raise InvalidInput(f"schema column name {shown} must be a string of at most "
                                   f"{MAX_NAME_CHARS} characters")
        if len(set(self.columns)) != len(self.columns):
            raise InvalidInput(f"schema columns repeat a name: {list(self.columns)}")
        known = set(self.columns)  # a set: a 4,096-column schema checks in microseconds
        missing = [c for c in self.feature_columns if c not in known]
        if missing:
            raise InvalidInput(f"feature columns {missing} are not among the columns")
        if self.label_column and self.label_column not in self.columns:
            raise InvalidInput(f"label column {self.label_column!r} is not among the columns")
        if self.label_column and self.label_column in set(self.feature_columns):
            raise InvalidInput(f"column {self.label_column!r} is both a feature and the label")

    def to_dict(self) -> dict[str, object]:
        return {
            "columns": list(self.columns),
            "feature_columns": list(self.feature_columns),
            "label_column": self.label_column,
        }

    @classmethod
    def from_dict(cls, raw: object) -> TableSchema:
        """Parse the JSON form; malformed input is InvalidInput, never a KeyError."""
        if not isinstance(raw, dict) or raw.keys() != SCHEMA_KEYS:
            raise InvalidInput("schema must be an object with exactly columns, feature_columns and label_column")
        columns = raw["columns"]
        features = raw["feature_columns"]
        label = raw["label_column"]
        if not _is_str_list(columns) or not _is_str_list(features) or type(label) is not str:
            raise InvalidInput("schema fields must be: columns [str], feature_columns [str], label_column str")
        return cls(tuple(columns), tuple(features), label)


def _is_str_list(value: object) -> TypeGuard[list[str]]:
    return type(value) is list and all(type(v) is str for v in value)


def check_table_shape(rows: object, cols: object, schema: TableSchema, *, what: str = "table") -> None:
    """InvalidInput unless a [rows, cols] `what` fits the limits and `schema` names every column."""
    if type(rows) is not int or not 0 < rows <= MAX_ROWS:
        raise InvalidInput(f"a {what} needs at least one row and at most {MAX_ROWS}, got {rows!r} rows")
    if type(cols) is not int or not 0 < cols <= MAX_COLUMNS:
        raise InvalidInput(f"a {what} needs at least one column and at most {MAX_COLUMNS}, got {cols!r} columns")
    if len(schema.columns) != cols:
        raise InvalidInput(f"schema names {len(schema.columns)} columns but the {what} has {cols}")


def check_registration(rows: object, cols: object, raw_schema: object,
                       purpose: object = "training") -> TableSchema:
    """The schema of a dataset_registered payload, if the registration may go on the ledger.

    A training or validation set trains or validates a model, so it needs feature columns
    and a label column on top of `TableSchema`'s rules and `check_table_shape`; an
    inference set (a user's query rows) is features only: every column a feature, no label.
    """
    schema = TableSchema.from_dict(raw_schema)
    check_table_shape(rows, cols, schema)
    if not schema.feature_columns:
        raise InvalidInput("a registered dataset needs at least one feature column")
    if purpose == INFERENCE:
        if schema.label_column or list(schema.feature_columns) != list(schema.columns):
            raise InvalidInput("an inference dataset holds query rows: every column a feature, "
                               "in the model's order, and no label column")
        return schema
    if not schema.label_column:
        raise InvalidInput("a registered dataset needs a label column (a training or validation set is labelled)")
    return schema
