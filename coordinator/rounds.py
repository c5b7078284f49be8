"""A round's life: open -> run (one MPC job on every node) -> result -> settled -> closed,
or open -> aborted; nothing stays locked for ever.

The ledger is the store of record: a round is opened by the sponsor's signed
round_opened entry (its model spec, work and every dataset's terms are ledger rules, so
a round no worker can run or no provider agreed to is refused before anything is
written), and a successful run ends in ONE group commit of round_result, every slash,
every payout and round_closed — so the ledger never holds half a round. A failed run (a
node died, the deadline passed, the nodes disagreed) writes nothing: the round stays
open with stakes and pool where they were, and can be run again — until it has failed
`max_failures` times. An open round that is not running is aborted (a round_aborted
entry: pool back to the sponsor, stakes unlocked) when its sponsor withdraws it (a
signed round_abort_requested in the same group commit), when the admin aborts it, when
it has passed its expiry (signed at open, or the coordinator's default TTL from the
open), or after `max_failures` failed runs; expiry and failures are acted on whenever
the coordinator looks at the round (a run) and by `sweep`, which the server calls
periodically. A run in flight when the coordinator died is found by its marker file on
restart and the round is aborted — the coordinator cannot know how far it got.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coordinator.cluster_link import ClusterLink, JobOrder, NodeJobReport
from coordinator.mpc_job import POLL_INTERVAL_S, run_job
from coordinator.ownership import round_earnings, units_issued_request
from coordinator.payouts import Participant, Settlement, settle
from ledger import Entry, Ledger
from mutualmind.errors import (
    Aborted,
    AlreadyExists,
    IntegrityError,
    InvalidInput,
    NotFound,
    RuleViolation,
)
from mutualmind.transport.atomic_file import write_atomic
from mutualmind.vocabulary.attestation import attestation_message
from mutualmind.vocabulary.beacon import check_beacon, draw_beacon
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.column_scale import check_labels_fit_model
from mutualmind.vocabulary.copy_rule import check_copies, copied_datasets, order_error
from mutualmind.vocabulary.data_plane import DEFAULT_PLANE
from mutualmind.vocabulary.deadlines import ROUND_S
from mutualmind.vocabulary.job_digest import job_digest
from mutualmind.vocabulary.model_spec import parse_model_spec, spec_for_ledger
from mutualmind.vocabulary.payloads import party_id
from mutualmind.vocabulary.signing_keys import verify_signature
from mutualmind.vocabulary.states import UNSETTLED, EntryKind, RoundStatus
from mutualmind.vocabulary.valuation import revealed_count, round_result_micro

ROUNDS_PAGE = 200  # rounds per ListRounds page (each carries its participants and stats)
SWEEP_LOOK_WAIT_S = 30.0  # a run waits at most this long for a sweep looking at its round

log = logging.getLogger(__name__)


Progress = Callable[[str, float, str], None]   # (stage, fraction 0..1, message)


@dataclass(frozen=True)
class LifecyclePolicy:
    """When the coordinator gives up on an open round (and on a tournament).

    `max_failures` failed runs abort a round (a spec or data that cannot train would
    otherwise hold the stakes for ever); `default_ttl_s` is the life of a round whose
    sponsor signed no expiry, counted from its round_opened entry; a signed expiry must
    lie in the future and at most `max_ttl_s` ahead.
    """

    max_failures: int = 3
    default_ttl_s: float = 24 * 3600.0
    max_ttl_s: float = 30 * 24 * 3600.0
    # a tournament not settled this long after its submission deadline is aborted
    # (its resolution never arrived); `max_failures` failed jobs abort it too
    tournament_ttl_s: float = 30 * 24 * 3600.0


@dataclass
class RoundRuntime:
    """What the coordinator knows of a round beyond the ledger: the last run's fate.

    `failures` counts failed runs since this coordinator started (a restart forgives
    them; expiry still bounds the round's life)."""

    running: bool = False
    # the sweeper is deciding whether to abort it (a moment): a run waits for that
    # decision instead of being refused as "already running"
    looked_at: bool = False
    runs_waiting: int = 0     # runs waiting for that decision: no new look starts meanwhile
    message: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    failures: int = 0
    # the last accepted run's copy counts ({counts, samples}, every node signed them);
    # None from nodes that predate copy detection
    copies: dict[str, list[int]] | None = None


@dataclass(frozen=True)
class RoundSummary:
    """A round as `admin round show` prints it: ledger facts joined with runtime facts."""

    round_id: str
    status: RoundStatus
    sponsor: str
    pool: int
    model_spec: dict[str, Any]
    validation_dataset: str
    participants: list[dict[str, Any]]
    metrics_micro: list[int]
    job_digest: str
    message: str
    refund_to_sponsor: int
    stats: dict[str, Any]


class Rounds:
    """Opens, runs and settles rounds; one run at a time per round."""

    def __init__(self, ledger: Ledger, link: ClusterLink, state_dir: Path, *,
                 mpc_ports: range = range(29500, 29600),
                 policy: LifecyclePolicy = LifecyclePolicy()) -> None:
        self.ledger = ledger
        self.policy = policy
        self.link = link
        self.state_dir = Path(state_dir)
        (self.state_dir / "running").mkdir(parents=True, exist_ok=True)
        (self.state_dir / "stats").mkdir(parents=True, exist_ok=True)
        self._ports = mpc_ports
        self._next_port = secrets.randbelow(len(mpc_ports))
        self._lock = threading.Lock()
        self._looked_at = threading.Condition(self._lock)   # notified when a sweep's look ends
        self._runtime: dict[str, RoundRuntime] = {}

    # -- opening -------------------------------------------------------------------

    def open_round(self, *, round_id: str, sponsor: str, pool: int, model_spec: dict[str, Any],
                   validation_dataset: str, datasets: list[str], slash_rate_ppm: int,
                   epsilon_micro: int, nonce: str, signature: bytes,
                   expires_at_ms: int = 0, now_ms: int | None = None,
                   inference_price_per_1000_rows: int = 0) -> Entry:
        """Record the sponsor's signed round_opened entry; the ledger locks the pool.

        The spec is parsed with the workers' own parser first (InvalidInput naming the
        field); the ledger's rules then check it again with the work it asks and every
        dataset's terms, so nothing is written and no pool locked unless all hold.
        The datasets must be listed in the order they were registered (`copy_rule.order_error`).
        Labels are secret-shared, so what the coordinator checks is each dataset's signed
        declaration (`label_classes`, enforced by the provider's checker at share time)
        against the model's task: a 0/1000 table never reaches a logistic round."""
        spec = parse_model_spec(model_spec)
        unordered = order_error(datasets, list(self.ledger.state.datasets))
        if unordered is not None:
            raise InvalidInput(unordered)
        for dataset_id in [*datasets, validation_dataset]:
            registered = self.ledger.state.datasets.get(dataset_id)
            if registered is not None:  # unknown ids: the ledger's rule names them
                check_labels_fit_model(dataset_id, int(registered.get("label_classes", 2)),
                                       spec.task, spec.classes)
        payload = {
            "round_id": round_id, "sponsor": sponsor, "pool": pool,
            "model_spec": spec_for_ledger(model_spec), "validation_dataset": validation_dataset,
            "datasets": list(datasets), "slash_rate_ppm": slash_rate_ppm,
            "epsilon_micro": epsilon_micro, "nonce": nonce,
        }
        if expires_at_ms:
            now = _now_ms() if now_ms is None else now_ms
            latest = now + int(self.policy.max_ttl_s * 1000)
            if not now < expires_at_ms <= latest:
                raise InvalidInput(
                    f"expires_at_ms {expires_at_ms} must lie in the future and at most "
                    f"{self.policy.max_ttl_s / 86400:g} days ahead (now {now}); sign a "
                    "nearer expiry")
            payload["expires_at_ms"] = expires_at_ms
        if inference_price_per_1000_rows:  # the model's price; the ledger bounds it (amount)
            payload["inference_price_per_1000_rows"] = inference_price_per_1000_rows
        return self.ledger.append(EntryKind.ROUND_OPENED, payload, provider_signature=signature)

    # -- ending without a result -----------------------------------------------------

    def round_ids(self, status: str = "", offset: int = 0) -> tuple[list[str], int]:
        """Round ids in the order they were opened (one status's when given): a page of up
        to ROUNDS_PAGE from `offset`, and the next page's offset (0 when this is the last).
        RUNNING is the runtime's view of an open round, as in `GetRound`."""
        statuses = [s.value for s in RoundStatus]
        if status and status not in statuses:
            raise InvalidInput(f"round status {status!r} is not one of {statuses}; leave it empty for every round")
        ids = list(self.ledger.state.rounds)
        if status:
            with self._lock:
                running = {rid for rid, runtime in self._runtime.items() if runtime.running}
            ids = [rid for rid in ids
                   if (RoundStatus.RUNNING if rid in running else self.ledger.state.rounds[rid].status) == status]
        page = ids[offset:offset + ROUNDS_PAGE]
        end = offset + len(page)
        return page, (end if end < len(ids) else 0)

    def expires_at_ms(self, round_id: str) -> int:
        """When the round is aborted if still open: the signed expiry, else default TTL."""
        entry = self._opened_entry(round_id)
        signed = entry.payload.get("expires_at_ms")
        return int(signed) if signed else entry.time_ms + int(self.policy.default_ttl_s * 1000)

    def abort(self, round_id: str, reason: str, *,
              sponsor_request: tuple[dict[str, Any], bytes] | None = None) -> Entry:
        """Abort an open round that is not running: pool back to the sponsor, stakes
        unlock. `sponsor_request` is the sponsor's signed round_abort_requested
        (payload, signature), written in the same group commit."""
        runtime = self._hold(round_id)
        try:
            self.round_payload(round_id, statuses=(RoundStatus.OPEN,))
            return self._write_abort(round_id, reason, runtime, sponsor_request)
        finally:
            runtime.running = False

    def look_at(self, round_id: str, now_ms: int | None = None) -> str | None:
        """Abort the round if it is open, not running, and expired or failed too often;
        returns the reason it was aborted (None: left as it is)."""
        record = self.ledger.state.rounds.get(round_id)
        if record is None or record.status != "open":
            return None
        try:
            runtime = self._hold(round_id, looking=True)
        except RuleViolation:
            return None   # running: looked at again when the run ends
        try:
            if self.ledger.state.rounds[round_id].status != "open":
                return None
            reason = self._give_up_reason(round_id, runtime, now_ms)
            if reason is not None:
                self._write_abort(round_id, reason, runtime, None)
            return reason
        finally:
            with self._lock:
                runtime.running = runtime.looked_at = False
                self._looked_at.notify_all()

    def sweep(self, now_ms: int | None = None) -> list[str]:
        """Look at every open round (the server calls this periodically); returns the
        ids of the rounds aborted."""
        aborted = []
        for round_id, record in list(self.ledger.state.rounds.items()):
            if record.status == "open" and self.look_at(round_id, now_ms) is not None:
                aborted.append(round_id)
        return aborted

    def _give_up_reason(self, round_id: str, runtime: RoundRuntime,
                        now_ms: int | None) -> str | None:
        now = _now_ms() if now_ms is None else now_ms
        expiry = self.expires_at_ms(round_id)
        if now >= expiry:
            return f"expired at {_utc(expiry)} before it settled"
        if runtime.failures >= self.policy.max_failures:
            return (f"failed {runtime.failures} runs (last: {runtime.message[:300]})")
        return None

    def _hold(self, round_id: str, *, looking: bool = False) -> RoundRuntime:
        """Mark the round busy (no run may start) while an abort is decided and written;
        `looking`: a sweep's look, which a run waits for (`claim`), set in the same step."""
        with self._lock:
            runtime = self._runtime.setdefault(round_id, RoundRuntime())
            if runtime.running or (looking and runtime.runs_waiting):
                raise RuleViolation("round_running", f"round {round_id!r} is running (or "
                                    "being aborted); wait until the run ends or fails, then "
                                    "abort it")
            runtime.running = True
            runtime.looked_at = looking
            return runtime

    def _write_abort(self, round_id: str, reason: str, runtime: RoundRuntime,
                     sponsor_request: tuple[dict[str, Any], bytes] | None) -> Entry:
        batch: list[tuple[str, dict[str, Any], bytes | None]] = []
        if sponsor_request is not None:
            payload, signature = sponsor_request
            batch.append(("round_abort_requested", payload, signature))
        batch.append(("round_aborted", {"round_id": round_id, "reason": reason[:1024]}, None))
        entry = self.ledger.append_many(batch)[-1]
        runtime.message = reason
        log.warning("aborted round %s: %s", round_id, reason)
        return entry

    # -- recovery ------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Abort every round whose run was in flight when the coordinator stopped."""
        aborted = []
        for marker in sorted((self.state_dir / "running").iterdir()):
            round_id = marker.name
            record = self.ledger.state.rounds.get(round_id)
            if record is not None and record.status in UNSETTLED:
                self.ledger.append(EntryKind.ROUND_ABORTED, {
                    "round_id": round_id,
                    "reason": "coordinator restarted while the round was running"})
                aborted.append(round_id)
                log.warning("aborted round %s: it was running when the coordinator stopped",
                            round_id)
            marker.unlink()
        return aborted

    # -- running -------------------------------------------------------------------

    def run(self, round_id: str, *, deadline_s: float = ROUND_S,
            progress: Progress | None = None) -> list[Entry]:
        """Run the round's MPC job on every node and settle it; returns the entries written."""
        report = progress or (lambda stage, fraction, message: None)
        self.round_payload(round_id, statuses=(RoundStatus.OPEN,))
        reason = self.look_at(round_id)
        if reason is not None:
            raise Aborted(f"round {round_id!r} was aborted ({reason}): its pool went back "
                          "to the sponsor and its stakes are unlocked")
        runtime = self.claim(round_id)
        try:
            round_payload = self.round_payload(round_id, statuses=(RoundStatus.OPEN,))
        except BaseException:
            runtime.running = False
            raise
        marker = self.state_dir / "running" / round_id
        write_atomic(marker, b"running\n")
        try:
            order, metrics_micro, attestations = self.execute(
                round_payload, deadline_s, report, runtime)
            report("settling", 0.97, "writing result, slashes and payouts")
            entries = self._settle(round_payload, order, metrics_micro, attestations, runtime.copies)
            runtime.message = ""
            report("done", 1.0, f"round {round_id} closed at ledger index {entries[-1].index}")
            return entries
        except Exception as err:
            runtime.message = str(err)
            runtime.failures += 1
            if runtime.failures < self.policy.max_failures:
                report("failed", 1.0, str(err))
                raise
            reason = f"failed {runtime.failures} runs (last: {str(err)[:300]})"
            self._write_abort(round_id, reason, runtime, None)
            report("failed", 1.0, reason)
            raise Aborted(f"round {round_id!r} {reason}; it was aborted: its pool went back "
                          "to the sponsor and its stakes are unlocked") from err
        finally:
            marker.unlink(missing_ok=True)
            runtime.running = False

    def execute(self, round_payload: dict[str, Any], deadline_s: float, report: Progress,
                runtime: RoundRuntime, beacon: str | None = None) -> tuple[JobOrder, list[int], list[dict[str, Any]]]:
        """Run one MPC job for the round and check its attestations; writes no entry.

        `beacon`: the seed of the job's random choices (`vocabulary.beacon`); None draws
        a fresh one (a run), a recorded one repeats its valuation (`round verify`)."""
        order = self._order(round_payload, deadline_s, runtime.attempts, draw_beacon() if beacon is None else beacon)
        report("starting", 0.0, f"job {order.job_id} on {len(self.link.nodes)} nodes")
        reports = self.run_job(order, report)
        report("attesting", 0.95, "checking every node's attestation")
        metrics_micro, attestations, runtime.copies = self._check_attestations(order, reports)
        runtime.stats = _merge_stats(order, reports)
        self._save_stats(round_payload["round_id"], runtime.stats)
        return order, metrics_micro, attestations

    def round_payload(self, round_id: str, *, statuses: tuple[RoundStatus, ...]) -> dict[str, Any]:
        """The round_opened payload of a round whose ledger status is one of `statuses`."""
        record = self.ledger.state.rounds.get(round_id)
        if record is None:
            raise NotFound(f"no round {round_id!r}; open it first (admin round open)")
        if record.status not in statuses:
            raise InvalidInput(f"round {round_id!r} is {record.status}; this needs a round "
                               f"that is {' or '.join(statuses)}")
        return dict(self._opened_entry(round_id).payload)

    def _opened_entry(self, round_id: str) -> Entry:
        return self.ledger.round_opened(round_id)

    def claim(self, round_id: str) -> RoundRuntime:
        """Mark the round running for one run. A sweep looking at it holds it for a moment:
        wait for its decision (it may abort the round; the run then finds it closed)."""
        with self._lock:
            runtime = self._runtime.setdefault(round_id, RoundRuntime())
            runtime.runs_waiting += 1
            try:
                self._looked_at.wait_for(lambda: not runtime.looked_at, timeout=SWEEP_LOOK_WAIT_S)
            finally:
                runtime.runs_waiting -= 1
            if runtime.running:
                raise AlreadyExists(f"round {round_id!r} is already running; wait for it")
            runtime.running = True
            runtime.attempts += 1
            return runtime

    def _order(self, round_payload: dict[str, Any], deadline_s: float, attempt: int, beacon: str) -> JobOrder:
        datasets = self.ledger.state.datasets
        return JobOrder(
            job_id=f"{round_payload['round_id']}-{attempt}-{secrets.token_hex(3)}"[:64],
            round_id=round_payload["round_id"],
            dataset_ids=tuple(round_payload["datasets"]),
            validation_dataset_id=round_payload["validation_dataset"],
            # the ledger form (decimal strings): each node checks this very spec
            # against the digest before it runs (and later signs) the job
            model_spec_json=canonical_json(round_payload["model_spec"]).decode(),
            job_digest=job_digest(round_payload, datasets),
            deadline_s=deadline_s,
            beacon=check_beacon(beacon),
            **self.placement(),
        )

    def placement(self) -> dict[str, Any]:
        """Where a new job's parties meet (JobOrder's world size, rendezvous and data-plane
        fields), for rounds, tournaments and inference alike: one MPC port per node (nodes
        may share a host, as in a local cluster), taken round-robin from this coordinator's
        range; the gRPC plane is the only plane of a cluster job (issue 12)."""
        nodes = self.link.nodes
        with self._lock:
            ports = [self._ports[(self._next_port + i) % len(self._ports)] for i in range(len(nodes))]
            self._next_port += len(ports)
        return dict(
            world_size=len(nodes), master_addr=nodes[0].mpc_host, master_port=ports[0], plane=DEFAULT_PLANE,
            plane_addresses=tuple(_host_port(n.mpc_host, p) for n, p in zip(nodes, ports)),
            plane_members=tuple(n.name for n in nodes),
        )

    def run_job(self, order: JobOrder, report: Progress, poll_s: float = POLL_INTERVAL_S, *,
                stop_dealer_behind: bool = False) -> list[NodeJobReport]:
        """Start `order` on the dealer and every node and wait for it (`mpc_job.run_job`)."""
        return run_job(self.link, order, report, poll_s, stop_dealer_behind=stop_dealer_behind)

    def _check_attestations(
        self, order: JobOrder, reports: list[NodeJobReport],
    ) -> tuple[list[int], list[dict[str, Any]], dict[str, list[int]] | None]:
        """Every node must have signed the same values for this round and job digest:
        the metrics and the copy counts."""
        node_keys = self.ledger.state.nodes
        first: list[int] | None = None
        first_copies: dict[str, list[int]] | None = None
        attestations = []
        for index, r in enumerate(reports):
            try:
                body = json.loads(r.attestation_payload)
                metrics = [int(m) for m in body["metrics_micro"]]
                copies = body.get("copies")
                if copies is not None:
                    copies = check_copies(copies, len(order.dataset_ids))
            except (ValueError, KeyError, TypeError, AttributeError, InvalidInput):
                raise IntegrityError(f"node {index} sent an unreadable attestation") from None
            expected = attestation_message(order.round_id, order.job_digest, metrics, copies, order.beacon)
            if expected != r.attestation_payload:
                raise IntegrityError(f"node {index} attested another round, job digest or beacon")
            key = node_keys.get(index)
            if key is None or not verify_signature(key, expected, r.attestation):
                raise IntegrityError(f"node {index}'s attestation signature does not verify "
                                     "against its registered key")
            if first is None:
                first, first_copies = metrics, copies
            elif metrics != first or copies != first_copies:
                raise IntegrityError(
                    f"nodes disagree on the revealed values (node 0: {first} copies {first_copies}, "
                    f"node {index}: {metrics} copies {copies}); the result is refused and nothing was written")
            attestations.append({"node_index": index, "signature": r.attestation.hex()})
        valuation = str(json.loads(order.model_spec_json).get("valuation", "loo"))
        if first is None or len(first) != revealed_count(valuation, len(order.dataset_ids)):
            raise IntegrityError("the nodes revealed the wrong number of values")
        return first, attestations, first_copies

    def _settle(self, round_payload: dict[str, Any], order: JobOrder, metrics_micro: list[int],
                attestations: list[dict[str, Any]],
                copies: dict[str, list[int]] | None = None) -> list[Entry]:
        round_id = round_payload["round_id"]
        contributions, errors = round_result_micro(
            metrics_micro, round_payload["model_spec"], len(round_payload["datasets"]))
        settlement = self.settlement(round_payload, contributions, errors, copies)
        result: dict[str, Any] = {"round_id": round_id, "job_digest": order.job_digest,
                                  "metrics_micro": metrics_micro, "contributions_micro": contributions,
                                  "attestations": attestations, "beacon": order.beacon}
        if errors is not None:  # Banzhaf: the standard errors the payouts' bands used
            result["errors_micro"] = errors
        if copies is not None:  # copy detection: per dataset, sampled rows that repeat earlier rows
            result["copies"] = copies
        batch: list[tuple[str, dict[str, Any], bytes | None]] = [(EntryKind.ROUND_RESULT, result, None)]
        datasets = self.ledger.state.datasets
        for dataset_id, amount in settlement.slashes.items():
            batch.append((EntryKind.SLASH, {"round_id": round_id, "dataset_id": dataset_id,
                                    "provider_id": datasets[dataset_id]["provider_id"],
                                    "amount": amount}, None))
        for party, amount in settlement.payouts.items():
            batch.append((EntryKind.PAYOUT, {"round_id": round_id, "to": party, "amount": amount}, None))
        batch.append((EntryKind.ROUND_CLOSED, {"round_id": round_id}, None))
        earned = round_earnings(settlement.payouts, round_payload["sponsor"])
        units = units_issued_request("round", round_id, earned)  # the model's owners (issue 16)
        if units is not None:
            batch.append(units)
        return self.ledger.append_many(batch)

    def settlement(self, round_payload: dict[str, Any], contributions: list[int],
                   errors: list[int] | None = None,
                   copies: dict[str, list[int]] | None = None) -> Settlement:
        """The slashes and payouts these contributions earn (stakes as they are now);
        `errors` are their standard errors (Banzhaf), None for none; `copies`, the nodes'
        copy counts, marks datasets that earn nothing (copy_rule)."""
        state = self.ledger.state
        copied = copied_datasets(round_payload["datasets"], copies)
        participants = [
            Participant(dataset_id=d, provider_id=state.datasets[d]["provider_id"],
                        stake=state.stakes.get(d, 0), contribution_micro=c, error_micro=e,
                        is_copy=d in copied)
            for d, c, e in zip(round_payload["datasets"], contributions,
                               errors or [0] * len(contributions), strict=True)
        ]
        return settle(participants, pool=round_payload["pool"], sponsor=round_payload["sponsor"],
                      slash_rate_ppm=round_payload["slash_rate_ppm"],
                      epsilon_micro=round_payload["epsilon_micro"])

    def _save_stats(self, round_id: str, stats: dict[str, Any]) -> None:
        write_atomic(self.state_dir / "stats" / f"{round_id}.json",
                     json.dumps(stats, sort_keys=True).encode())

    # -- reading -------------------------------------------------------------------

    def runtime(self, round_id: str) -> RoundRuntime:
        """What the coordinator knows of a round beyond the ledger (last failure, stats).

        The id is checked against the ledger before it names a file: a caller's string
        (`../x`) never reaches a path."""
        party_id("round_id", round_id)
        if round_id not in self.ledger.state.rounds:
            raise NotFound(f"no round {round_id!r} on the ledger; list rounds to see their ids")
        with self._lock:
            runtime = self._runtime.get(round_id, RoundRuntime())
        if not runtime.stats:
            path = self.state_dir / "stats" / f"{round_id}.json"
            if path.exists():
                runtime.stats = json.loads(path.read_text())
        return runtime


def _merge_stats(order: JobOrder, reports: list[NodeJobReport]) -> dict[str, Any]:
    return {"job_id": order.job_id, "job_digest": order.job_digest,
            "parties": [r.stats for r in reports]}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))



def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
