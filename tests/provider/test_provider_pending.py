"""Kept shares of a registered dataset: written raw, read back checked, never unpickled."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest

from mutualmind.errors import IntegrityError, NotFound
from provider.pending import load_pending, remove_pending, save_pending
from provider.sharing import load_sklearn, share_table


def test_pending_round_trip_and_tamper_detection(tmp_path: Path) -> None:
    shared = share_table(load_sklearn("iris"), 3)
    folder = save_pending(tmp_path, "iris-1", shared)
    assert stat.S_IMODE((folder / "share1.bin").stat().st_mode) == 0o600
    loaded = load_pending(tmp_path, "iris-1")
    assert loaded.commitments == shared.commitments and loaded.schema == shared.schema
    assert all(np.array_equal(a, b) for a, b in zip(loaded.shares, shared.shares))

    raw = bytearray((folder / "share2.bin").read_bytes())
    raw[5] ^= 1
    (folder / "share2.bin").write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match="pending share 2 of 'iris-1' no longer matches"):
        load_pending(tmp_path, "iris-1")
    (folder / "share2.bin").write_bytes(bytes(raw[:-8]))
    with pytest.raises(IntegrityError, match="missing or has the wrong size"):
        load_pending(tmp_path, "iris-1")
    remove_pending(tmp_path, "iris-1")
    with pytest.raises(NotFound, match="no pending upload of 'iris-1'"):
        load_pending(tmp_path, "iris-1")


def test_the_pending_folder_goes_once_it_holds_no_dataset(tmp_path: Path) -> None:
    base = tmp_path / "p.key.pending"
    shared = share_table(load_sklearn("iris"), 2)
    save_pending(base, "iris-1", shared)
    save_pending(base, "iris-2", shared)
    remove_pending(base, "iris-1")
    assert [p.name for p in base.iterdir()] == ["iris-2"]
    remove_pending(base, "iris-2")
    assert not base.exists()
    remove_pending(base, "iris-2")   # nothing to remove: no error
