"""The model market's ledger rules: a tournament from its opening to its settlement.

`LedgerState` takes these `_apply_<kind>` methods from `TournamentRules`, so they run
under the same discipline as the round rules: checked before any change, journaled for a
group commit's rollback, the same code on append, open and verify, supply conserved after
every entry. Tokens live in four places while a tournament runs, all counted in the
supply: the tournament's pool and each model's reward (the "pools" total), each model's
stake (the "stakes" total), and the stakes of the datasets the models chose (locked
until the tournament closes, like a round's).

The life of a tournament (`TournamentStatus`):
- `tournament_opened` (sponsor-signed): the sponsor and the resolution publisher are
  registered, the deadline is after the entry's time, the eligible datasets are
  registered training sets of one schema whose label fits the task; the pool is locked.
- `model_submitted` (modeler-signed, nonce): the tournament is open and the entry's time
  is before the deadline; the recipe parses with the workers' `parse_model_spec`, is
  stored with every default filled in, solves the tournament's task with its metric and
  fits `check_workload`; each chosen dataset is eligible, staked, and its terms allow
  this model (`dataset_terms.check_round` with the sponsor, the recipe's kind, the
  model's dataset count and rows, the tournament's slash rate and pool); the stake is
  locked from the modeler's balance and the chosen datasets' stakes are locked.
- `models_frozen` (every node attests): at or after the deadline; one weight-share
  commitment per model; the job digest is `tournament.freeze_digest` of the ledger's
  own records.
- `resolution_committed` (publisher-signed): only after the freeze, only by the
  tournament's resolution publisher, naming a validation dataset it registered with the
  eligible datasets' schema (locked until the close).
- `tournament_result` (every node attests): after the resolution; the job digest is
  `tournament.resolution_digest`; one contribution per model and one per dataset of each.
- the settlement: `tournament_settlement.settlement_entries` of `settle_tournament` over
  the state when its first entry arrives, entry by entry in that order and nothing else
  (`settlement_mismatch`), ending with `tournament_closed`, which unlocks the datasets.
  Copies (same recipe and datasets as an earlier submission, `copy_leaders` over the
  recorded submissions) are recomputed here too, so a copy paid anything fails replay.
- `tournament_aborted` (coordinator: admin, a failed MPC job, an expiry): only before a
  result, so nobody can cancel an outcome already known; it is followed by exactly
  `tournament_settlement.abort_entries` (the pool to the sponsor, every stake to its
  modeler, `tournament_closed`), so no token stays locked for ever.
- `tournament_verified` (coordinator, `admin tournament verify`): after the result; moves
  nothing; its difference and verdict are `tournament_verdict.compare` of its re-run
  numbers against the recorded result (`verdict_mismatch` otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ledger.ownership_rules import source_key
from ledger.state_core import StateCore
from mutualmind.errors import IntegrityError, RuleViolation
from mutualmind.vocabulary.dataset_terms import DEFAULT_TERMS, RoundOffer, check_round
from mutualmind.vocabulary.metamodel_weights import copy_leaders
from mutualmind.vocabulary.model_spec import LOWER_IS_BETTER, check_workload, parse_model_spec
from mutualmind.vocabulary.payloads import MAX_TOURNAMENT_MODELS
from mutualmind.vocabulary.states import EntryKind, TournamentStatus
from mutualmind.vocabulary.tournament import freeze_digest, ledger_recipe, resolution_digest
from mutualmind.vocabulary.tournament_settlement import (
    DatasetPart,
    ModelPart,
    abort_entries,
    settle_tournament,
    settlement_entries,
)
from mutualmind.vocabulary.tournament_verdict import compare

Plan = tuple[tuple[str, dict[str, Any]], ...]


@dataclass(frozen=True)
class TournamentRecord:
    """What the rules need to know about a tournament; replaced, never mutated."""

    tournament_id: str
    sponsor: str
    status: TournamentStatus
    opened: dict[str, Any]               # the tournament_opened payload (never changed)
    models: tuple[str, ...] = ()         # model ids in submission order
    commitments: tuple[str, ...] = ()
    freeze_digest: str = ""
    job_digest: str = ""                 # what the result's attestations must name
    resolution_dataset: str = ""
    metamodel_metric_micro: int = 0
    contributions: tuple[int, ...] = ()
    dataset_contributions: tuple[tuple[int, ...], ...] = ()


@dataclass(frozen=True)
class ModelRecord:
    """One submitted model (its model_submitted payload)."""

    submission: dict[str, Any]

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(self.submission["datasets"])


def model_key(tournament_id: str, model_id: str) -> str:
    """The key of a model's stake and reward ('/' is in no id, so keys never collide)."""
    return f"{tournament_id}/{model_id}"


