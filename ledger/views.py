"""Read-only faces of the ledger's state and Merkle tree, for everyone but the ledger.

`Ledger` is the only writer of its `LedgerState` and `MerkleTree`: a caller that changed
a balance in memory, or appended a leaf, would make the live ledger disagree with its
file until the next restart. So `Ledger.state` and `Ledger.tree` hand out these views:
mappings that refuse item assignment (`MappingProxyType`), immutable values (ints,
bytes, frozen `RoundRecord`s) or fresh copies (dataset payloads and params, which are
JSON objects), and only the tree's reading methods.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from ledger.merkle_tree import MerkleTree
from ledger.ownership_rules import OwnershipView
from ledger.state import LedgerState, RoundRecord
from ledger.tournament_rules import TournamentRecord
from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.dataset_terms import DatasetTerms


def json_copy(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists, scalars): cheaper than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value


class _CopiedValues(Mapping[str, dict[str, Any]]):
    """A mapping of JSON objects whose every read returns a copy (the ledger's stays put)."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, dict[str, Any]]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> dict[str, Any]:
        return json_copy(self._data[key])  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data


class StateView:
    """What `LedgerState` knows, readable and not writable; see the module docstring."""

    __slots__ = ("_state",)

    def __init__(self, state: LedgerState) -> None:
        self._state = state

    @property
    def size(self) -> int:
        return self._state.size

    @property
    def coordinator_key(self) -> bytes | None:
        return self._state.coordinator_key

    @property
    def origin(self) -> str:
        return self._state.origin

    @property
    def params(self) -> dict[str, Any]:
        return json_copy(self._state.params)  # type: ignore[no-any-return]

    @property
    def providers(self) -> Mapping[str, bytes]:
        return MappingProxyType(self._state.providers)

    @property
    def nodes(self) -> Mapping[int, bytes]:
        return MappingProxyType(self._state.nodes)

    @property
    def balances(self) -> Mapping[str, int]:
        return MappingProxyType(self._state.balances)

    @property
    def stakes(self) -> Mapping[str, int]:
        return MappingProxyType(self._state.stakes)

    @property
    def datasets(self) -> Mapping[str, dict[str, Any]]:
        return _CopiedValues(self._state.datasets)

    @property
    def rounds(self) -> Mapping[str, RoundRecord]:
        return MappingProxyType(self._state.rounds)

    @property
    def terms(self) -> Mapping[str, DatasetTerms]:
        """Each dataset's current terms (frozen dataclasses: safe to hand out)."""
        return MappingProxyType(self._state.terms)

    @property
    def pools(self) -> Mapping[str, int]:
        return MappingProxyType(self._state.pools)

    # -- the model market (ledger.tournament_rules) --------------------------------

    def tournament(self, tournament_id: str) -> TournamentRecord | None:
        """A tournament's record (its opening payload copied), None if never opened."""
        record = self._state.tournaments.get(tournament_id)
        return None if record is None else replace(record, opened=json_copy(record.opened))

    @property
    def tournament_statuses(self) -> Mapping[str, str]:
        """Every tournament ever opened, and its status now."""
        return MappingProxyType({tid: record.status for tid, record in self._state.tournaments.items()})

    @property
    def model_stakes(self) -> Mapping[str, int]:
        """Locked model stakes by `tournament_rules.model_key` (tournament/model)."""
        return MappingProxyType(self._state.model_stakes)

    @property
    def tournament_pools(self) -> Mapping[str, int]:
        return MappingProxyType(self._state.tournament_pools)

    def settlement_plan(self, tournament_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The settlement entries the rules expect now (copies; RuleViolation before a result)."""
        return [(kind, json_copy(payload)) for kind, payload in self._state.settlement_plan(tournament_id)]

    @property
    def used_nonces(self) -> Mapping[tuple[str, str], int]:
        return MappingProxyType(self._state.used_nonces)

    @property
    def active_rounds(self) -> Mapping[str, int]:
        return MappingProxyType(self._state.active_rounds)

    @property
    def totals(self) -> Mapping[str, int]:
        return MappingProxyType(self._state.totals)

    def balance(self, party: str) -> int:
        return self._state.balance(party)

    def supply_holds(self) -> bool:
        return self._state.supply_holds()

    def recount_supply(self) -> dict[str, int]:
        return self._state.recount_supply()

    @property
    def ownership(self) -> OwnershipView:
        """Owned models, units, orders and fee accounts (ledger.ownership_rules)."""
        return OwnershipView(self._state)


class TreeView:
    """The Merkle tree's reading methods only (no append, no truncate)."""

    __slots__ = ("_tree",)

    def __init__(self, tree: MerkleTree) -> None:
        self._tree = tree

    @property
    def size(self) -> int:
        return self._tree.size

    def leaf(self, index: int) -> bytes:
        if not 0 <= index < self._tree.size:
            raise InvalidInput(f"leaf {index} is outside a tree of {self._tree.size} leaves")
        return self._tree.leaf(index)

    def root(self, size: int | None = None) -> bytes:
        return self._tree.root(size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return self._tree.inclusion_proof(index, size)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        return self._tree.consistency_proof(size1, size2)
