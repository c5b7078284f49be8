"""The ledger's state as a pure function of its entries, and the rules each entry obeys.

`LedgerState.apply` checks one entry against the rules of `entries.py` and then changes
the state; it raises before changing anything, so a refused entry leaves no trace. A
journal of overwritten values lets a group commit undo the entries it already applied
when a later one in the same batch is refused (all or nothing). No I/O happens here:
the same code runs when appending, when opening a ledger and when verifying one, which
is what makes "replay equals live state" true by construction. Signatures are checked
by the callers (append checks them inline, verify spreads them over processes).
The registries, the journal and the primitives every kind's rules use are `StateCore`
(ledger/state_core.py); this module adds the round rules on top of the mixins.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ledger.ownership_rules import OwnershipRules
from ledger.state_core import RoundRecord
from ledger.tournament_rules import TournamentRules
from mutualmind.errors import IntegrityError, InvalidInput, RuleViolation
from mutualmind.vocabulary.copy_rule import copied_datasets
from mutualmind.vocabulary.dataset_terms import (
    DEFAULT_TERMS,
    DatasetTerms,
    RoundOffer,
    check_round,
)
from mutualmind.vocabulary.job_digest import job_digest
from mutualmind.vocabulary.model_spec import ModelSpec, parse_model_spec
from mutualmind.vocabulary.payloads import MAX_SUPPLY, PPM, validate_payload
from mutualmind.vocabulary.sign_flips import sign_flips
from mutualmind.vocabulary.states import UNSETTLED, EntryKind, RoundStatus
from mutualmind.vocabulary.valuation import (
    K_SIGMA,
    banzhaf_result_micro,
    earns,
    slashable,
)
from mutualmind.vocabulary.workload import check_round_workload


class LedgerState(TournamentRules, OwnershipRules):
    """Balances, stakes, pools and registries derived only from the entries.

    The model market's kinds and rules come from `TournamentRules` (ledger/tournament_rules.py),
    a mutually owned model's from `OwnershipRules` (ledger/ownership_rules.py).
    """

    def __init__(self) -> None:
        super().__init__()
        self.init_tournaments()
        self.init_ownership()

    # -- queries -------------------------------------------------------------------

    def supply_holds(self) -> bool:
        """balances + stakes + open pools == minted, from the running totals."""
        t = self.totals
        return t["balances"] + t["stakes"] + t["pools"] == t["minted"]

    def recount_supply(self) -> dict[str, int]:
        """Sum every balance, stake and pool from scratch (tests and `verify` use this)."""
        return {
            "minted": self.totals["minted"],
            "balances": sum(self.balances.values()),
            "stakes": sum(self.stakes.values()) + sum(self.model_stakes.values()),
            "pools": sum(self.pools.values()) + self.tournament_pool_total() + self.ownership_pool_total(),
        }

    # -- rules ---------------------------------------------------------------------

    def _round(self, round_id: str, *statuses: RoundStatus) -> RoundRecord:
        record = self.rounds.get(round_id)
        if record is None:
            raise RuleViolation("unknown_round", f"round {round_id!r} was never opened")
        if record.status not in statuses:
            raise RuleViolation(
                "round_state",
                f"round {round_id!r} is {record.status}; this needs it {' or '.join(statuses)}",
            )
        return record

    def _owned_dataset(self, provider: str, dataset: str) -> dict[str, Any]:
        info = self.datasets.get(dataset)
        if info is None:
            raise RuleViolation("unknown_dataset", f"dataset {dataset!r} is not registered")
        if info["provider_id"] != provider:
            raise RuleViolation("not_owner", f"dataset {dataset!r} belongs to another provider")
        return info

    def _end_round(self, record: RoundRecord, status: RoundStatus) -> None:
        if record.status in UNSETTLED:
            for dataset in (*record.datasets, record.validation_dataset):
                self._put(self.active_rounds, dataset, self.active_rounds[dataset] - 1)
        self._put(self.rounds, record.round_id, _replace(record, status=status))

    def apply(self, index: int, kind: str, payload: dict[str, Any], time_ms: int | None = None) -> None:
        """Check entry `index` against the rules and apply it; raise before any change.

        `time_ms` is the entry's time (the rules of tournament deadlines need it)."""
        self.entry_time_ms = time_ms
        if index != self.size:
            raise IntegrityError(f"entry {index} arrives when the ledger holds {self.size}")
        validate_payload(kind, payload)
        if (kind == EntryKind.GENESIS) != (index == 0):
            raise RuleViolation("genesis_first", "genesis must be entry 0 and only entry 0")
        getattr(self, "_apply_" + kind)(index, payload)
        self._set("size", index + 1)
        if not self.supply_holds():  # a bug guard: every rule conserves supply
            raise IntegrityError(f"entry {index} would break conservation of supply")

    def _apply_genesis(self, index: int, p: dict[str, Any]) -> None:
        self._set("coordinator_key", bytes.fromhex(p["coordinator_key"]))
        self._set("origin", p["origin"])
        self._set("params", p["params"])

    def _apply_node_registered(self, index: int, p: dict[str, Any]) -> None:
        node, key = p["node_index"], bytes.fromhex(p["signing_key"])
        if node in self.nodes:
            raise RuleViolation("node_exists", f"node {node} is already registered")
        if key in self.nodes.values():
            raise RuleViolation("node_key_reused", "another node already uses this signing key")
        self._put(self.nodes, node, key)

    def _apply_provider_registered(self, index: int, p: dict[str, Any]) -> None:
        provider = p["provider_id"]
        if provider in self.providers:
            raise RuleViolation("provider_exists", f"provider {provider!r} is already registered")
        self._nonce(index, provider, p["nonce"])
        self._put(self.providers, provider, bytes.fromhex(p["public_key"]))

    def _apply_mint(self, index: int, p: dict[str, Any]) -> None:
        self._provider(p["to"], "recipient")
        minted = self.totals["minted"]
        if minted + p["amount"] > MAX_SUPPLY:
            raise RuleViolation(
                "supply_limit", f"{minted} tokens are minted; minting {p['amount']} more would "
                f"pass the supply limit of {MAX_SUPPLY} (2^62 - 1, so every balance and sum "
                f"of balances fits int64); mint at most {MAX_SUPPLY - minted}")
        self._add(self.balances, p["to"], p["amount"], "balances")
        self._put(self.totals, "minted", self.totals["minted"] + p["amount"])

    def _apply_transfer(self, index: int, p: dict[str, Any]) -> None:
        self._provider(p["from"], "sender")
        self._provider(p["to"], "recipient")
        if p["from"] == p["to"]:
            raise RuleViolation("self_transfer", "a transfer needs two different parties")
        self._nonce(index, p["from"], p["nonce"])
        self._spend(p["from"], p["amount"], "this transfer")
        self._add(self.balances, p["to"], p["amount"], "balances")

    def _apply_dataset_registered(self, index: int, p: dict[str, Any]) -> None:
        self._provider(p["provider_id"], "owner")
        if p["dataset_id"] in self.datasets:
            raise RuleViolation("dataset_exists", f"dataset {p['dataset_id']!r} exists")
        if len(p["share_commitments"]) != len(self.nodes):
            raise RuleViolation(
                "share_count",
                f"{len(p['share_commitments'])} share commitments for {len(self.nodes)} nodes",
            )
        self._nonce(index, p["provider_id"], p["nonce"])
        self._put(self.datasets, p["dataset_id"], p)
        self._put(self.active_rounds, p["dataset_id"], 0)
        terms = DatasetTerms.from_payload(p["terms"]) if "terms" in p else DEFAULT_TERMS
        self._put(self.terms, p["dataset_id"], terms)

    def _apply_dataset_terms_updated(self, index: int, p: dict[str, Any]) -> None:
        self._provider(p["provider_id"], "owner")
        self._owned_dataset(p["provider_id"], p["dataset_id"])
        self._nonce(index, p["provider_id"], p["nonce"])
        self._put(self.terms, p["dataset_id"], DatasetTerms.from_payload(p["terms"]))

    def _apply_stake(self, index: int, p: dict[str, Any]) -> None:
        self._provider(p["provider_id"], "staker")
        self._owned_dataset(p["provider_id"], p["dataset_id"])
        self._nonce(index, p["provider_id"], p["nonce"])
        self._spend(p["provider_id"], p["amount"], "this stake")
        self._add(self.stakes, p["dataset_id"], p["amount"], "stakes")

    def _apply_unstake(self, index: int, p: dict[str, Any]) -> None:
        self._provider(p["provider_id"], "staker")
        self._owned_dataset(p["provider_id"], p["dataset_id"])
        if self.active_rounds.get(p["dataset_id"], 0):
            raise RuleViolation(
                "stake_locked", f"dataset {p['dataset_id']!r} takes part in an open round"
            )
        staked = self.stakes.get(p["dataset_id"], 0)
        if p["amount"] > staked:
            raise RuleViolation("insufficient_stake", f"{staked} staked, unstake asks {p['amount']}")
        self._nonce(index, p["provider_id"], p["nonce"])
        self._add(self.stakes, p["dataset_id"], -p["amount"], "stakes")
        self._add(self.balances, p["provider_id"], p["amount"], "balances")

    def _apply_round_opened(self, index: int, p: dict[str, Any]) -> None:
        sponsor, round_id = p["sponsor"], p["round_id"]
        self._provider(sponsor, "sponsor")
        if round_id in self.rounds:
            raise RuleViolation("round_exists", f"round {round_id!r} was already opened")
        if round_id in self.tournaments:  # a model is named by its source's id: one namespace
            raise RuleViolation("id_taken", f"{round_id!r} names a tournament; a round needs an id "
                                "no round or tournament has (its model is named by it)")
        validation = self.datasets.get(p["validation_dataset"])
        if validation is None or validation["purpose"] != "validation":
            raise RuleViolation(
                "validation_dataset", f"{p['validation_dataset']!r} is no registered validation set"
            )
        for dataset in p["datasets"]:
            info = self.datasets.get(dataset)
            if info is None or info["purpose"] != "training":
                raise RuleViolation("unknown_dataset", f"{dataset!r} is no registered training set")
            if self.stakes.get(dataset, 0) <= 0:
                raise RuleViolation("not_staked", f"dataset {dataset!r} has no stake")
            if info["schema"] != validation["schema"] or info["cols"] != validation["cols"]:
                raise RuleViolation("schema_mismatch", f"{dataset!r} differs from the validation schema")
        spec = self._check_round_terms(p)
        self._nonce(index, sponsor, p["nonce"])
        self._spend(sponsor, p["pool"], "this round's pool")
        self._add(self.pools, round_id, p["pool"], "pools")
        for dataset in (*p["datasets"], p["validation_dataset"]):
            self._put(self.active_rounds, dataset, self.active_rounds[dataset] + 1)
        record = RoundRecord(
            round_id, sponsor, RoundStatus.OPEN, tuple(p["datasets"]), p["validation_dataset"],
            p["slash_rate_ppm"], p["epsilon_micro"], job_digest=job_digest(p, self.datasets),
            valuation=spec.valuation, metric=spec.metric,
        )
        self._put(self.rounds, round_id, record)
        self._note_round_opened(p)

    def _check_round_terms(self, p: dict[str, Any]) -> ModelSpec:
        """The spec is one the workers run, within the work a job can finish, and every
        included dataset's terms allow this round (InvalidInput / RuleViolation)."""
        spec = parse_model_spec(p["model_spec"])
        rows = sum(self.datasets[d]["rows"] for d in p["datasets"])
        check_round_workload(spec, rows, len(p["datasets"]),
                             self.datasets[p["validation_dataset"]]["rows"], self.workload_rules)
        offer = RoundOffer(sponsor=p["sponsor"], model_kind=spec.kind, datasets=len(p["datasets"]),
                           slash_rate_ppm=p["slash_rate_ppm"], pool=p["pool"], training_rows=rows)
        for dataset in p["datasets"]:
            check_round(dataset, self.terms.get(dataset, DEFAULT_TERMS), offer)
        return spec

    def _apply_round_abort_requested(self, index: int, p: dict[str, Any]) -> None:
        record = self._round(p["round_id"], RoundStatus.OPEN)
        if p["sponsor"] != record.sponsor:
            raise RuleViolation("not_sponsor", f"round {record.round_id!r} was opened by "
                                f"{record.sponsor!r}; only its sponsor may withdraw it")
        self._nonce(index, p["sponsor"], p["nonce"])

    @staticmethod
    def _digest(record: RoundRecord, claimed: str) -> None:
        """A result must be about this round's model and inputs (mutualmind.vocabulary.job_digest)."""
        if claimed != record.job_digest:
            raise RuleViolation(
                "job_digest", f"round {record.round_id!r}: the result names job digest "
                f"{claimed[:16]}…, but the round's model spec and input commitments give "
                f"{record.job_digest[:16]}…")

    def _apply_round_result(self, index: int, p: dict[str, Any]) -> None:
        record = self._round(p["round_id"], RoundStatus.OPEN)
        self._digest(record, p["job_digest"])
        n = len(record.datasets)
        errors: tuple[int, ...] = ()
        if record.valuation == "banzhaf":
            errors = self._banzhaf_result(record, p)
        elif len(p["metrics_micro"]) != n + 1 or len(p["contributions_micro"]) != n or "errors_micro" in p:
            raise RuleViolation(
                "result_shape", f"{n} datasets need {n + 1} metrics and {n} contributions (and no errors)"
            )
        attested = [a["node_index"] for a in p["attestations"]]
        if sorted(attested) != sorted(self.nodes) or len(set(attested)) != len(attested):
            raise RuleViolation(
                "attestations", f"attestations from nodes {sorted(attested)}, need each of {sorted(self.nodes)} once"
            )
        copies = p.get("copies")
        if copies is not None and (len(copies["counts"]) != n or len(copies["samples"]) != n):
            raise RuleViolation("result_shape", f"{n} datasets need {n} copy counts and {n} sample sizes")
        self._put(
            self.rounds, record.round_id,
            _replace(record, status=RoundStatus.RESULT, contributions=tuple(p["contributions_micro"]),
                     errors=errors, copies=copied_datasets(record.datasets, copies), beacon=p.get("beacon", "")),
        )

    @staticmethod
    def _banzhaf_result(record: RoundRecord, p: dict[str, Any]) -> tuple[int, ...]:
        """A Banzhaf result holds 2n+1 signed values, and its contributions and standard
        errors are exactly what `valuation.banzhaf_result_micro` derives from them."""
        n = len(record.datasets)
        errors = p.get("errors_micro")
        if len(p["metrics_micro"]) != 2 * n + 1 or len(p["contributions_micro"]) != n or errors is None \
                or len(errors) != n:
            raise RuleViolation(
                "result_shape", f"a Banzhaf round of {n} datasets needs {2 * n + 1} metrics, "
                f"{n} contributions and {n} errors")
        try:
            contributions, derived = banzhaf_result_micro(p["metrics_micro"], record.metric, n)
        except InvalidInput as err:
            raise RuleViolation("result_values", f"round {record.round_id!r}: {err}") from None
        if contributions != list(p["contributions_micro"]) or derived != list(errors):
            raise RuleViolation(
                "result_values", f"round {record.round_id!r}: contributions {p['contributions_micro']} "
                f"and errors {errors} are not those of the signed values ({contributions}, {derived})")
        return tuple(errors)

    def _apply_slash(self, index: int, p: dict[str, Any]) -> None:
        record = self._round(p["round_id"], RoundStatus.RESULT)
        dataset = p["dataset_id"]
        self._owned_dataset(p["provider_id"], dataset)
        if dataset not in record.datasets:
            raise RuleViolation("not_in_round", f"{dataset!r} took no part in {record.round_id!r}")
        if dataset in record.slashed:
            raise RuleViolation("already_slashed", f"{dataset!r} was already slashed in this round")
        position = record.datasets.index(dataset)
        contribution = record.contributions[position]
        error = record.errors[position] if record.errors else 0
        if not slashable(contribution, error, record.epsilon_micro) and dataset not in record.copies:
            band = f" + {K_SIGMA} x error {error}" if error else ""
            raise RuleViolation(
                "slash_unwarranted", f"contribution {contribution}{band} is not below -{record.epsilon_micro} "
                "and the result does not mark the dataset a copy"
            )
        limit = -(-self.stakes.get(dataset, 0) * record.slash_rate_ppm // PPM)
        if p["amount"] > limit:
            raise RuleViolation("slash_too_large", f"slash {p['amount']} exceeds {limit} at the round's rate")
        self._add(self.stakes, dataset, -p["amount"], "stakes")
        self._add(self.pools, record.round_id, p["amount"], "pools")
        self._put(self.rounds, record.round_id, _replace(record, slashed=record.slashed | {dataset}))

    def _apply_payout(self, index: int, p: dict[str, Any]) -> None:
        record = self._round(p["round_id"], RoundStatus.RESULT)
        self._provider(p["to"], "payee")
        self._copier_unpaid(record, p["to"])
        if record.valuation == "banzhaf":
            self._payout_warranted(record, p["to"])
        pool = self.pools[record.round_id]
        if p["amount"] > pool:
            raise RuleViolation("pool_exhausted", f"pool holds {pool}, payout asks {p['amount']}")
        self._add(self.pools, record.round_id, -p["amount"], "pools")
        self._add(self.balances, p["to"], p["amount"], "balances")
        self._note_round_payout(record, p["to"], p["amount"])

    def _payout_warranted(self, record: RoundRecord, party: str) -> None:
        """In a Banzhaf round a payout goes to the sponsor (the pool back) or to a provider
        with a dataset whose value is above +epsilon beyond its error band."""
        if party == record.sponsor:
            return
        errors = record.errors or (0,) * len(record.datasets)
        for dataset, contribution, error in zip(record.datasets, record.contributions, errors, strict=True):
            if self.datasets[dataset]["provider_id"] == party and earns(contribution, error, record.epsilon_micro):
                return
        raise RuleViolation(
            "payout_unwarranted", f"{party!r} has no dataset in round {record.round_id!r} whose "
            f"contribution - {K_SIGMA} x error is above {record.epsilon_micro}")

    def _copier_unpaid(self, record: RoundRecord, payee: str) -> None:
        """Copies earn nothing (issue 13): a provider whose every dataset in the round the
        attested counts mark as a copy is paid nothing (the sponsor's refund excepted)."""
        if not record.copies or payee == record.sponsor:
            return
        own = [d for d in record.datasets if self.datasets[d]["provider_id"] == payee]
        if own and all(d in record.copies for d in own):
            raise RuleViolation("copy_paid", f"{payee!r} took part in {record.round_id!r} only with "
                                f"datasets the nodes found to be copies ({', '.join(own)}); copies earn nothing")

    def _apply_round_closed(self, index: int, p: dict[str, Any]) -> None:
        record = self._round(p["round_id"], RoundStatus.RESULT)
        if self.pools[record.round_id] != 0:
            raise RuleViolation(
                "pool_not_empty", f"{self.pools[record.round_id]} tokens left; pay them out first"
            )
        self._end_round(record, RoundStatus.CLOSED)

    def _apply_round_aborted(self, index: int, p: dict[str, Any]) -> None:
        record = self._round(p["round_id"], RoundStatus.OPEN, RoundStatus.RESULT)
        refund = self.pools[record.round_id]
        self._add(self.pools, record.round_id, -refund, "pools")
        self._add(self.balances, record.sponsor, refund, "balances")
        self._end_round(record, RoundStatus.ABORTED)

    def _apply_round_verified(self, index: int, p: dict[str, Any]) -> None:
        record = self._round(p["round_id"], RoundStatus.CLOSED)
        self._digest(record, p["job_digest"])
        if len(p["recomputed_micro"]) != len(record.datasets):
            raise RuleViolation("verification_shape", f"round {record.round_id} has "
                                f"{len(record.datasets)} datasets, the re-run names "
                                f"{len(p['recomputed_micro'])} contributions")
        if "beacon" in p and p["beacon"] != record.beacon:
            raise RuleViolation("verification_beacon", f"round {record.round_id}'s result was computed "
                                f"with beacon {record.beacon[:16] or 'none'}..., the re-run names {p['beacon'][:16]}...")
        # a contribution paid in one run and slashed in the other disagrees (beyond the
        # recorded band; epsilon alone for an entry without one)
        flipped = sign_flips(record.datasets, record.contributions, p["recomputed_micro"], record.epsilon_micro,
                             p.get("flip_band_micro")) if record.contributions else []
        agrees = p["max_abs_diff_micro"] <= p["tolerance_micro"] and not flipped
        recomputed = p.get("recomputed_copies")
        if recomputed is not None:
            if len(recomputed["counts"]) != len(record.datasets):
                raise RuleViolation("verification_shape", f"round {record.round_id} has "
                                    f"{len(record.datasets)} datasets, the re-run's copy counts name "
                                    f"{len(recomputed['counts'])}")
            agrees = agrees and copied_datasets(record.datasets, recomputed) == record.copies
        if (p["verdict"] == "agrees") != agrees:
            raise RuleViolation("verdict_mismatch", "the verdict contradicts the difference "
                                "and tolerance it states")


def _replace(record: RoundRecord, **changes: Any) -> RoundRecord:
    return replace(record, **changes)
