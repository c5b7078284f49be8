"""Provider-side sharing with real CrypTen encoding and real OS randomness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

from mutualmind.crypten_compat import FixedPointEncoder
from mutualmind.errors import InvalidInput, PermissionDenied
from mutualmind.vocabulary.column_scale import MAX_ABS_VALUE, column_exponent
from mutualmind.vocabulary.dataset import TableSchema
from provider.sharing import (
    Table,
    encode_fixed_point,
    load_csv,
    load_sklearn,
    parse_label_kind,
    prescale,
    recombine,
    share_commitment,
    share_table,
    split_additive,
    validate_table,
)


def _write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_columns_features_then_label(tmp_path: Path) -> None:
    csv_path = _write_csv(tmp_path / "t.csv", "id,age,y,bmi\n1,30,0,22.5\n2,41.5,1,30\n")
    table = load_csv(csv_path, feature_columns=["bmi", "age"], label_column="y")
    assert table.schema == TableSchema(("bmi", "age", "y"), ("bmi", "age"), "y")
    assert table.values.tolist() == [[22.5, 30.0, 0.0], [30.0, 41.5, 1.0]]
    every = load_csv(csv_path, label_column="y")
    assert every.schema.feature_columns == ("id", "age", "bmi")


def test_csv_non_numeric_cell_names_column_and_row(tmp_path: Path) -> None:
    csv_path = _write_csv(tmp_path / "t.csv", "a,b\n1,2\n3,oops\n")
    with pytest.raises(InvalidInput, match=r"column 'b' data row 2: 'oops' is not a number"):
        load_csv(csv_path)


def test_csv_unknown_column_and_ragged_row(tmp_path: Path) -> None:
    csv_path = _write_csv(tmp_path / "t.csv", "a,b\n1,2\n3\n")
    with pytest.raises(InvalidInput, match=r"columns \['zz'\] are not in the table"):
        load_csv(csv_path, label_column="zz")
    with pytest.raises(InvalidInput, match="data row 2 has 1 cells, the header has 2"):
        load_csv(csv_path)
    with pytest.raises(InvalidInput, match="no CSV file"):
        load_csv(tmp_path / "missing.csv")


def test_nan_inf_and_range_are_refused_with_position() -> None:
    schema = TableSchema(("a", "b"), ("a", "b"))
    with pytest.raises(InvalidInput, match=r"column 'b' data row 2: nan is not a finite number"):
        validate_table(Table(np.array([[1.0, 2.0], [3.0, np.nan]]), schema))
    with pytest.raises(InvalidInput, match=r"column 'a' data row 1: inf"):
        validate_table(Table(np.array([[np.inf, 2.0]]), schema))
    with pytest.raises(InvalidInput, match=r"column 'a' data row 1: 2e\+06 is outside the fixed-point range"):
        validate_table(Table(np.array([[2e6, 2.0]]), schema))


def test_schema_must_match_the_rounds() -> None:
    table = Table(np.ones((2, 2)), TableSchema(("a", "y"), ("a",), "y"))
    validate_table(table, expected_schema=TableSchema(("a", "y"), ("a",), "y"))
    with pytest.raises(InvalidInput, match="does not match the round's schema"):
        validate_table(table, expected_schema=TableSchema(("b", "y"), ("b",), "y"))


def test_encoding_is_crypten_fixed_point() -> None:
    values = np.array([[1.5, -2.25], [1e-5, 1234.56789]])
    expected = FixedPointEncoder(precision_bits=16).encode(torch.tensor(values, dtype=torch.float64))
    encoded = encode_fixed_point(values)
    assert encoded.dtype == np.dtype("<i8")
    assert np.array_equal(encoded, expected.numpy())
    assert encoded[0].tolist() == [98304, -147456]
    # bit for bit CrypTen's over what is shared (|x| <= 1 after column scaling), and at
    # the edges: negatives truncated toward zero, the smallest steps, the admitted limit
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.uniform(-1, 1, (500, 4)), rng.normal(0, 1e-4, (500, 4)),
                             np.array([[-2.0**-17, 2.0**-17, -(2.0**-16), 2.0**20],
                                       [-1.0, 1.0, 0.0, -(2.0**20)]])])
    expected = FixedPointEncoder(precision_bits=16).encode(torch.tensor(values, dtype=torch.float64))
    assert np.array_equal(encode_fixed_point(values), expected.numpy())


@pytest.mark.parametrize("n", [2, 3, 5])
def test_shares_recombine_to_the_encoding(n: int) -> None:
    table = load_sklearn("wine")
    shared = share_table(table, n)
    assert len(shared.shares) == n
    encoded = encode_fixed_point(prescale(table.values, shared.column_exponents))
    assert np.array_equal(recombine(shared.shares), encoded)
    assert np.array_equal(recombine(shared.shares[:-1]), recombine(shared.shares[:-1]))
    assert not np.array_equal(recombine(shared.shares[:-1]), encoded)
    assert shared.commitments == [share_commitment(s) for s in shared.shares]
    assert len(set(shared.commitments)) == n


def test_a_share_is_uniform_bytes() -> None:
    """Chi-square on byte values of one share of a very regular table (all zeros)."""
    zeros = np.zeros((20000, 4), dtype=np.int64)
    for share in split_additive(zeros, 3):
        counts = np.bincount(share.view(np.uint8).ravel(), minlength=256)
        assert stats.chisquare(counts).pvalue > 1e-4
        bits = np.unpackbits(share.view(np.uint8))
        assert abs(bits.mean() - 0.5) < 0.005


def test_replacing_the_data_leaves_share_distribution_unchanged() -> None:
    """KS test: node 0's and node 2's shares of two unlike tables come from one distribution."""
    a = encode_fixed_point(np.zeros((5000, 4)))
    b = encode_fixed_point(np.random.default_rng(0).normal(100.0, 50.0, size=(5000, 4)))
    for node in (0, 2):
        share_a = split_additive(a, 3)[node].ravel()
        share_b = split_additive(b, 3)[node].ravel()
        assert stats.ks_2samp(share_a, share_b).pvalue > 1e-4
    # ...while the data itself is obviously distinguishable
    assert stats.ks_2samp(a.ravel(), b.ravel()).pvalue < 1e-10


def test_sklearn_datasets_load_with_target_label() -> None:
    for name, rows, features in [("iris", 150, 4), ("breast_cancer", 569, 30), ("diabetes", 442, 10)]:
        table = load_sklearn(name)
        assert table.rows == rows and table.cols == features + 1
        assert table.schema.label_column == "target"
        validate_table(table)
    with pytest.raises(InvalidInput, match="unknown scikit-learn dataset 'mnist'"):
        load_sklearn("mnist")


def test_split_needs_two_shares() -> None:
    with pytest.raises(InvalidInput, match="at least 2 shares"):
        split_additive(np.zeros((1, 1), dtype=np.int64), 1)


@settings(max_examples=60, deadline=None)
@given(
    values=arrays(np.int64, st.tuples(st.integers(1, 20), st.integers(1, 6)),
                  elements=st.integers(-(2**63), 2**63 - 1)),
    n=st.integers(2, 6),
)
def test_any_int64_matrix_splits_and_recombines_exactly(values: np.ndarray, n: int) -> None:
    """Additive sharing is exact over the whole ring, extremes included (wrap-around)."""
    shares = split_additive(values, n)
    assert len(shares) == n and all(s.shape == values.shape and s.dtype == np.dtype("<i8") for s in shares)
    assert np.array_equal(recombine(shares), values)


def test_column_exponent_is_the_smallest_power_of_two_bound() -> None:
    assert [column_exponent(v) for v in (0.0, 1.0, 1.5, 2.0, 250_000.0, MAX_ABS_VALUE, 1e-3)] == [0, 0, 1, 1, 18, 20, -9]
    assert column_exponent(1e-30) == -24  # scaled up by at most 2^24
    with pytest.raises(InvalidInput, match="admitted range"):
        column_exponent(MAX_ABS_VALUE * 1.01)


def test_every_shared_column_lands_in_plus_minus_one_and_labels_stay_integers() -> None:
    """Dollars next to thousandths: each column gets its own exponent, so after scaling
    every feature is within [-1, 1] with its own 16 fractional bits of precision."""
    rng = np.random.default_rng(3)
    values = np.column_stack([rng.uniform(0, 250_000, 50), rng.uniform(-1e-3, 1e-3, 50),
                              np.full(50, -MAX_ABS_VALUE), rng.integers(0, 2, 50)])
    table = Table(values, TableSchema(("income", "tiny", "edge", "y"), ("income", "tiny", "edge"), "y"))
    validate_table(table, label_classes=2)
    shared = share_table(table, 3, label_classes=2)
    assert shared.column_exponents == (18, -10, 20, 0)
    decoded = recombine(shared.shares) / 2**16
    assert np.abs(decoded[:, :3]).max() <= 1.0
    assert np.array_equal(decoded[:, 3], values[:, 3])  # 0/1 labels are shared as they are
    # relative precision 2^-16 of each column's bound, the thousandths included
    assert np.allclose(np.ldexp(decoded[:, 1], -10), values[:, 1], rtol=0, atol=2**-16 * 2**-10)


@pytest.mark.parametrize(("kind", "labels", "fragment"), [
    ("binary", [0, 1000], "1000 is not one of binary labels 0/1"),
    ("binary", [0, 0.5], "0.5 is not one of binary labels 0/1"),
    ("classes:3", [0, 3], "3 is not one of class labels 0..2"),
    ("classes:3", [-1, 2], "-1 is not one of class labels 0..2"),
])
def test_labels_that_do_not_fit_the_declared_kind_are_refused_before_sharing(
    kind: str, labels: list[float], fragment: str
) -> None:
    table = Table(np.column_stack([[1.0, 2.0], labels]), TableSchema(("x", "y"), ("x",), "y"))
    with pytest.raises(InvalidInput, match=fragment) as caught:
        validate_table(table, label_classes=parse_label_kind(kind))
    assert "data row" in caught.value.message and "--labels" in caught.value.message
    with pytest.raises(InvalidInput, match=fragment):
        share_table(table, 3, label_classes=parse_label_kind(kind))


def test_label_kinds_parse_and_bad_ones_are_refused() -> None:
    assert [parse_label_kind(k) for k in ("binary", "real", "classes:10")] == [2, 0, 10]
    for bad in ("classes:1", "classes:65", "classes:x", "ordinal"):
        with pytest.raises(InvalidInput):
            parse_label_kind(bad)


def test_a_registration_carries_one_exponent_per_column_and_a_valid_label_kind() -> None:
    from mutualmind.vocabulary.signed_requests import (
        signed_dataset_registration,
        verify_dataset_registration,
    )
    from mutualmind.vocabulary.signing_keys import (
        generate_signing_key,
        public_key_bytes,
    )

    key = generate_signing_key()
    shared = share_table(load_sklearn("wine"), 3, label_classes=3)
    fields: dict[str, Any] = {"dataset_id": "wine-1", "provider_id": "p", "rows": shared.rows, "cols": shared.cols,
              "frac_bits": 16, "schema": shared.schema, "share_commitments": list(shared.commitments)}
    reg = signed_dataset_registration(key, **fields, column_exponents=shared.column_exponents, label_classes=3)
    verify_dataset_registration(reg, public_key_bytes(key))
    assert list(reg.column_exponents) == list(shared.column_exponents) and reg.label_classes == 3
    for bad, fragment in (({"column_exponents": [0] * (shared.cols - 1)}, "one exponent per column"),
                          ({"column_exponents": [21] * shared.cols}, "exponents"),
                          ({"label_classes": 1}, "label_classes")):
        with pytest.raises(InvalidInput, match=fragment):
            signed_dataset_registration(key, **{**fields, **bad})
    # the exponents are signed: changing one breaks the provider's signature
    reg.column_exponents[0] += 1
    with pytest.raises(PermissionDenied):
        verify_dataset_registration(reg, public_key_bytes(key))
