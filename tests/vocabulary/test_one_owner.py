"""Rules with one owner: schema checks, the registration payload, deadlines, fixed point."""

from __future__ import annotations

from typing import Any

import pytest

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.dataset import (
    MAX_COLUMNS,
    TableSchema,
    check_registration,
    check_table_shape,
)
from mutualmind.vocabulary.deadlines import MAX_JOB_S, ROUND_S, round_deadline
from mutualmind.vocabulary.fixed_point import FRAC_BITS, SCALE
from mutualmind.vocabulary.payloads import validate_payload
from mutualmind.vocabulary.signed_requests import (
    dataset_registration_payload,
    dataset_registration_proto,
    signed_dataset_registration,
)
from mutualmind.vocabulary.signing_keys import generate_signing_key

SCHEMA = {"columns": ["a", "b", "y"], "feature_columns": ["a", "b"], "label_column": "y"}


def _registration(**changes: Any) -> dict[str, Any]:
    payload = {"dataset_id": "d1", "provider_id": "p1", "rows": 10, "cols": 3, "frac_bits": FRAC_BITS,
               "schema": SCHEMA, "share_commitments": ["00" * 32] * 3, "purpose": "training",
               "column_exponents": [0, 0, 0], "label_classes": 2,
               "nonce": "n" * 16}
    payload.update(changes)
    return payload


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"schema": {**SCHEMA, "label_column": "z"}}, "label column 'z' is not among the columns"),
        ({"schema": {**SCHEMA, "feature_columns": ["a", "y"]}}, "both a feature and the label"),
        ({"schema": {**SCHEMA, "columns": ["a", "a", "y"]}}, "repeat a name"),
        ({"schema": {**SCHEMA, "label_column": ""}}, "needs a label column"),
        ({"schema": {**SCHEMA, "feature_columns": []}}, "at least one feature column"),
        ({"schema": {**SCHEMA, "extra": 1}}, "exactly columns, feature_columns and label_column"),
        ({"cols": 4}, "schema names 3 columns but the table has 4"),
        ({"rows": 0}, "at least one row"),
    ],
)
def test_the_ledger_refuses_a_registration_the_schema_rules_refuse(changes: dict[str, Any], fragment: str) -> None:
    validate_payload("dataset_registered", _registration())
    with pytest.raises(InvalidInput, match=fragment):
        validate_payload("dataset_registered", _registration(**changes))
    with pytest.raises(InvalidInput, match=fragment):
        p = _registration(**changes)
        check_registration(p["rows"], p["cols"], p["schema"])


def test_a_table_may_lack_a_label_but_not_fit_the_limits() -> None:
    features_only = TableSchema(("a", "b"), ("a", "b"))
    check_table_shape(5, 2, features_only)
    with pytest.raises(InvalidInput, match="at most 4096"):
        check_table_shape(5, MAX_COLUMNS + 1, features_only)
    with pytest.raises(InvalidInput, match="at most 128 characters"):
        TableSchema(("x" * 1025,), ("x" * 1025,))


def test_the_registration_payload_round_trips_through_its_one_builder() -> None:
    key = generate_signing_key()
    reg = signed_dataset_registration(
        key, dataset_id="d1", provider_id="p1", rows=10, cols=3, frac_bits=FRAC_BITS,
        schema=TableSchema.from_dict(SCHEMA), share_commitments=[bytes(32)] * 3)
    payload = dataset_registration_payload(reg)
    again = dataset_registration_proto(payload, reg.signature)
    assert again == reg
    assert dataset_registration_payload(again) == payload


def test_deadline_defaults_have_one_owner() -> None:
    assert round_deadline(0.0) == ROUND_S == 600.0
    assert round_deadline(42.0) == 42.0
    assert MAX_JOB_S == 24 * 3600


def test_fixed_point_precision_is_crypten_s() -> None:
    from mutualmind.crypten_compat import crypten

    assert SCALE == 2**FRAC_BITS == 65536
    assert crypten.cfg.encoder.precision_bits == FRAC_BITS