class TournamentRules(StateCore):
    """The tournament kinds' rules; mixed into `LedgerState` (see the module docstring)."""

    def init_tournaments(self) -> None:
        self.tournaments: dict[str, TournamentRecord] = {}
        self.models: dict[str, ModelRecord] = {}          # model_key -> record
        self.model_stakes: dict[str, int] = {}            # model_key -> locked stake
        self.tournament_pools: dict[str, int] = {}        # tournament id -> pool (+ slashes)
        self.model_rewards: dict[str, int] = {}           # model_key -> level-1 reward not yet paid on
        self.settlement_plans: dict[str, Plan] = {}       # tournament id -> expected entries
        self.settlement_steps: dict[str, int] = {}        # tournament id -> entries done

    def tournament_pool_total(self) -> int:
        """Tokens in tournament pools and unpaid rewards (part of the supply's "pools")."""
        return sum(self.tournament_pools.values()) + sum(self.model_rewards.values())

    def tournament_closed(self, tournament_id: str) -> bool:
        record = self.tournaments.get(tournament_id)
        return record is not None and record.status == TournamentStatus.CLOSED

    # -- helpers -------------------------------------------------------------------

    def _now(self, kind: str) -> int:
        if self.entry_time_ms is None:
            raise IntegrityError(f"a {kind} entry is judged against its time; apply it with one")
        return self.entry_time_ms

    def _tournament(self, tournament_id: str, *statuses: TournamentStatus) -> TournamentRecord:
        record = self.tournaments.get(tournament_id)
        if record is None:
            raise RuleViolation("unknown_tournament", f"tournament {tournament_id!r} was never opened")
        if record.status not in statuses:
            raise RuleViolation("tournament_state", f"tournament {tournament_id!r} is "
                                f"{record.status}; this needs it {' or '.join(statuses)}")
        return record

    def _attested_by_all(self, p: dict[str, Any]) -> None:
        attested = [a["node_index"] for a in p["attestations"]]
        if sorted(attested) != sorted(self.nodes) or len(set(attested)) != len(attested):
            raise RuleViolation("attestations", f"attestations from nodes {sorted(attested)}, "
                                f"need each of {sorted(self.nodes)} once")

    def _same_schema(self, reference: str, dataset: str) -> None:
        ref, info = self.datasets[reference], self.datasets[dataset]
        if info["schema"] != ref["schema"] or info["cols"] != ref["cols"]:
            raise RuleViolation("schema_mismatch", f"{dataset!r} differs from the schema of {reference!r}")

    def _lock(self, datasets: list[str] | tuple[str, ...], delta: int) -> None:
        for dataset in datasets:
            self._put(self.active_rounds, dataset, self.active_rounds[dataset] + delta)

    # -- opening and submissions -----------------------------------------------------

    def _apply_tournament_opened(self, index: int, p: dict[str, Any]) -> None:
        tid, sponsor = p["tournament_id"], p["sponsor"]
        self._provider(sponsor, "sponsor")
        self._provider(p["resolution_publisher"], "resolution publisher")
        if tid in self.tournaments:
            raise RuleViolation("tournament_exists", f"tournament {tid!r} was already opened")
        if tid in self.rounds:  # a model is named by its source's id: one namespace for both
            raise RuleViolation("id_taken", f"{tid!r} names a round; a tournament needs an id "
                                "no round or tournament has (its metamodel is named by it)")
        now = self._now(EntryKind.TOURNAMENT_OPENED)
        if p["deadline_ms"] <= now:
            raise RuleViolation("deadline_passed", f"the submission deadline {p['deadline_ms']} "
                                f"is not after the entry's time {now}; choose a later one")
        if p["weight_cap_ppm"] <= 0:
            raise RuleViolation("weight_cap", "the per-model weight cap must be above 0 ppm")
        label_kind = p["task"]["label_kind"]
        for dataset in p["datasets"]:
            info = self.datasets.get(dataset)
            if info is None or info["purpose"] != "training":
                raise RuleViolation("unknown_dataset", f"{dataset!r} is no registered training set")
            self._same_schema(p["datasets"][0], dataset)
            classes = info["label_classes"]
            fits = classes == 0 if label_kind == "regression" else (
                classes == 2 if label_kind == "binary" else classes >= 2)
            if not fits:
                raise RuleViolation("task_mismatch", f"{dataset!r} has {classes} label classes "
                                    f"(0 = real-valued), which a {label_kind} task cannot use")
        self._nonce(index, sponsor, p["nonce"])
        self._spend(sponsor, p["pool"], "this tournament's pool")
        self._add(self.tournament_pools, tid, p["pool"], "pools")
        self._put(self.tournaments, tid, TournamentRecord(tid, sponsor, TournamentStatus.OPEN, p))

    def _task_classes(self, opened: dict[str, Any]) -> int:
        """A multiclass tournament's class count (0 for another task): the most label
        classes among its eligible datasets, which every model must predict."""
        if opened["task"]["label_kind"] != "multiclass":
            return 0
        return max(int(self.datasets[d]["label_classes"]) for d in opened["datasets"])

    def _apply_model_submitted(self, index: int, p: dict[str, Any]) -> None:
        tid, mid, modeler = p["tournament_id"], p["model_id"], p["modeler"]
        record = self._tournament(tid, TournamentStatus.OPEN)
        opened = record.opened
        now = self._now(EntryKind.MODEL_SUBMITTED)
        if now >= opened["deadline_ms"]:
            raise RuleViolation("deadline_passed", f"tournament {tid!r} took submissions until "
                                f"{opened['deadline_ms']}; this one comes at {now}")
        self._provider(modeler, "modeler")
        key = model_key(tid, mid)
        if key in self.models:
            raise RuleViolation("model_exists", f"tournament {tid!r} already has a model {mid!r}")
        if len(record.models) >= MAX_TOURNAMENT_MODELS:
            raise RuleViolation("too_many_models", f"a tournament takes at most {MAX_TOURNAMENT_MODELS} models")
        spec = parse_model_spec(p["recipe"])
        if p["recipe"] != ledger_recipe(p["recipe"]):
            raise RuleViolation("recipe_not_canonical", "the recipe must carry every field with "
                                "its defaults filled in (tournament.model_submitted_payload does)")
        task = opened["task"]
        if (spec.task, spec.metric) != (task["label_kind"], task["metric"]):
            raise RuleViolation("task_mismatch", f"the recipe solves {spec.task} judged by "
                                f"{spec.metric}; the tournament asks {task['label_kind']} by {task['metric']}")
        classes = self._task_classes(opened)
        if classes and spec.classes != classes:
            # the metamodel mixes class-probability vectors: every model gives the same C
            raise RuleViolation("task_mismatch", f"the recipe predicts {spec.classes} classes; the "
                                f"tournament's datasets label {classes} (set \"classes\": {classes})")
        for dataset in p["datasets"]:
            if dataset not in opened["datasets"]:
                raise RuleViolation("not_eligible", f"{dataset!r} is not among tournament "
                                    f"{tid!r}'s eligible datasets")
            if dataset not in self.datasets:
                raise RuleViolation("unknown_dataset", f"dataset {dataset!r} is not registered")
            if self.stakes.get(dataset, 0) <= 0:
                raise RuleViolation("not_staked", f"dataset {dataset!r} has no stake")
        rows = sum(self.datasets[d]["rows"] for d in p["datasets"])
        check_workload(spec, rows, self.workload_rules)
        offer = RoundOffer(sponsor=record.sponsor, model_kind=spec.kind, datasets=len(p["datasets"]),
                           slash_rate_ppm=opened["slash_rate_ppm"], pool=opened["pool"],
                           training_rows=rows)
        for dataset in p["datasets"]:
            check_round(dataset, self.terms.get(dataset, DEFAULT_TERMS), offer)
        self._nonce(index, modeler, p["nonce"])
        self._spend(modeler, p["stake"], "this model's stake")
        self._add(self.model_stakes, key, p["stake"], "stakes")
        self._lock(p["datasets"], +1)
        self._put(self.models, key, ModelRecord(p))
        self._put(self.tournaments, tid, replace(record, models=(*record.models, mid)))

    # -- freezing, resolution, result ------------------------------------------------

    def _apply_models_frozen(self, index: int, p: dict[str, Any]) -> None:
        record = self._tournament(p["tournament_id"], TournamentStatus.OPEN)
        now = self._now(EntryKind.MODELS_FROZEN)
        if now < record.opened["deadline_ms"]:
            raise RuleViolation("before_deadline", f"models are frozen at the deadline "
                                f"{record.opened['deadline_ms']}, not at {now}")
        submissions = [self.models[model_key(record.tournament_id, m)].submission for m in record.models]
        digest = freeze_digest(record.opened, submissions, self.datasets)
        if p["job_digest"] != digest:
            raise RuleViolation("job_digest", f"the freeze names job digest {p['job_digest'][:16]}…, "
                                f"the tournament's models and inputs give {digest[:16]}…")
        if len(p["model_commitments"]) != len(record.models):
            raise RuleViolation("freeze_shape", f"{len(record.models)} models need as many "
                                f"commitments, got {len(p['model_commitments'])}")
        self._attested_by_all(p)
        self._put(self.tournaments, record.tournament_id, replace(
            record, status=TournamentStatus.FROZEN, commitments=tuple(p["model_commitments"]),
            freeze_digest=digest))

    def _apply_resolution_committed(self, index: int, p: dict[str, Any]) -> None:
        record = self._tournament(p["tournament_id"], TournamentStatus.FROZEN)
        publisher, dataset = p["publisher"], p["dataset_id"]
        if publisher != record.opened["resolution_publisher"]:
            raise RuleViolation("not_publisher", f"tournament {record.tournament_id!r}'s resolution "
                                f"is published by {record.opened['resolution_publisher']!r}, not {publisher!r}")
        self._provider(publisher, "publisher")
        info = self.datasets.get(dataset)
        if info is None or info["purpose"] != "validation":
            raise RuleViolation("unknown_dataset", f"{dataset!r} is no registered validation set")
        if info["provider_id"] != publisher:
            raise RuleViolation("not_owner", f"dataset {dataset!r} belongs to another provider")
        self._same_schema(record.opened["datasets"][0], dataset)
        classes = self._task_classes(record.opened)
        if classes and not 2 <= info["label_classes"] <= classes:
            raise RuleViolation("task_mismatch", f"{dataset!r} has {info['label_classes']} label classes; "
                                f"the tournament's models predict {classes}")
        self._nonce(index, publisher, p["nonce"])
        self._lock((dataset,), +1)
        stakes = [self.model_stakes[model_key(record.tournament_id, m)] for m in record.models]
        digest = resolution_digest(record.freeze_digest, record.commitments, stakes,
                                   record.opened["weight_cap_ppm"], dataset, info)
        self._put(self.tournaments, record.tournament_id, replace(
            record, status=TournamentStatus.RESOLVING, resolution_dataset=dataset, job_digest=digest))

    def _apply_tournament_result(self, index: int, p: dict[str, Any]) -> None:
        record = self._tournament(p["tournament_id"], TournamentStatus.RESOLVING)
        if p["job_digest"] != record.job_digest:
            raise RuleViolation("job_digest", f"the result names job digest {p['job_digest'][:16]}…, "
                                f"the tournament's frozen models and resolution give {record.job_digest[:16]}…")
        shape = [len(self.models[model_key(record.tournament_id, m)].datasets) for m in record.models]
        got = [len(c) for c in p["dataset_contributions_micro"]]
        if len(p["contributions_micro"]) != len(shape) or got != shape:
            raise RuleViolation("result_shape", f"{len(shape)} models with {shape} datasets need "
                                f"as many contributions; got {len(p['contributions_micro'])} and {got}")
        self._attested_by_all(p)
        self._put(self.tournaments, record.tournament_id, replace(
            record, status=TournamentStatus.RESULT, metamodel_metric_micro=p["metamodel_metric_micro"],
            contributions=tuple(p["contributions_micro"]),
            dataset_contributions=tuple(tuple(c) for c in p["dataset_contributions_micro"])))

    # -- settlement ------------------------------------------------------------------

    def _parts(self, record: TournamentRecord) -> list[ModelPart]:
        subs = [self.models[model_key(record.tournament_id, m)].submission for m in record.models]
        leaders = copy_leaders([(sub["recipe"], sub["datasets"]) for sub in subs])
        parts = []
        for i, mid in enumerate(record.models):
            key = model_key(record.tournament_id, mid)
            sub = subs[i]
            datasets = tuple(
                DatasetPart(d, self.datasets[d]["provider_id"], self.stakes.get(d, 0), c)
                for d, c in zip(sub["datasets"], record.dataset_contributions[i]))
            parts.append(ModelPart(mid, sub["modeler"], self.model_stakes[key], sub["kept_share_bps"],
                                   record.contributions[i], datasets,
                                   copy_of=record.models[leaders[i]] if leaders[i] != i else ""))
        return parts

    def settlement_plan(self, tournament_id: str) -> Plan:
        """The settlement (or abort) entries the rules expect, from the state now (the
        coordinator appends exactly these in one group commit)."""
        record = self._tournament(tournament_id, TournamentStatus.RESULT, TournamentStatus.ABORTING)
        planned = self.settlement_plans.get(tournament_id)
        if planned is not None:
            return planned
        opened, parts = record.opened, self._parts(record)
        settlement = settle_tournament(
            parts, pool=self.tournament_pools[tournament_id],
            metamodel_metric_micro=record.metamodel_metric_micro,
            threshold_micro=opened["threshold_micro"],
            higher_is_better=opened["task"]["metric"] not in LOWER_IS_BETTER,
            slash_rate_ppm=opened["slash_rate_ppm"], epsilon_micro=opened["epsilon_micro"])
        return tuple(settlement_entries(tournament_id, record.sponsor, parts, settlement))

    def _step(self, kind: str, p: dict[str, Any]) -> TournamentRecord:
        """Check that this entry is the settlement's next one; count it."""
        tid = p["tournament_id"]
        record = self._tournament(tid, TournamentStatus.RESULT, TournamentStatus.ABORTING)
        if tid not in self.settlement_plans:
            self._put(self.settlement_plans, tid, self.settlement_plan(tid))
            self._put(self.settlement_steps, tid, 0)
        plan, step = self.settlement_plans[tid], self.settlement_steps[tid]
        expected = plan[step] if step < len(plan) else None
        if expected is None or expected[0] != kind or expected[1] != p:
            raise RuleViolation("settlement_mismatch", f"entry {step} of tournament {tid!r}'s "
                                f"settlement must be {expected[0] if expected else 'nothing'} "
                                f"{expected[1] if expected else ''}, not {kind} {p}")
        self._put(self.settlement_steps, tid, step + 1)
        return record

    def _take(self, mapping: dict[str, int], key: str, amount: int, total: str, what: str) -> None:
        have = mapping.get(key, 0)
        if amount > have:
            raise RuleViolation("insufficient_stake", f"{what} holds {have}, the settlement takes {amount}")
        self._add(mapping, key, -amount, total)

    def _apply_model_dataset_slashed(self, index: int, p: dict[str, Any]) -> None:
        self._step(EntryKind.MODEL_DATASET_SLASHED, p)
        self._take(self.stakes, p["dataset_id"], p["amount"], "stakes", f"dataset {p['dataset_id']!r}")
        self._add(self.tournament_pools, p["tournament_id"], p["amount"], "pools")

    def _apply_model_slashed(self, index: int, p: dict[str, Any]) -> None:
        self._step(EntryKind.MODEL_SLASHED, p)
        key = model_key(p["tournament_id"], p["model_id"])
        self._take(self.model_stakes, key, p["amount"], "stakes", f"model {p['model_id']!r}")
        self._add(self.tournament_pools, p["tournament_id"], p["amount"], "pools")

    def _apply_tournament_refund(self, index: int, p: dict[str, Any]) -> None:
        self._step(EntryKind.TOURNAMENT_REFUND, p)
        self._take(self.tournament_pools, p["tournament_id"], p["amount"], "pools", "the pool")
        self._add(self.balances, p["sponsor"], p["amount"], "balances")

    def _apply_model_rewarded(self, index: int, p: dict[str, Any]) -> None:
        self._step(EntryKind.MODEL_REWARDED, p)
        self._take(self.tournament_pools, p["tournament_id"], p["amount"], "pools", "the pool")
        self._add(self.model_rewards, model_key(p["tournament_id"], p["model_id"]), p["amount"], "pools")

    def _apply_model_payout(self, index: int, p: dict[str, Any]) -> None:
        self._step(EntryKind.MODEL_PAYOUT, p)
        key = model_key(p["tournament_id"], p["model_id"])
        self._take(self.model_rewards, key, p["amount"], "pools", f"model {p['model_id']!r}'s reward")
        self._add(self.balances, p["to"], p["amount"], "balances")
        # both levels (the modeler's kept share, its datasets' providers) made the
        # metamodel better: an earning for its units, unless the sponsor pays itself
        if p["to"] != self.tournaments[p["tournament_id"]].sponsor:
            self._note_earning(source_key("tournament", p["tournament_id"]), p["to"], p["amount"])

    def _apply_model_stake_returned(self, index: int, p: dict[str, Any]) -> None:
        self._step(EntryKind.MODEL_STAKE_RETURNED, p)
        key = model_key(p["tournament_id"], p["model_id"])
        self._take(self.model_stakes, key, p["amount"], "stakes", f"model {p['model_id']!r}")
        self._add(self.balances, p["modeler"], p["amount"], "balances")

    def _apply_tournament_closed(self, index: int, p: dict[str, Any]) -> None:
        record = self._step(EntryKind.TOURNAMENT_CLOSED, p)
        tid = record.tournament_id
        left = self.tournament_pools[tid] + sum(
            self.model_stakes[model_key(tid, m)] + self.model_rewards.get(model_key(tid, m), 0)
            for m in record.models)
        if left:  # a bug guard: the plan moves every token
            raise IntegrityError(f"tournament {tid!r} closes with {left} tokens left in it")
        for mid in record.models:
            self._lock(self.models[model_key(tid, mid)].datasets, -1)
        if record.resolution_dataset:
            self._lock((record.resolution_dataset,), -1)
        ended = (TournamentStatus.ABORTED if record.status == TournamentStatus.ABORTING
                 else TournamentStatus.CLOSED)
        self._put(self.tournaments, tid, replace(record, status=ended))

    def _apply_tournament_verified(self, index: int, p: dict[str, Any]) -> None:
        record = self._tournament(p["tournament_id"], TournamentStatus.RESULT, TournamentStatus.CLOSED)
        if p["job_digest"] != record.job_digest:
            raise RuleViolation("job_digest", f"the verification names job digest {p['job_digest'][:16]}…, "
                                f"the tournament's result was computed by {record.job_digest[:16]}…")
        models = [(m, self.models[model_key(record.tournament_id, m)].datasets) for m in record.models]
        recorded = {"metamodel_metric_micro": record.metamodel_metric_micro,
                    "contributions_micro": list(record.contributions),
                    "dataset_contributions_micro": [list(c) for c in record.dataset_contributions]}
        verdict = compare(record.tournament_id, models, recorded, p, tolerance_micro=p["tolerance_micro"],
                          epsilon_micro=record.opened["epsilon_micro"], flip_band_micro=p.get("flip_band_micro"))
        if verdict.flipped == ["shape"]:
            raise RuleViolation("verification_shape", "the re-run's numbers do not have the shape of the "
                                "tournament's models and their datasets")
        if p["max_abs_diff_micro"] != verdict.max_abs_diff_micro or \
                (p["verdict"] == "agrees") != verdict.agrees:
            raise RuleViolation("verdict_mismatch", f"the re-run's numbers differ from the result by at most "
                                f"{verdict.max_abs_diff_micro} and {'agree' if verdict.agrees else 'disagree'}; "
                                f"the entry says {p['max_abs_diff_micro']} and {p['verdict']}")

    def _apply_tournament_aborted(self, index: int, p: dict[str, Any]) -> None:
        tid = p["tournament_id"]
        record = self._tournament(tid, TournamentStatus.OPEN, TournamentStatus.FROZEN,
                                  TournamentStatus.RESOLVING)
        parts = []
        for mid in record.models:
            key = model_key(tid, mid)
            parts.append(ModelPart(mid, self.models[key].submission["modeler"], self.model_stakes[key],
                                   0, 0, ()))
        plan = tuple(abort_entries(tid, record.sponsor, self.tournament_pools[tid], parts))
        self._put(self.settlement_plans, tid, plan)
        self._put(self.settlement_steps, tid, 0)
        self._put(self.tournaments, tid, replace(record, status=TournamentStatus.ABORTING))
