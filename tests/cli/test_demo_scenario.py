"""The demo's cast: the tournament's noisy provider misses most of its positive cases
(a bias), and nothing else changes."""

from __future__ import annotations

import numpy as np
import pytest

from mutualmind.demo.scenario import build_scenario
from mutualmind.errors import InvalidInput
from provider.sharing import load_sklearn


def test_missed_positives_turn_only_positive_labels_negative() -> None:
    table = load_sklearn("breast_cancer")
    clean = build_scenario(table, flip_fraction=0.0)
    missed = build_scenario(table, noise="missed", flip_fraction=0.8)
    for before, after in zip(clean.providers, missed.providers, strict=True):
        if after.role != "noisy":
            assert np.array_equal(before.table.values, after.table.values)
            continue
        was, now = before.table.values, after.table.values
        assert np.array_equal(was[:, :-1], now[:, :-1])
        changed = was[:, -1] != now[:, -1]
        assert set(was[changed, -1]) == {1.0} and set(now[changed, -1]) == {0.0}
        assert changed.sum() > 0.6 * (was[:, -1] == 1).sum()
    with pytest.raises(InvalidInput, match="noise"):
        build_scenario(table, noise="loud")
