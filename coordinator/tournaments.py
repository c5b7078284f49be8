"""A tournament's life on the coordinator: open -> submissions -> freeze (MPC) ->
resolution committed -> resolve (MPC) -> settled (issue 15).

The ledger is the store of record and the judge: every signed request (the sponsor's
open, a modeler's submission, the publisher's resolution) is appended as the signer
signed it, and the ledger's rules (`ledger.tournament_rules`) refuse a late submission,
an ineligible or unconsenting dataset, a stake above the balance, a resolution by the
wrong key or before the freeze, with a typed `RuleViolation` and nothing written.

The two MPC jobs are ordered with the ledger's own signed records (`TournamentOrder`),
so each node checks them itself (`mpcnode.tournament_check`) before it trains or
evaluates, and signs only what it computed:
  * `train`: at or after the deadline, one job trains every model (one batched pass per
    recipe, with each model's per-dataset variants) and every node signs the same
    commitments to the weight shares, which stay on the nodes; `models_frozen` is
    appended with every node's attestation, before any resolution data exists.
  * `resolve`: after `resolution_committed`, one job evaluates the frozen models on the
    resolution rows and reveals the metamodel's metric, each model's contribution and each
    dataset's within its model; every node must sign the same numbers (else nothing is
    written); `tournament_result` is appended, then the settlement the ledger's replay
    recomputes (`settlement_plan`: both levels of `tournament_settlement`) in ONE group
    commit. A coordinator stopped between the two settles when it starts (`recover`) or
    when `resolve` is asked again.

A failed job writes nothing: the tournament stays where it was and the job can be run
again. Which freeze job holds a tournament's weights is kept in `<state_dir>/<id>.json`
(each node keeps its own shares under that job id). A job in flight is marked in
`<state_dir>/running/<id>`, so a coordinator stopped under it counts it as failed when it
starts again (`recover`), and settles a result whose settlement it had not written.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from coordinator.cluster_link import JobOrder, NodeJobReport
from coordinator.mpc_job import Progress
from coordinator.ownership import Request, tournament_earnings, units_issued_request
from coordinator.rounds import LifecyclePolicy, Rounds
from ledger import Entry, Ledger
from ledger.tournament_rules import TournamentRecord, model_key
from mutualmind.errors import (
    Aborted,
    AlreadyExists,
    IntegrityError,
    InvalidInput,
    NotFound,
    RuleViolation,
)
from mutualmind.transport.atomic_file import write_atomic
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.deadlines import ROUND_S
from mutualmind.vocabulary.metamodel_weights import copy_leaders
from mutualmind.vocabulary.payloads import party_id
from mutualmind.vocabulary.signing_keys import verify_signature
from mutualmind.vocabulary.states import EntryKind, TournamentStatus
from mutualmind.vocabulary.tournament import (
    freeze_attestation_message,
    freeze_digest,
    result_attestation_message,
)
from mutualmind.vocabulary.tournament_job import (
    FREEZE,
    PREDICT,
    RESOLVE,
    SignedRecord,
    TournamentOrder,
    training_datasets,
)
from mutualmind.vocabulary.tournament_settlement import ModelPart, abort_entries

log = logging.getLogger(__name__)
T = TypeVar("T")
# a tournament without a result can still be aborted (its outcome is not known yet)
ABORTABLE = (TournamentStatus.OPEN, TournamentStatus.FROZEN, TournamentStatus.RESOLVING)
RUNNING = "running"   # <state_dir>/running/<tournament_id>: a train or resolve job in flight


def give_up_reason(deadline_ms: int, failures: int, last_error: str, policy: LifecyclePolicy,
                   now_ms: int | None = None) -> str | None:
    """Why an unsettled tournament is given up (None: not yet): `policy.max_failures`
    failed jobs, or `policy.tournament_ttl_s` past its submission deadline unsettled."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    expiry = deadline_ms + int(policy.tournament_ttl_s * 1000)
    if now >= expiry:
        return f"was not settled by {expiry} (deadline + {policy.tournament_ttl_s:g} s): no resolution arrived"
    if failures >= policy.max_failures:
        return f"failed {failures} jobs (last: {last_error[:300]})"
    return None


