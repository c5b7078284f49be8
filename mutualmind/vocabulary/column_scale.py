"""The public numeric facts a provider signs about its table, and the ring bounds they buy.

MPC arithmetic runs in Z/2^64 with 16 fractional bits, and CrypTen's 3-party truncation
of a value x fails (one element becomes garbage) with probability about |x| / 2^64. A raw
column in dollars (250,000) has a pooled sum of squares far outside the ring, so every
column is brought into a known range *on the provider's machine*, exactly, before it is
encoded:

    x' = x * 2^-e_c     with e_c the smallest integer such that max |x_c| <= 2^e_c,

so |x'| <= 1 for every feature column (and for a real-valued label). The exponents e_c
are coarse (a power of two, no statistic beyond the magnitude), public, and part of the
provider-signed registration. Inside a job every dataset's column c is aligned to the
largest exponent E_c of the job (a division by the public 2^(E_c - e_c) of values at most
1), and the collected model folds 2^E_c back into its normalisation in float64, so the
released model predicts on raw values.

Bounds (N = training rows of a job, at most MAX_JOB_ROWS = 2^21):
  * sums over rows: |sum x'| <= N, encoded N * 2^16 <= 2^37; the mean's truncation by N
    fails with probability <= 2^-27 per column;
  * centred values |x' - mean| <= 2, so the pooled sum of squares is <= 4N <= 2^23 as a
    value, 2^39 encoded (summed exactly per chunk by `column_sums_of_squares`), inside
    the inverse standard deviation's range reduction (up to 4^17 = 2^34);
  * values are 2^-16 apart relative to the column's bound: mixed magnitudes (1e-3 next to
    1e6) keep their own precision because each column has its own exponent.
The sums of the training step itself (gradients x^T (p - y), at scale 2^32 before
truncation) are truncated per block of at most 8,192 rows (`training.sums_over_rows`), so
no truncated value grows with the row count, full batch or not.

Labels are secret-shared, so the coordinator cannot check them: the provider declares
`label_classes` (k >= 2: labels are the integers 0..k-1, never scaled; 0: a real-valued
target, scaled like a feature), the provider-side checker enforces it before sharing,
and opening a round checks the declaration against the model kind.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.dataset import MAX_ROWS

# raw values the share-time check admits (|x| <= 2^20 = 1,048,576)
MAX_ABS_EXPONENT = 20
MAX_ABS_VALUE = float(2**MAX_ABS_EXPONENT)
# columns whose largest magnitude is below 2^-24 are scaled up by at most 2^24
MIN_EXPONENT = -24
# rows of one job (all training datasets together) the bounds above are proven for
MAX_JOB_ROWS = MAX_ROWS  # 2^21: tested at the limit (tests/mpcnode/worker/test_scale.py)
# classification labels: binary is 2, multiclass at most 64 classes (the model spec's limit)
MAX_CLASSES = 64
REAL_LABEL = 0


def column_exponent(max_abs: float) -> int:
    """The smallest e in [MIN_EXPONENT, MAX_ABS_EXPONENT] with max_abs <= 2^e (0 for 0)."""
    if not math.isfinite(max_abs) or max_abs < 0:
        raise InvalidInput(f"a column bound must be a finite magnitude, got {max_abs!r}")
    if max_abs > MAX_ABS_VALUE:
        raise InvalidInput(f"|value| {max_abs:g} is outside the admitted range +-{MAX_ABS_VALUE:.0f}")
    if max_abs == 0:
        return 0
    mantissa, exponent = math.frexp(max_abs)  # max_abs = mantissa * 2^exponent, mantissa in [0.5, 1)
    if mantissa == 0.5:
        exponent -= 1  # an exact power of two is its own bound
    return max(MIN_EXPONENT, exponent)


def check_exponents(exponents: Sequence[int], cols: int) -> None:
    """InvalidInput unless there is one exponent per column, each in the admitted range."""
    if len(exponents) != cols:
        raise InvalidInput(f"column_exponents must give one exponent per column ({cols}), got {len(exponents)}")
    bad = [e for e in exponents if type(e) is not int or not MIN_EXPONENT <= e <= MAX_ABS_EXPONENT]
    if bad:
        raise InvalidInput(
            f"column exponents {bad[:3]} are outside {MIN_EXPONENT}..{MAX_ABS_EXPONENT} "
            f"(values up to +-2^{MAX_ABS_EXPONENT} are admitted)"
        )


def check_label_classes(label_classes: int) -> None:
    if type(label_classes) is not int or not (label_classes == REAL_LABEL or 2 <= label_classes <= MAX_CLASSES):
        raise InvalidInput(
            f"label_classes {label_classes!r} must be 0 (a real-valued target) or a class count "
            f"from 2 to {MAX_CLASSES} (labels 0..k-1)"
        )


def describe_labels(label_classes: int) -> str:
    if label_classes == REAL_LABEL:
        return "a real-valued target"
    if label_classes == 2:
        return "binary labels 0/1"
    return f"class labels 0..{label_classes - 1}"


def check_labels_fit_model(dataset_id: str, label_classes: int, task: str, classes: int) -> None:
    """InvalidInput naming the dataset unless its declared labels suit the model's task:
    binary needs 0/1, multiclass 0..k-1 with at most the model's k classes, regression a
    real-valued target (bounded and scaled like a feature)."""
    fits = {
        "binary": label_classes == 2,
        "multiclass": 2 <= label_classes <= classes,
        "regression": label_classes == REAL_LABEL,
    }.get(task, False)
    if not fits:
        wanted = {
            "binary": "binary labels 0/1",
            "multiclass": f"class labels 0..{classes - 1}",
            "regression": "a real-valued target (share it with --labels real)",
        }.get(task, task)
        raise InvalidInput(
            f"dataset {dataset_id!r} declares {describe_labels(label_classes)} but the round's "
            f"{task} model needs {wanted}; leave it out or choose a model for its labels"
        )
