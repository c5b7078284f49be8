"""The coordinator's side of private inference: hold the fee, run the job, settle or refund.

The model is a closed round's, or a closed tournament's metamodel (the job then carries
the tournament's signed records in the predict phase, `Tournaments.metamodel_order`).
A user secret-shared its query rows to the nodes as a dataset of purpose `inference`
whose id is the order id, then signs an `inference_ordered` payload: the ledger holds the
fee (`ledger.ownership_rules`). This module then runs one MPC job on every node (kind
`inference`, placed like a round's job by `Rounds.placement` and watched by
`Rounds.run_job`); the coordinator never sees a query or a prediction, only the job's
state. When every node reports that it handed its prediction share to the user (each
node's signature over `delivery_message`), the order is `inference_delivered` and the
fee moves to the model's fee account. A failed job, or shares nobody fetched within
`DELIVERY_WINDOW_S`, is `inference_failed`: the fee goes back to the user. Orders still
pending when the coordinator starts are failed (refunded) by `recover`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from coordinator.cluster_link import JobOrder, NodeJobReport
from coordinator.ownership import model_summary
from coordinator.rounds import Rounds
from coordinator.tournaments import Tournaments
from ledger import Ledger
from mutualmind.errors import AlreadyExists, InvalidInput, MutualMindError, NotFound, RuleViolation
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.dataset import INFERENCE
from mutualmind.vocabulary.inference import DELIVERY_WINDOW_S, INFERENCE_JOB, inference_job_digest
from mutualmind.vocabulary.ownership import delivery_message
from mutualmind.vocabulary.signing_keys import verify_signature
from mutualmind.vocabulary.states import EntryKind, RoundStatus, TournamentStatus

_LOG = logging.getLogger(__name__)
# an inference job's deadline (a few seconds of MPC for thousands of rows)
INFERENCE_JOB_S = 300.0
# the pause between two looks at the nodes: a warm one-row job is done in well under a
# second, so the round's 0.25 s would be a large part of the user's wait
JOB_POLL_S = 0.05
RUNNING, READY, DELIVERED, FAILED = "running", "ready", "delivered", "failed"


@dataclass
class OrderStatus:
    """An order as its user watches it (the ledger holds only the counts and the fee)."""

    order_id: str
    model_id: str
    user: str
    rows: int
    fee: int
    state: str = RUNNING
    message: str = ""
    progress: float = 0.0
    ledger_index: int = 0
    stats: dict[str, Any] = field(default_factory=dict)


class InferenceOrders:
    """Places orders and drives their jobs, one thread per order."""

    def __init__(self, ledger: Ledger, rounds: Rounds, *, job_s: float = INFERENCE_JOB_S,
                 delivery_window_s: float = DELIVERY_WINDOW_S, tournaments: Tournaments | None = None) -> None:
        self.ledger = ledger
        self.rounds = rounds
        self.tournaments = tournaments   # None: no metamodel is sold here
        self.job_s = job_s
        self.delivery_window_s = delivery_window_s
        self._lock = threading.Lock()
        self._orders: dict[str, OrderStatus] = {}

    def recover(self) -> list[str]:
        """Refund every order left pending by an earlier run of the coordinator."""
        pending = self.ledger.state.ownership.pending_orders()
        for order in pending:
            self.ledger.append(EntryKind.INFERENCE_FAILED, {
                "order_id": order.order_id, "reason": "the coordinator restarted while the order ran"})
        return [o.order_id for o in pending]

    def place(self, payload: dict[str, Any], signature: bytes) -> OrderStatus:
        """Check the order against the model and its query rows, hold the fee (the ledger
        checks the user's signature, the price, the balance, the nonce and freshness),
        and start its job. Nothing is written when any check fails."""
        order_id, model_id, user = payload["order_id"], payload["model_id"], payload["user"]
        self._check_model(model_id)
        query = self.ledger.state.datasets.get(order_id)
        if query is None or query["purpose"] != INFERENCE:
            raise InvalidInput(f"order {order_id!r} names no shared query rows: share them first "
                               "as a dataset of purpose inference whose id is the order id")
        if query["provider_id"] != user or query["rows"] != payload["rows"]:
            raise InvalidInput(f"the query rows {order_id!r} were shared by {query['provider_id']!r} "
                               f"with {query['rows']} rows; the order says {user!r} and {payload['rows']}")
        with self._lock:
            if order_id in self._orders:
                raise AlreadyExists(f"order {order_id!r} exists; use a new order id")
            entry = self.ledger.append(EntryKind.INFERENCE_ORDERED, payload, provider_signature=signature)
            status = OrderStatus(order_id, model_id, user, int(payload["rows"]), int(payload["fee"]),
                                 ledger_index=entry.index)
            self._orders[order_id] = status
        threading.Thread(target=self._run, args=(status, query), name=f"inference-{order_id}",
                         daemon=True).start()
        return self.view(order_id)

    def _check_model(self, model_id: str) -> None:
        """A closed round's model, or a closed tournament's metamodel (when this coordinator
        runs tournaments); RuleViolation model_not_ready otherwise."""
        summary = model_summary(self.ledger, model_id)
        state = self.ledger.state
        if summary.source_kind == "tournament":
            tournament = state.tournament(summary.source_id)
            if self.tournaments is None or tournament is None or tournament.status != TournamentStatus.CLOSED:
                raise RuleViolation("model_not_ready", f"model {model_id!r} is not a closed tournament's "
                                    "metamodel this coordinator can run")
            label_kind = tournament.opened["task"]["label_kind"]
            if label_kind != "binary":  # the metamodel's answer is one probability per row
                raise RuleViolation("model_not_sellable", f"model {model_id!r} is the metamodel of a {label_kind} "
                                    "tournament; only a binary tournament's metamodel answers queries so far "
                                    "(its models are scored by the resolution, but not sold for inference)")
            return
        record = state.rounds.get(summary.source_id)
        if summary.source_kind != "round" or record is None or record.status != RoundStatus.CLOSED:
            raise RuleViolation("model_not_ready", f"model {model_id!r} is not a closed round's model")

    def view(self, order_id: str) -> OrderStatus:
        with self._lock:
            status = self._orders.get(order_id)
            if status is not None:
                return OrderStatus(**vars(status))
        record = self.ledger.state.ownership.order(order_id)
        if record is None:
            raise NotFound(f"no inference order {order_id!r}")
        return OrderStatus(record.order_id, record.model_id, record.user, record.rows, record.fee,
                           state=DELIVERED if record.status == "delivered" else FAILED, progress=1.0)

    # -- the order's thread ---------------------------------------------------------------

    def _run(self, status: OrderStatus, query: dict[str, Any]) -> None:
        try:
            order = self._job_order(status, query)
            began, first_poll = time.monotonic(), []

            def progress(stage: str, fraction: float, message: str) -> None:
                first_poll.append(time.monotonic())
                self._progress(status, fraction)

            reports = self.rounds.run_job(order, progress, JOB_POLL_S, stop_dealer_behind=True)
            stats = _stats(reports)
            # the coordinator's view: the dealer and every node started (to the first poll
            # of a running job), and the whole job to its last node done
            stats.update(started_s=round((first_poll or [time.monotonic()])[0] - began, 3),
                         job_s=round(time.monotonic() - began, 3))
            self._set(status, state=READY, progress=1.0, stats=stats,
                      message="fetch the prediction shares from every node")
            attestations = self._await_delivery(status, order)
            entry = self.ledger.append(EntryKind.INFERENCE_DELIVERED, {
                "order_id": status.order_id, "model_id": status.model_id, "user": status.user,
                "rows": status.rows, "attestations": attestations})
            self._set(status, state=DELIVERED, ledger_index=entry.index, message="")
        except Exception as err:  # any failure refunds: the user got no predictions
            reason = err.message if isinstance(err, MutualMindError) else f"{type(err).__name__}: {err}"
            _LOG.warning("inference order %s failed: %s", status.order_id, reason)
            try:
                entry = self.ledger.append(EntryKind.INFERENCE_FAILED,
                                           {"order_id": status.order_id, "reason": reason[:300]})
                self._set(status, state=FAILED, ledger_index=entry.index,
                          message=f"{reason[:300]}; the fee went back to {status.user}")
            except MutualMindError as refund_error:
                self._set(status, state=FAILED, message=f"{reason[:300]} (refund: {refund_error.message})")

    def _job_order(self, status: OrderStatus, query: dict[str, Any]) -> JobOrder:
        model_id = status.model_id
        commitments = list(query["share_commitments"])
        if self.ledger.state.ownership.model(model_id).source_kind == "tournament":  # type: ignore[union-attr]
            assert self.tournaments is not None   # _check_model: placed only with tournaments
            records, resolution = self.tournaments.metamodel_order(model_id)
            return JobOrder(job_id=status.order_id, round_id=model_id, dataset_ids=(status.order_id,),
                            validation_dataset_id="", model_spec_json="{}",
                            job_digest=inference_job_digest(status.order_id, model_id, resolution, commitments),
                            deadline_s=self.job_s, kind=INFERENCE_JOB, tournament_json=records,
                            **self.rounds.placement())
        opened = self.ledger.round_opened(model_id).payload
        digest = inference_job_digest(status.order_id, model_id, self.ledger.state.rounds[model_id].job_digest,
                                      commitments)
        return JobOrder(job_id=status.order_id, round_id=model_id, dataset_ids=(status.order_id,),
                        validation_dataset_id="", model_spec_json=canonical_json(opened["model_spec"]).decode(),
                        job_digest=digest, deadline_s=self.job_s, kind=INFERENCE_JOB,
                        **self.rounds.placement())

    def _await_delivery(self, status: OrderStatus, order: JobOrder) -> list[dict[str, Any]]:
        """Every node's signature over the delivery, once each handed its share to the user."""
        message = delivery_message(status.order_id, status.model_id, status.user, status.rows)
        nodes = self.rounds.link.nodes
        keys = self.ledger.state.nodes
        signed: dict[int, bytes] = {}
        deadline = time.monotonic() + self.delivery_window_s
        while len(signed) < len(nodes):
            if time.monotonic() > deadline:
                raise RuleViolation("not_collected", f"the user fetched the predictions from nodes "
                                    f"{sorted(signed)} only within {self.delivery_window_s:.0f} s")
            for node in nodes:
                if node.index in signed:
                    continue
                report = _quiet_report(self.rounds, node.index, order.job_id)
                if report is not None and report.attestation_payload == message \
                        and verify_signature(keys[node.index], message, report.attestation):
                    signed[node.index] = report.attestation
            time.sleep(0.2)
        return [{"node_index": i, "signature": signed[i].hex()} for i in sorted(signed)]

    def _progress(self, status: OrderStatus, fraction: float) -> None:
        self._set(status, progress=max(0.0, min(1.0, (fraction - 0.05) / 0.9)))

    def _set(self, status: OrderStatus, **changes: Any) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(status, name, value)


def order_entry_payload(order_id: str, model_id: str, user: str, rows: int, fee: int,
                        issued_at_ms: int, nonce: str) -> dict[str, Any]:
    """The inference_ordered payload as the user signed it (the servicer's fields)."""
    return {"order_id": order_id, "model_id": model_id, "user": user, "rows": rows, "fee": fee,
            "issued_at_ms": issued_at_ms, "nonce": nonce}


def _quiet_report(rounds: Rounds, index: int, job_id: str) -> NodeJobReport | None:
    try:
        return rounds.link.job_report(index, job_id)
    except MutualMindError:
        return None   # a node that is briefly away is asked again


def _stats(reports: list[NodeJobReport]) -> dict[str, Any]:
    """The job's cost as the nodes report it: communication rounds, bytes, seconds."""
    first = reports[0].stats if reports else {}
    return {"rounds": int(first.get("rounds", 0)), "bytes": int(first.get("bytes", 0)),
            "wall_s": max(float(r.stats.get("wall_s", 0.0)) for r in reports) if reports else 0.0,
            "parties": [json.loads(json.dumps(r.stats)) for r in reports]}
