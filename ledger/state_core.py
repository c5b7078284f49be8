"""What every ledger rule builds on: the core registries, the journal, the primitives.

`LedgerState` (ledger/state.py) is this plus the round rules; the model market's rules
(`TournamentRules`) and the owned model's (`OwnershipRules`) are mixins that subclass
`StateCore`, so each rule module sees the registries and primitives it uses by
inheritance, with their types, instead of re-declaring them. No rule lives here: only
what changes state and how a group commit undoes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mutualmind.errors import RuleViolation
from mutualmind.vocabulary.dataset_terms import DatasetTerms
from mutualmind.vocabulary.states import RoundStatus

_MISSING = object()


@dataclass(frozen=True)
class RoundRecord:
    """What the rules need to know about a round; replaced, never mutated."""

    round_id: str
    sponsor: str
    status: RoundStatus  # open -> result -> closed, or aborted
    datasets: tuple[str, ...]
    validation_dataset: str
    slash_rate_ppm: int
    epsilon_micro: int
    contributions: tuple[int, ...] = ()
    slashed: frozenset[str] = frozenset()
    job_digest: str = ""   # what every attestation of this round must name
    valuation: str = "loo"  # the model spec's: "loo" or "banzhaf"
    metric: str = "log_loss"
    errors: tuple[int, ...] = ()  # standard errors of the contributions (Banzhaf rounds)
    copies: frozenset[str] = frozenset()  # datasets the result's copy counts mark as copies
    beacon: str = ""  # the result's job beacon (vocabulary.beacon): a verification re-run uses it


class StateCore:
    """The registries every rule reads and the journaled writes every rule makes."""

    def __init__(self) -> None:
        self.size = 0
        self.coordinator_key: bytes | None = None
        self.origin = ""
        self.params: dict[str, Any] = {}
        self.providers: dict[str, bytes] = {}   # provider id -> raw public key
        self.nodes: dict[int, bytes] = {}       # node index -> raw public key
        self.balances: dict[str, int] = {}
        self.stakes: dict[str, int] = {}        # dataset id -> staked tokens
        self.datasets: dict[str, dict[str, Any]] = {}
        self.terms: dict[str, DatasetTerms] = {}  # dataset id -> its provider's current terms
        self.rounds: dict[str, RoundRecord] = {}
        self.pools: dict[str, int] = {}         # round id -> tokens locked in the round
        self.used_nonces: dict[tuple[str, str], int] = {}  # (party, nonce) -> entry index
        self.active_rounds: dict[str, int] = {}  # dataset id -> open rounds it is in
        # source key ("round/<id>", "tournament/<id>") -> party -> tokens earned for the
        # source's model: what a model's ownership units are issued from (ownership_rules)
        self.earnings: dict[str, dict[str, int]] = {}
        self.totals: dict[str, int] = {"minted": 0, "balances": 0, "stakes": 0, "pools": 0}
        self._journal: list[tuple[Any, Any, Any]] | None = None
        self.entry_time_ms: int | None = None  # the time of the entry being applied

    # -- journal -------------------------------------------------------------------

    def begin(self) -> None:
        """Start recording changes so that `rollback` can undo them."""
        self._journal = []

    def commit(self) -> None:
        self._journal = None

    def rollback(self) -> None:
        """Undo every change since `begin`, newest first."""
        journal, self._journal = self._journal or [], None
        for mapping, key, old in reversed(journal):
            if mapping is None:
                setattr(self, key, old)
            elif old is _MISSING:
                del mapping[key]
            else:
                mapping[key] = old

    def _put(self, mapping: dict[Any, Any], key: Any, value: Any) -> None:
        if self._journal is not None:
            self._journal.append((mapping, key, mapping.get(key, _MISSING)))
        mapping[key] = value

    def _set(self, name: str, value: Any) -> None:
        if self._journal is not None:
            self._journal.append((None, name, getattr(self, name)))
        setattr(self, name, value)

    def _add(self, mapping: dict[str, int], key: str, delta: int, total: str) -> None:
        self._put(mapping, key, mapping.get(key, 0) + delta)
        self._put(self.totals, total, self.totals[total] + delta)

    # -- queries -------------------------------------------------------------------

    def balance(self, party: str) -> int:
        return self.balances.get(party, 0)

    @property
    def workload_rules(self) -> int:
        """The version of the workload rule (`workload.check_round_workload`) this
        ledger was created under (1 before the genesis params named one)."""
        version = self.params.get("workload_rules", 1)
        return version if type(version) is int else 1

    def tournament_closed(self, tournament_id: str) -> bool:
        """Whether the tournament settled (closed, not aborted): `TournamentRules` answers;
        the ownership rules ask it before issuing a metamodel's units."""
        return False

    # -- primitives shared by every kind's rules -------------------------------------

    def _note_earning(self, key: str, party: str, amount: int) -> None:
        """Tokens `party` earned for the model of source `key` (a round's payouts, a
        tournament's model payouts: `ownership_rules.source_key`)."""
        earned = self.earnings.get(key)
        if earned is None:
            earned = {}
            self._put(self.earnings, key, earned)
        self._put(earned, party, earned.get(party, 0) + amount)

    def _provider(self, party: str, role: str) -> None:
        if party not in self.providers:
            raise RuleViolation(
                "unknown_provider", f"{role} {party!r} is not a registered provider"
            )

    def _nonce(self, index: int, party: str, value: str) -> None:
        if (party, value) in self.used_nonces:
            raise RuleViolation(
                "nonce_reused",
                f"nonce {value!r} of {party!r} was used at entry {self.used_nonces[party, value]}; "
                "sign the request again with a fresh nonce",
            )
        self._put(self.used_nonces, (party, value), index)

    def _spend(self, party: str, value: int, what: str) -> None:
        have = self.balances.get(party, 0)
        if value > have:
            raise RuleViolation(
                "insufficient_balance", f"{party!r} has {have} tokens, {what} needs {value}"
            )
        self._add(self.balances, party, -value, "balances")
