"""The ledger's read API: every indexed query equals a naive scan of every entry, the
indexes survive refused and failed group commits unchanged, reopening rebuilds the same
indexes, and the state and tree it hands out cannot be written through."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import Entry, Ledger
from ledger.workload import Market, realistic_mix
from mutualmind.errors import IntegrityError, InvalidInput, MutualMindError, NotFound
from mutualmind.vocabulary.payloads import KINDS, parties_of
from mutualmind.vocabulary.signing_keys import generate_signing_key

ROUND_KINDS = ("round_opened", "round_result", "slash", "payout", "round_closed",
               "round_aborted", "round_verified")


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return generate_signing_key()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, key: Ed25519PrivateKey) -> Iterator[Ledger]:
    """A realistic ledger (rounds, stakes, transfers...) of ~1,500 entries, read-only here."""
    path = tmp_path_factory.mktemp("index") / "ledger.db"
    requests = list(realistic_mix(1500, seed=11, providers=8))
    with Ledger.create(path, key, params={"nodes": 3}) as writer:
        for start in range(0, len(requests), 500):
            writer.append_many(requests[start : start + 500])
    ledger = Ledger.open(path)
    yield ledger
    ledger.close()


def scan(ledger: Ledger) -> list[Entry]:
    """The naive reference: every entry, straight from the file."""
    return ledger.entries(start=0, limit=None)


def keys(ledger: Ledger) -> dict[str, list[str]]:
    state = ledger.state
    return {"rounds": [*state.rounds, "no-such-round"],
            "datasets": [*state.datasets, "no-such-dataset"],
            "parties": [*state.providers, "no-such-party"]}


def test_round_dataset_and_provider_queries_equal_a_full_scan(built: Ledger) -> None:
    everything = scan(built)
    names = keys(built)
    assert len(names["rounds"]) > 5 and len(names["datasets"]) > 10  # the workload has them
    for round_id in names["rounds"]:
        naive = [e for e in everything if e.kind in ROUND_KINDS and e.payload["round_id"] == round_id]
        assert built.round_entries(round_id) == naive
        for kind in ("round_opened", "round_result", "payout"):
            assert built.round_entries(round_id, kind) == [e for e in naive if e.kind == kind]
        if naive:
            assert built.round_opened(round_id) == naive[0]
    for dataset_id in names["datasets"]:
        naive = [e for e in everything if e.payload.get("dataset_id") == dataset_id]
        assert built.dataset_entries(dataset_id) == naive
        stop = naive[len(naive) // 2].index if naive else 0
        assert built.dataset_entries(dataset_id, stop=stop) == [e for e in naive if e.index < stop]
        registered = [e for e in naive if e.kind == "dataset_registered"]
        if registered:
            assert built.dataset_registration(dataset_id) == registered[0]
    for party in names["parties"]:
        naive = [e for e in everything if party in parties_of(e.kind, e.payload)]
        assert built.entries_for_party(party, limit=None) == naive
        assert built.provider_entries(party) == naive
        registered = [e for e in naive if e.kind == "provider_registered"]
        if registered:
            assert built.provider_registration(party) == registered[0]
        owned = [e.payload["dataset_id"] for e in naive if e.kind == "dataset_registered"]
        assert list(built.provider_datasets(party)) == owned


def test_unknown_names_are_typed_errors(built: Ledger) -> None:
    with pytest.raises(NotFound, match="no-such-round"):
        built.round_opened("no-such-round")
    with pytest.raises(NotFound, match="no-such-dataset"):
        built.dataset_registration("no-such-dataset")
    with pytest.raises(NotFound, match="register it first"):
        built.provider_registration("nobody")
    with pytest.raises(InvalidInput, match="unknown kind"):
        built.round_entries("round-1", "no_such_kind")


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_filtered_listing_equals_a_filtered_scan(built: Ledger, data: st.DataObject) -> None:
    everything = scan(built)
    party = data.draw(st.sampled_from([None, *keys(built)["parties"]]), label="party")
    kind = data.draw(st.sampled_from([None, *KINDS]), label="kind")
    start = data.draw(st.integers(0, built.size), label="start")  # beyond the end is refused
    limit = data.draw(st.one_of(st.none(), st.integers(1, 300)), label="limit")
    naive = [e for e in everything if e.index >= start
             and (kind is None or e.kind == kind)
             and (party is None or party in parties_of(e.kind, e.payload))]
    assert built.entries(start=start, limit=limit, kind=kind, party=party) == naive[:limit]


# -- writes: refused and failed batches, reopen ------------------------------------------

def answers(ledger: Ledger) -> dict[str, Any]:
    """Every query's answer for every known name (what an index change would show in)."""
    names = keys(ledger)
    return {
        "rounds": {r: ledger.round_entries(r) for r in names["rounds"]},
        "datasets": {d: ledger.dataset_entries(d) for d in names["datasets"]},
        "parties": {p: ledger.entries_for_party(p, limit=None) for p in names["parties"]},
        "owned": {p: ledger.provider_datasets(p) for p in names["parties"]},
        "kinds": {k: ledger.entries(kind=k, limit=None) for k in KINDS},
    }


