"""Where entries are, by round, dataset, party and kind: the ledger's read indexes.

Callers ask "this round's entries", "this dataset's registration", "this provider's
history"; answering from the file alone means reading every entry. `EntryIndex` keeps,
for each key, the ascending list of entry indexes that name it, plus one byte per entry
for its kind, so a query is a dictionary lookup and a bisect, and only the entries it
returns are read from SQLite.

It is derived data, like the Merkle tree: built from the entries when a ledger is opened
and extended by `add` only after a group commit is on disk, so a refused or failed batch
never reaches it (there is nothing to roll back). Pure Python, no I/O.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from mutualmind.errors import IntegrityError
from mutualmind.vocabulary.payloads import KINDS, parties_of

KIND_CODES: dict[str, int] = {kind: code for code, kind in enumerate(KINDS)}

_EMPTY: tuple[int, ...] = ()


class EntryIndex:
    """Entry indexes by round id, dataset id, party and kind; see the module docstring."""

    def __init__(self) -> None:
        self._kinds = bytearray()                  # entry index -> kind code
        self._by_kind: dict[str, list[int]] = {}
        self._by_round: dict[str, list[int]] = {}   # payload round_id
        self._by_dataset: dict[str, list[int]] = {}  # payload dataset_id
        self._by_party: dict[str, list[int]] = {}   # parties_of(kind, payload)
        self._registered: dict[tuple[str, str], int] = {}  # (kind, id) -> registration entry
        self._datasets_of: dict[str, list[str]] = {}  # provider id -> its dataset ids

    @property
    def size(self) -> int:
        return len(self._kinds)

    def add(self, index: int, kind: str, payload: dict[str, Any]) -> None:
        """Record entry `index` (the next one: entries arrive in order, each once)."""
        if index != len(self._kinds):
            raise IntegrityError(f"index of entry {index} arrives when it holds {len(self._kinds)}")
        self._kinds.append(KIND_CODES[kind])
        self._by_kind.setdefault(kind, []).append(index)
        round_id = payload.get("round_id")
        if isinstance(round_id, str):
            self._by_round.setdefault(round_id, []).append(index)
        dataset_id = payload.get("dataset_id")
        if isinstance(dataset_id, str):
            self._by_dataset.setdefault(dataset_id, []).append(index)
        for party in parties_of(kind, payload):
            self._by_party.setdefault(party, []).append(index)
        if kind == "provider_registered":
            self._registered[kind, payload["provider_id"]] = index
        elif kind == "dataset_registered":
            self._registered[kind, payload["dataset_id"]] = index
            self._datasets_of.setdefault(payload["provider_id"], []).append(payload["dataset_id"])

    def add_all(self, added: Iterable[tuple[int, str, dict[str, Any]]]) -> None:
        for index, kind, payload in added:
            self.add(index, kind, payload)

    # -- queries -------------------------------------------------------------------

    def registration(self, kind: str, key: str) -> int | None:
        """The index of the provider_registered / dataset_registered entry of `key`."""
        return self._registered.get((kind, key))

    def datasets_of(self, provider_id: str) -> tuple[str, ...]:
        """The dataset ids `provider_id` registered, in ledger order."""
        return tuple(self._datasets_of.get(provider_id, ()))

    def kind_of(self, index: int) -> str:
        return _KIND_NAMES[self._kinds[index]]

    def by_round(self, round_id: str, **select: Any) -> list[int]:
        return self._select(self._by_round.get(round_id, _EMPTY), **select)

    def by_dataset(self, dataset_id: str, **select: Any) -> list[int]:
        return self._select(self._by_dataset.get(dataset_id, _EMPTY), **select)

    def by_party(self, party: str, **select: Any) -> list[int]:
        return self._select(self._by_party.get(party, _EMPTY), **select)

    def by_kind(self, kind: str, **select: Any) -> list[int]:
        return self._select(self._by_kind.get(kind, _EMPTY), **select)

    def _select(
        self, indexes: list[int] | tuple[int, ...], *, kinds: Iterable[str] | None = None,
        start: int = 0, stop: int | None = None, limit: int | None = None,
    ) -> list[int]:
        """The indexes in [start, stop) of one of `kinds` (any when None), at most `limit`."""
        first = bisect_left(indexes, start) if start > 0 else 0
        last = len(indexes) if stop is None else bisect_left(indexes, stop, first)
        if kinds is None:
            end = last if limit is None else min(last, first + limit)
            return list(indexes[first:end])
        codes = {KIND_CODES[k] for k in kinds}
        found: list[int] = []
        entry_kinds = self._kinds
        for position in range(first, last):
            index = indexes[position]
            if entry_kinds[index] in codes:
                found.append(index)
                if limit is not None and len(found) >= limit:
                    break
        return found


_KIND_NAMES: tuple[str, ...] = tuple(KINDS)
