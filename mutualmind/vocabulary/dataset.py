"""What a shared dataset is, as every role names it: its id rules, purposes and schema.

Dataset ids are chosen by providers and become directory names on every node, so the id
rule lives here once; the schema is the column list a provider signs at registration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeGuard

from mutualmind.errors import InvalidInput

DATASET_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
INT64_BYTES = 8
PURPOSES = ("training", "validation")


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
        if len(set(self.columns)) != len(self.columns):
            raise InvalidInput(f"schema columns repeat a name: {list(self.columns)}")
        missing = [c for c in self.feature_columns if c not in self.columns]
        if missing:
            raise InvalidInput(f"feature columns {missing} are not among the columns")
        if self.label_column and self.label_column not in self.columns:
            raise InvalidInput(f"label column {self.label_column!r} is not among the columns")
        if self.label_column and self.label_column in self.feature_columns:
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
        if not isinstance(raw, dict):
            raise InvalidInput("schema must be an object with columns/feature_columns/label_column")
        columns = raw.get("columns")
        features = raw.get("feature_columns")
        label = raw.get("label_column", "")
        if not _is_str_list(columns) or not _is_str_list(features) or not isinstance(label, str):
            raise InvalidInput("schema fields must be: columns [str], feature_columns [str], label_column str")
        return cls(tuple(columns), tuple(features), label)


def _is_str_list(value: object) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