@pytest.fixture
def small(tmp_path: Path, key: Ed25519PrivateKey) -> Iterator[tuple[Ledger, Market]]:
    market = Market()
    ledger = Ledger.create(tmp_path / "small.db", key)
    ledger.append_many([
        market.register_node(0), market.register_node(1),
        market.register_provider("p0"), market.register_provider("p1"),
        market.mint("p0", 1000), market.mint("p1", 1000),
        market.register_dataset("ds-0", "p0"), market.register_dataset("ds-1", "p1"),
        market.register_dataset("ds-2", "p1"),
        market.register_dataset("val", "p0", "validation"),
        market.stake("p0", "ds-0", 100), market.stake("p1", "ds-1", 100),
        market.stake("p1", "ds-2", 100),
    ])
    yield ledger, market
    ledger.close()


def test_a_refused_batch_leaves_the_indexes_as_they_were(small: tuple[Ledger, Market]) -> None:
    ledger, market = small
    before = answers(ledger)
    batch = [market.register_provider("p2"), market.register_dataset("ds-3", "p0"),
             market.open_round("r1", "p0", 100, "val", ["ds-0", "ds-1", "ds-2"]),
             market.transfer("p1", "p0", 10**9)]   # refused: p1 has 1000
    with pytest.raises(MutualMindError, match="insufficient_balance|has 1000 tokens"):
        ledger.append_many(batch)
    assert answers(ledger) == before
    assert ledger.round_entries("r1") == [] and ledger.provider_datasets("p0") == ("ds-0", "val")
    with pytest.raises(NotFound):
        ledger.provider_registration("p2")
    # the same entries, accepted, show up at once
    first = ledger.size
    ledger.append_many(batch[:3])
    assert [e.kind for e in ledger.round_entries("r1")] == ["round_opened"]
    assert ledger.provider_datasets("p0") == ("ds-0", "val", "ds-3")
    assert ledger.provider_registration("p2").index == first


def test_a_group_commit_that_fails_on_disk_leaves_the_indexes_as_they_were(
    small: tuple[Ledger, Market],
) -> None:
    """Every rule passed, then COMMIT could not happen: the index must not have moved."""
    ledger, market = small
    before, size = answers(ledger), ledger.size
    intruder = sqlite3.connect(ledger.path)   # another writer sneaks a row in
    intruder.execute("INSERT INTO entries VALUES (?, 0, 'mint', x'7b7d', x'', x'', x'', NULL)", (size,))
    intruder.commit()
    with pytest.raises(IntegrityError, match="changed under this writer"):
        ledger.append_many([market.register_provider("p3"), market.mint("p3", 5)])
    intruder.close()
    assert ledger.size == size
    assert ledger.entries_for_party("p3") == []
    with pytest.raises(NotFound):
        ledger.provider_registration("p3")
    stored = ledger.entries(kind="mint", limit=None)
    assert stored == before["kinds"]["mint"]   # the intruder's row is not indexed either
    assert answers(ledger) == before


def test_reopening_rebuilds_the_same_indexes(built: Ledger, key: Ed25519PrivateKey, tmp_path: Path) -> None:
    reopened = Ledger.open(built.path)
    try:
        assert vars(reopened._index) == vars(built._index)
        assert answers(reopened) == answers(built)
    finally:
        reopened.close()


def test_live_indexes_equal_replayed_ones(small: tuple[Ledger, Market]) -> None:
    ledger, market = small
    ledger.append(*market.open_round("r1", "p0", 100, "val", ["ds-0", "ds-1", "ds-2"]))
    ledger.append(*market.round_result("r1", [900_000, 880_000, 905_000, 890_000]))
    ledger.append_many([("payout", {"round_id": "r1", "to": "p1", "amount": 100}, None),
                        ("round_closed", {"round_id": "r1"}, None)])
    live = answers(ledger)
    path = ledger.path
    ledger.close()
    with Ledger.open(path) as replayed:
        assert answers(replayed) == live
        assert [e.kind for e in replayed.round_entries("r1")] == [
            "round_opened", "round_result", "payout", "round_closed"]


# -- read-only state and tree -----------------------------------------------------------

def test_state_and_tree_cannot_be_written_through(small: tuple[Ledger, Market]) -> None:
    ledger, _ = small
    state = ledger.state
    with pytest.raises(TypeError):
        state.balances["p0"] = 10**9  # type: ignore[index]
    with pytest.raises(TypeError):
        state.stakes["ds-0"] = 0  # type: ignore[index]
    with pytest.raises(TypeError):
        state.providers["evil"] = b"k" * 32  # type: ignore[index]
    with pytest.raises(AttributeError):
        ledger.state = state  # type: ignore[misc]
    state.datasets["ds-0"]["provider_id"] = "p1"     # a copy: the ledger's stays put
    state.datasets["ds-0"]["share_commitments"].append("00" * 32)
    assert ledger.state.datasets["ds-0"]["provider_id"] == "p0"
    assert len(ledger.state.datasets["ds-0"]["share_commitments"]) == 2
    assert not hasattr(ledger.tree, "append") and not hasattr(ledger.tree, "truncate")
    assert ledger.tree.leaf(3) == ledger.leaf_hash(3) and ledger.tree.size == ledger.size
    with pytest.raises(InvalidInput):
        ledger.tree.leaf(ledger.size)
    assert state.balance("p0") == 900 and state.supply_holds()
