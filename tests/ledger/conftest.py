"""Shared fixtures: a coordinator key and a small ledger filled by a realistic workload."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger
from ledger.workload import realistic_mix
from mutualmind.vocabulary.signing_keys import generate_signing_key

SHARED_TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata"


@pytest.fixture
def coordinator_key() -> Ed25519PrivateKey:
    return generate_signing_key()


def _fill(path: Path, key: Ed25519PrivateKey, count: int, seed: int = 7) -> None:
    """Create a ledger at `path` holding about `count` realistic entries."""
    ledger = Ledger.create(path, key, params={"nodes": 3})
    try:
        requests = list(realistic_mix(count, seed=seed, providers=8))
        for start in range(0, len(requests), 100):
            ledger.append_many(requests[start : start + 100])
    finally:
        ledger.close()


@pytest.fixture
def fill_ledger():  # type: ignore[no-untyped-def]
    """A function (path, key, count, seed=7) that creates a realistic ledger."""
    return _fill


@pytest.fixture
def filled_ledger(tmp_path: Path, coordinator_key: Ed25519PrivateKey) -> Path:
    path = tmp_path / "ledger.db"
    _fill(path, coordinator_key, 300)
    return path