@dataclass
class TournamentRuntime:
    """What the coordinator knows beyond the ledger: a job in flight, the last failure."""

    running: bool = False
    message: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    failures: int = 0     # failed jobs since this coordinator started, and one in flight at its last stop


class Tournaments:
    """Records the signed requests and runs the two MPC jobs; one job at a time per tournament."""

    def __init__(self, ledger: Ledger, rounds: Rounds, state_dir: Path) -> None:
        self.ledger = ledger
        self._rounds = rounds          # the cluster link, the data plane and the MPC ports
        self.state_dir = Path(state_dir)
        (self.state_dir / RUNNING).mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._runtime: dict[str, TournamentRuntime] = {}

    # -- signed requests (the ledger's rules judge them) ------------------------------

    def open(self, payload: dict[str, Any], signature: bytes) -> Entry:
        """The sponsor's signed tournament_opened: the pool is locked."""
        return self.ledger.append(EntryKind.TOURNAMENT_OPENED, payload, provider_signature=signature)

    def submit(self, payload: dict[str, Any], signature: bytes) -> Entry:
        """A modeler's signed model_submitted: the stake is locked, the datasets too."""
        return self.ledger.append(EntryKind.MODEL_SUBMITTED, payload, provider_signature=signature)

    def commit_resolution(self, payload: dict[str, Any], signature: bytes) -> Entry:
        """The resolution publisher's signed resolution_committed (after the freeze only)."""
        return self.ledger.append(EntryKind.RESOLUTION_COMMITTED, payload, provider_signature=signature)

    # -- the MPC jobs --------------------------------------------------------------

    def train(self, tournament_id: str, *, deadline_s: float = ROUND_S,
              progress: Progress | None = None) -> Entry:
        """Train and freeze every submitted model; returns the models_frozen entry.
        The `max_failures`-th failed job aborts the tournament (`Aborted`)."""
        return self._counted(tournament_id, lambda: self._train(tournament_id, deadline_s, progress))

    def _train(self, tournament_id: str, deadline_s: float, progress: Progress | None) -> Entry:
        report = progress or (lambda stage, fraction, message: None)
        record = self.record(tournament_id, TournamentStatus.OPEN)
        now = int(time.time() * 1000)
        if now < record.opened["deadline_ms"]:
            raise RuleViolation("before_deadline", f"tournament {tournament_id!r} takes submissions "
                                f"until {record.opened['deadline_ms']} (now {now}); train it after the deadline")
        if not record.models:
            raise RuleViolation("no_models", f"tournament {tournament_id!r} has no submitted model to train")
        with self._running(tournament_id, job=FREEZE) as runtime:
            order = self._order(record, FREEZE, deadline_s)
            report("training", 0.0, f"freeze job {order.job_id}: {len(record.models)} models")
            reports = self._rounds.run_job(order, report)
            commitments, attestations = self.freeze_attestations(order, reports)
            runtime.stats = _stats(order, reports)
            write_atomic(self.state_dir / f"{tournament_id}.json",
                         json.dumps({"freeze_job_id": order.job_id}).encode())
            entry = self.ledger.append(EntryKind.MODELS_FROZEN, {
                "tournament_id": tournament_id, "job_digest": order.job_digest,
                "model_commitments": commitments, "attestations": attestations})
        report("done", 1.0, f"models frozen at ledger index {entry.index}")
        return entry

    def resolve(self, tournament_id: str, *, deadline_s: float = ROUND_S,
                progress: Progress | None = None) -> list[Entry]:
        """Evaluate the frozen models on the committed resolution data, record the
        result and settle; returns the entries written. The `max_failures`-th failed job
        aborts the tournament (`Aborted`)."""
        return self._counted(tournament_id, lambda: self._resolve(tournament_id, deadline_s, progress))

    def _resolve(self, tournament_id: str, deadline_s: float, progress: Progress | None) -> list[Entry]:
        report = progress or (lambda stage, fraction, message: None)
        record = self.record(tournament_id, TournamentStatus.RESOLVING, TournamentStatus.RESULT)
        if record.status == TournamentStatus.RESULT:  # the result is in; its settlement was not
            return self.settle(tournament_id)
        with self._running(tournament_id, job=RESOLVE) as runtime:
            order = self._order(record, RESOLVE, deadline_s)
            report("resolving", 0.0, f"resolve job {order.job_id}")
            reports = self._rounds.run_job(order, report)
            numbers, attestations = self.result_attestations(order, reports)
            runtime.stats = _stats(order, reports)
            result = self.ledger.append(EntryKind.TOURNAMENT_RESULT, {
                "tournament_id": tournament_id, "job_digest": order.job_digest, **numbers,
                "attestations": attestations})
            entries = [result, *self.settle(tournament_id)]
        report("done", 1.0, f"tournament {tournament_id} closed at ledger index {entries[-1].index}")
        return entries

    def _counted(self, tournament_id: str, job: Callable[[], T]) -> T:
        """Run a job; count its failure (`_running` does) and give up after too many."""
        try:
            return job()
        except Exception as err:
            reason = self.abort_if_given_up(tournament_id)
            status = self.ledger.state.tournament_statuses.get(tournament_id)
            if reason is None and status == TournamentStatus.ABORTED:
                reason = "was aborted meanwhile (by the sweep or the admin)"
            if reason is None:
                raise
            raise Aborted(f"tournament {tournament_id!r} {reason}; it was aborted: the pool went back to the "
                          "sponsor and every stake to its modeler") from err

    def abort_if_given_up(self, tournament_id: str, now_ms: int | None = None) -> str | None:
        """Abort the tournament if it is unsettled, no job is running, and it failed
        `max_failures` jobs or outlived its deadline by the policy's `tournament_ttl_s`
        (its resolution never arrived); returns the reason (None: left as it is)."""
        record = self.ledger.state.tournament(tournament_id)
        if record is None or record.status not in ABORTABLE:
            return None
        runtime = self.runtime(tournament_id)
        if runtime.running:
            return None    # looked at again when the job ends
        reason = give_up_reason(record.opened["deadline_ms"], runtime.failures, runtime.message,
                                self._rounds.policy, now_ms)
        if reason is None:
            return None
        try:
            self.abort(tournament_id, reason)
        except (AlreadyExists, RuleViolation):
            return None    # a job started, or the result came in, meanwhile
        log.warning("aborted tournament %s: %s", tournament_id, reason)
        return reason

    def sweep(self, now_ms: int | None = None) -> list[str]:
        """Look at every unsettled tournament (the server's sweeper calls this with the
        rounds' sweep); the ids of those aborted."""
        return [tid for tid, status in list(self.ledger.state.tournament_statuses.items())
                if status in ABORTABLE and self.abort_if_given_up(tid, now_ms) is not None]

    def abort(self, tournament_id: str, reason: str) -> list[Entry]:
        """Abort a tournament before its result (the admin's call, e.g. after failed jobs):
        the pool back to the sponsor and every stake to its modeler, in one group commit.
        A tournament whose result is in cannot be aborted: its outcome is known."""
        if not reason.strip():
            raise InvalidInput("say why the tournament is aborted (recorded on the ledger)")
        record = self.record(tournament_id, *ABORTABLE)
        with self._running(tournament_id):
            state = self.ledger.state
            parts = [ModelPart(mid, state_model(self.ledger, tournament_id, mid)["modeler"],
                               state.model_stakes[model_key(tournament_id, mid)], 0, 0, ())
                     for mid in record.models]
            plan = abort_entries(tournament_id, record.sponsor, state.tournament_pools[tournament_id], parts)
            return self.ledger.append_many([
                (EntryKind.TOURNAMENT_ABORTED, {"tournament_id": tournament_id, "reason": reason[:1024]}, None),
                *((kind, payload, None) for kind, payload in plan)])

    def rerun_resolution(self, tournament_id: str, *, deadline_s: float = ROUND_S) -> dict[str, Any]:
        """The resolution job of a tournament with a result, run again on the frozen shares
        (for `verify`): the numbers every node signed alike; nothing is written."""
        record = self.record(tournament_id, TournamentStatus.RESULT, TournamentStatus.CLOSED)
        with self._running(tournament_id):
            order = self._order(record, RESOLVE, deadline_s)
            reports = self._rounds.run_job(order, lambda stage, fraction, message: None)
            numbers, _ = self.result_attestations(order, reports)
        return numbers

    def recorded_result(self, tournament_id: str) -> dict[str, Any]:
        """The tournament_result payload; NotFound before the result."""
        for entry in self._entries(tournament_id):
            if entry.kind == EntryKind.TOURNAMENT_RESULT:
                return entry.payload
        raise NotFound(f"tournament {tournament_id!r} has no recorded result")

    def settle(self, tournament_id: str) -> list[Entry]:
        """Append the settlement the ledger expects (both levels) and the metamodel's
        ownership units, in one group commit."""
        record = self.record(tournament_id, TournamentStatus.RESULT)
        return self.ledger.append_many(settlement_requests(self.ledger, tournament_id, record.sponsor))

    # -- reading -------------------------------------------------------------------

    def record(self, tournament_id: str, *statuses: TournamentStatus) -> TournamentRecord:
        """The tournament's ledger record, in one of `statuses` when given."""
        party_id("tournament_id", tournament_id)
        record = self.ledger.state.tournament(tournament_id)
        if record is None:
            raise NotFound(f"no tournament {tournament_id!r}; open it first (admin tournament open)")
        if statuses and record.status not in statuses:
            raise RuleViolation("tournament_state", f"tournament {tournament_id!r} is {record.status}; "
                                f"this needs it {' or '.join(statuses)}")
        return record

    def tournament_ids(self) -> list[str]:
        return [e.payload["tournament_id"] for e in self.ledger.entries(kind=EntryKind.TOURNAMENT_OPENED, limit=None)]

    def runtime(self, tournament_id: str) -> TournamentRuntime:
        with self._lock:
            return self._runtime.get(tournament_id, TournamentRuntime())

    def summary(self, tournament_id: str) -> dict[str, Any]:
        """The tournament as `show` prints it: terms, models (stake, contribution, tokens
        in and out) and the metamodel's metric; from the ledger alone."""
        record = self.record(tournament_id)
        state = self.ledger.state
        flows: dict[str, dict[str, int]] = {}
        paid: dict[str, list[dict[str, Any]]] = {}
        dataset_slashes: dict[str, dict[str, int]] = {}
        refund = 0
        for entry in self._entries(tournament_id):
            p = entry.payload
            if entry.kind == EntryKind.TOURNAMENT_REFUND:
                refund += p["amount"]
            elif "model_id" in p and entry.kind in _FLOWS:
                flow = flows.setdefault(p["model_id"], {k: 0 for k in _FLOWS.values()})
                flow[_FLOWS[entry.kind]] += p["amount"]
            if entry.kind == EntryKind.MODEL_DATASET_SLASHED:  # level 2: a dataset that hurt its model
                taken = dataset_slashes.setdefault(p["model_id"], {})
                taken[p["dataset_id"]] = taken.get(p["dataset_id"], 0) + p["amount"]
            if entry.kind == EntryKind.MODEL_PAYOUT:  # level 2: to the modeler or a dataset
                paid.setdefault(p["model_id"], []).append(
                    {"to": p["to"], "dataset_id": p.get("dataset_id", ""), "amount": p["amount"]})
        subs = [state_model(self.ledger, tournament_id, mid) for mid in record.models]
        leaders = copy_leaders([(sub["recipe"], sub["datasets"]) for sub in subs])
        models = []
        for i, (mid, sub) in enumerate(zip(record.models, subs, strict=True)):
            models.append({
                "model_id": mid, "modeler": sub["modeler"], "kind": sub["recipe"]["kind"],
                "copy_of": record.models[leaders[i]] if leaders[i] != i else "",
                "datasets": sub["datasets"], "stake": sub["stake"], "kept_share_bps": sub["kept_share_bps"],
                "locked": state.model_stakes.get(model_key(tournament_id, mid), 0),
                "contribution_micro": record.contributions[i] if record.contributions else None,
                "dataset_contributions_micro": list(record.dataset_contributions[i]) if record.dataset_contributions else None,
                "commitment": record.commitments[i] if record.commitments else "",
                "payouts": paid.get(mid, []), "dataset_slashes": dataset_slashes.get(mid, {}),
                **flows.get(mid, {k: 0 for k in _FLOWS.values()})})
        opened = record.opened
        return {"tournament_id": tournament_id, "status": record.status, "sponsor": record.sponsor,
                "task": opened["task"], "pool": opened["pool"], "threshold_micro": opened["threshold_micro"],
                "deadline_ms": opened["deadline_ms"], "slash_rate_ppm": opened["slash_rate_ppm"],
                "weight_cap_ppm": opened["weight_cap_ppm"], "epsilon_micro": opened["epsilon_micro"],
                "resolution_publisher": opened["resolution_publisher"], "datasets": opened["datasets"],
                "resolution_dataset": record.resolution_dataset, "job_digest": record.job_digest,
                "metamodel_metric_micro": record.metamodel_metric_micro if record.contributions else None,
                "refund_to_sponsor": refund, "models": models,
                "message": self.runtime(tournament_id).message}

    # -- helpers -------------------------------------------------------------------

    @contextmanager
    def _running(self, tournament_id: str, *, job: str = "") -> Iterator[TournamentRuntime]:
        """One job at a time per tournament; its failure is kept as the runtime's message.
        A `job` (train or resolve) is counted when it fails and marked on disk while it
        runs, with the status it started from and the failures before it (`recover`)."""
        with self._lock:
            runtime = self._runtime.setdefault(tournament_id, TournamentRuntime())
            if runtime.running:
                raise AlreadyExists(f"tournament {tournament_id!r} is running a job; wait for it")
            runtime.running = True
        marker = self.state_dir / RUNNING / tournament_id
        try:
            if job:
                status = self.ledger.state.tournament_statuses.get(tournament_id, "")
                write_atomic(marker, json.dumps({"job": job, "status": status,
                                                 "failures": runtime.failures}).encode())
            yield runtime
            runtime.message = ""
        except Exception as err:
            runtime.message = str(err)
            runtime.failures += bool(job)
            raise
        finally:
            if job:
                marker.unlink(missing_ok=True)
            runtime.running = False

    def recover(self) -> list[str]:
        """At start: a train or resolve job that was running when the coordinator stopped
        counts as failed (the ledger still has the tournament where the job found it, so
        the job can be asked again; the `max_failures`-th aborts it, as after a failed
        job), and a result whose settlement was not written yet is settled. Returns the
        ids aborted."""
        aborted = []
        folder = self.state_dir / RUNNING
        for marker in sorted(folder.iterdir()) if folder.is_dir() else ():
            tid = marker.name
            try:
                mark = json.loads(marker.read_text())
                job, status, failures = str(mark["job"]), str(mark["status"]), int(mark["failures"])
            except (OSError, ValueError, TypeError, KeyError):
                job, status, failures = "a", "", 0   # cut short while written: the job had not started
            marker.unlink()
            now = self.ledger.state.tournament_statuses.get(tid)
            if now is None or (status and now != status):
                continue    # the job's entry is on the ledger: it finished before the stop
            with self._lock:
                runtime = self._runtime.setdefault(tid, TournamentRuntime())
                runtime.failures = failures + 1
                runtime.message = (f"the coordinator stopped while the {job} job was running; "
                                   "nothing was written, ask for the job again")
            log.warning("tournament %s: %s", tid, runtime.message)
            if self.abort_if_given_up(tid) is not None:
                aborted.append(tid)
        for tid, status in list(self.ledger.state.tournament_statuses.items()):
            if status != TournamentStatus.RESULT:
                continue
            try:
                self.settle(tid)
            except Exception:   # the coordinator still starts; `resolve` settles it when asked
                log.exception("tournament %s has a result without its settlement and could not be settled", tid)
                continue
            log.warning("settled tournament %s: the coordinator stopped between its result and its settlement", tid)
        return aborted

    def _entries(self, tournament_id: str) -> list[Entry]:
        return [e for e in self.ledger.entries(start=self._opened(tournament_id).index, limit=None)
                if e.kind in _TOURNAMENT_KINDS and e.payload.get("tournament_id") == tournament_id]

    def _opened(self, tournament_id: str) -> Entry:
        for entry in self.ledger.entries(kind=EntryKind.TOURNAMENT_OPENED, limit=None):
            if entry.payload["tournament_id"] == tournament_id:
                return entry
        raise NotFound(f"no tournament {tournament_id!r} on the ledger")

    def _signed(self, entry: Entry) -> SignedRecord:
        return SignedRecord(entry.payload, entry.provider_signature or b"")

    def _order(self, record: TournamentRecord, phase: str, deadline_s: float = ROUND_S) -> JobOrder:
        """The job every node is told, with the ledger's signed records in it."""
        tid = record.tournament_id
        entries = self._entries(tid)
        opened, submissions = self._signed(entries[0]), self._submissions(entries)
        datasets = training_datasets([s.payload for s in submissions], record.opened["datasets"])
        if phase == FREEZE:
            tournament = TournamentOrder(FREEZE, opened, submissions)
            digest = freeze_digest(record.opened, [s.payload for s in submissions], self.ledger.state.datasets)
        else:
            resolution = next(self._signed(e) for e in entries if e.kind == EntryKind.RESOLUTION_COMMITTED)
            tournament = TournamentOrder(RESOLVE, opened, submissions, resolution, self._freeze_job(tid))
            datasets, digest = (record.resolution_dataset,), record.job_digest
        return JobOrder(
            job_id=f"{tid}-{phase}-{secrets.token_hex(3)}"[-64:].lstrip("-._") or secrets.token_hex(8),
            round_id=tid, dataset_ids=datasets, validation_dataset_id="", model_spec_json="{}",
            job_digest=digest, deadline_s=deadline_s, tournament_json=tournament.to_json(),
            **self._rounds.placement())

    def _submissions(self, entries: list[Entry]) -> tuple[SignedRecord, ...]:
        return tuple(self._signed(e) for e in entries if e.kind == EntryKind.MODEL_SUBMITTED)

    def metamodel_order(self, tournament_id: str) -> tuple[str, str]:
        """What an inference job of a closed tournament's metamodel carries (issue 16): the
        ledger's signed records in the predict phase (each node verifies them and finds its
        own freeze job, `mpcnode.inference_jobs`), and the resolution's job digest that
        binds the frozen models; RuleViolation unless the tournament closed."""
        record = self.record(tournament_id, TournamentStatus.CLOSED)
        entries = self._entries(tournament_id)
        resolution = next(self._signed(e) for e in entries if e.kind == EntryKind.RESOLUTION_COMMITTED)
        order = TournamentOrder(PREDICT, self._signed(entries[0]), self._submissions(entries), resolution,
                                self._freeze_job(tournament_id))
        return order.to_json(), record.job_digest

    def _freeze_job(self, tournament_id: str) -> str:
        path = self.state_dir / f"{tournament_id}.json"
        try:
            return str(json.loads(path.read_text())["freeze_job_id"])
        except (OSError, ValueError, KeyError) as err:
            raise NotFound(f"the coordinator lost which job froze tournament {tournament_id!r}'s models "
                           f"({err}); the nodes hold them under that job id") from None

    def _attested(self, reports: list[NodeJobReport], message: Any) -> list[dict[str, Any]]:
        """Every node signed `message(body)` for the same body; the attestations."""
        node_keys = self.ledger.state.nodes
        first: bytes | None = None
        attestations = []
        for index, r in enumerate(reports):
            try:
                expected = message(json.loads(r.attestation_payload))
            except (ValueError, KeyError, TypeError) as err:
                raise IntegrityError(f"node {index} sent an unreadable attestation ({err})") from None
            if expected != r.attestation_payload:
                raise IntegrityError(f"node {index} attested another tournament or job digest")
            key = node_keys.get(index)
            if key is None or not verify_signature(key, expected, r.attestation):
                raise IntegrityError(f"node {index}'s attestation signature does not verify against its registered key")
            if first is not None and expected != first:
                raise IntegrityError(f"nodes disagree (node 0 signed {first[:200]!r}, node {index} "
                                     f"{expected[:200]!r}); the result is refused and nothing was written")
            first = expected
            attestations.append({"node_index": index, "signature": r.attestation.hex()})
        return attestations

    def freeze_attestations(self, order: JobOrder, reports: list[NodeJobReport]) -> tuple[list[str], list[dict[str, Any]]]:
        def message(body: dict[str, Any]) -> bytes:
            return freeze_attestation_message(order.round_id, order.job_digest, [str(c) for c in body["model_commitments"]])
        attestations = self._attested(reports, message)
        return [str(c) for c in json.loads(reports[0].attestation_payload)["model_commitments"]], attestations

    def result_attestations(self, order: JobOrder, reports: list[NodeJobReport]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        def numbers(body: dict[str, Any]) -> dict[str, Any]:
            return {"metamodel_metric_micro": int(body["metamodel_metric_micro"]),
                    "contributions_micro": [int(c) for c in body["contributions_micro"]],
                    "dataset_contributions_micro": [[int(c) for c in row] for row in body["dataset_contributions_micro"]]}

        def message(body: dict[str, Any]) -> bytes:
            n = numbers(body)
            return result_attestation_message(order.round_id, order.job_digest, n["metamodel_metric_micro"],
                                              n["contributions_micro"], n["dataset_contributions_micro"])
        attestations = self._attested(reports, message)
        return numbers(json.loads(reports[0].attestation_payload)), attestations


_FLOWS: dict[str, str] = {EntryKind.MODEL_REWARDED: "rewarded", EntryKind.MODEL_SLASHED: "slashed",
          EntryKind.MODEL_STAKE_RETURNED: "stake_returned", EntryKind.MODEL_DATASET_SLASHED: "datasets_slashed"}
_TOURNAMENT_KINDS = {
    EntryKind.TOURNAMENT_OPENED, EntryKind.MODEL_SUBMITTED, EntryKind.MODELS_FROZEN,
    EntryKind.RESOLUTION_COMMITTED, EntryKind.TOURNAMENT_RESULT, EntryKind.MODEL_DATASET_SLASHED,
    EntryKind.MODEL_SLASHED, EntryKind.TOURNAMENT_REFUND, EntryKind.MODEL_REWARDED, EntryKind.MODEL_PAYOUT,
    EntryKind.MODEL_STAKE_RETURNED, EntryKind.TOURNAMENT_CLOSED, EntryKind.TOURNAMENT_ABORTED,
}


def settlement_requests(ledger: Ledger, tournament_id: str, sponsor: str) -> list[Request]:
    """The settlement the ledger expects, then (after tournament_closed) the metamodel's
    units issue to those its model_payout entries paid (issue 16), none when nobody earned."""
    plan = ledger.state.settlement_plan(tournament_id)
    batch: list[Request] = [(kind, payload, None) for kind, payload in plan]
    units = units_issued_request("tournament", tournament_id, tournament_earnings(plan, sponsor))
    if units is not None:
        batch.append(units)
    return batch


def state_model(ledger: Ledger, tournament_id: str, model_id: str) -> dict[str, Any]:
    """A submitted model's model_submitted payload, from the ledger's state."""
    for entry in ledger.entries(kind=EntryKind.MODEL_SUBMITTED, limit=None):
        p = entry.payload
        if p["tournament_id"] == tournament_id and p["model_id"] == model_id:
            return p
    raise NotFound(f"tournament {tournament_id!r} has no model {model_id!r}")


def _stats(order: JobOrder, reports: list[NodeJobReport]) -> dict[str, Any]:
    return {"job_id": order.job_id, "job_digest": order.job_digest, "parties": [r.stats for r in reports]}


def canonical(value: Any) -> str:
    """Canonical JSON text (what the RPCs carry as *_json)."""
    return canonical_json(value).decode()
