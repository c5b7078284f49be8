"""`admin tournament verify`'s verdict (pure; the ledger's `tournament_verified` rule uses it too): within the tolerance agrees; beyond it, a
contribution whose side flipped (paid in one run, slashed in the other), or a re-run of
another shape disagrees. The re-run itself: tests/coordinator/rounds/test_tournament.py."""

from __future__ import annotations

from typing import Any

from mutualmind.vocabulary.sign_flips import flip_band
from mutualmind.vocabulary.tournament_verdict import compare

MODELS = [("good", ["a", "b"]), ("noisy", ["a", "n"])]


def _numbers(metric: int, models: list[int], datasets: list[list[int]]) -> dict[str, Any]:
    return {"metamodel_metric_micro": metric, "contributions_micro": models, "dataset_contributions_micro": datasets}


RECORDED = _numbers(170_000, [60_000, -35_000], [[4_000, 2_000], [40_000, -37_000]])


def _verdict(recomputed: dict[str, Any], tolerance: int = 5_000) -> Any:
    return compare("t", MODELS, RECORDED, recomputed, tolerance_micro=tolerance, epsilon_micro=1_000)


def test_a_rerun_within_the_tolerance_agrees() -> None:
    got = _verdict(_numbers(171_500, [58_000, -33_000], [[3_000, 2_500], [41_000, -36_000]]))
    assert got.agrees and got.max_abs_diff_micro == 2_000
    assert [label for label, _, _ in got.rows] == ["metamodel", "good", "noisy", "good/a", "good/b",
                                                   "noisy/a", "noisy/n"]


def test_beyond_the_tolerance_a_flipped_side_or_another_shape_disagrees() -> None:
    far = _verdict(_numbers(180_000, [60_000, -35_000], [[4_000, 2_000], [40_000, -37_000]]))
    assert not far.agrees and far.max_abs_diff_micro == 10_000
    flipped = _verdict(_numbers(170_000, [60_000, -35_000], [[4_000, -1_500], [40_000, -37_000]]), tolerance=10_000)
    assert not flipped.agrees and flipped.flipped == ["good/b"]
    shape = _verdict(_numbers(170_000, [60_000], [[4_000, 2_000]]))
    assert not shape.agrees and shape.flipped == ["shape"]


def test_a_flip_counts_only_beyond_the_band_of_honest_noise() -> None:
    """The test tournament's false alarm: a dataset at +1,129 recorded and -1,556 re-run,
    2,685 apart - within 5,000 micro of re-run noise, yet beyond a 1,000 epsilon each way."""
    rerun = _numbers(170_000, [60_000, -35_000], [[4_000, 2_000 - 3_129 - 427], [40_000, -37_000]])
    recorded_close = _numbers(170_000, [60_000, -35_000], [[4_000, 1_129], [40_000, -37_000]])

    def verdict(band: int | None, tolerance: int) -> Any:
        return compare("t", MODELS, recorded_close, rerun, tolerance_micro=tolerance, epsilon_micro=1_000,
                       flip_band_micro=band)
    assert not verdict(None, 5_000).agrees and verdict(None, 5_000).flipped == ["good/b"]   # an old entry's rule
    assert verdict(2_500, 5_000).agrees and verdict(2_500, 5_000).max_abs_diff_micro == 2_685
    # a clear flip still disagrees under a generous tolerance, and a band below epsilon is epsilon
    clear = _numbers(170_000, [60_000, -35_000], [[4_000, -3_000], [40_000, -37_000]])
    wide = compare("t", MODELS, RECORDED | {"dataset_contributions_micro": [[4_000, 3_000], [40_000, -37_000]]},
                   clear, tolerance_micro=50_000, epsilon_micro=1_000, flip_band_micro=2_500)
    assert not wide.agrees and wide.flipped == ["good/b"]
    assert flip_band(1_000, 5_000) == 2_500 and flip_band(4_000, 5_000) == 4_000
