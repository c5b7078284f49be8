"""How long a node keeps an inference order's query rows and prediction shares.

A node should hold a user's queries and answers (shares of them, but shares all the same)
no longer than the order needs them. Each sweep (`InferenceRetention.sweep`, run every few
seconds by `start`) deletes an order's query share (`ShareStore.remove`, which leaves a
tombstone so the id is never uploaded again) and its `predictions.bin`, and writes
`purged.json` into the job's folder (the reason and time a later fetch is told):

- delivered: `retention_s` (default 60 s, `node serve --inference-retention`) after this
  node last handed the shares to their user, a grace for a fetch whose stream broke;
- failed or cancelled job (the coordinator refunds the fee): at once;
- finished but not fetched: `DELIVERY_WINDOW_S` + `retention_s` after the job finished
  (the coordinator refunded it at `DELIVERY_WINDOW_S`); a delivered order is deleted by
  then too, however often its user fetched it again;
- query rows no job ran on (an order never placed or refused): `DELIVERY_WINDOW_S` +
  `retention_s` after they were stored.

A running job's files are never touched. The job's other files stay: `delivery.json` is
the node's signed delivery, which the coordinator collects to settle the fee; the
worker's log and result hold no rows. No gRPC here.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from mpcnode.jobs import DELIVERY_FILE, JobRunner
from mpcnode.share_store import ShareStore
from mpcnode.worker.inference import PREDICTIONS_FILE
from mpcnode.worker.run import RESULT_FILE, write_atomic
from mutualmind.errors import InvalidInput, MutualMindError, NotFound
from mutualmind.vocabulary.dataset import INFERENCE
from mutualmind.vocabulary.inference import DELIVERY_WINDOW_S, INFERENCE_JOB
from mutualmind.vocabulary.states import JobState

RETENTION_S = 60.0
MAX_RETENTION_S = 86_400.0
PURGED_FILE = "purged.json"
_LOG = logging.getLogger(__name__)


class InferenceRetention:
    """Deletes inference orders' query and prediction shares once they are served."""

    def __init__(self, store: ShareStore, jobs: JobRunner, *, retention_s: float = RETENTION_S,
                 clock: Callable[[], float] = time.time) -> None:
        if not 0 <= retention_s <= MAX_RETENTION_S:
            raise InvalidInput(f"inference retention {retention_s!r} s must be within 0..{MAX_RETENTION_S:.0f}")
        self._store = store
        self._jobs = jobs
        self.retention_s = float(retention_s)
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def interval_s(self) -> float:
        """Sweeps come this often: a quarter of the retention, within 0.5..10 s."""
        return min(10.0, max(0.5, self.retention_s / 4))

    # -- the sweep -----------------------------------------------------------------------

    def sweep(self) -> list[str]:
        """Delete what is due now; returns the order ids whose shares went."""
        now = self._clock()
        orders = {m.dataset_id: _seconds(m.stored_at) for m in self._store.list() if m.purpose == INFERENCE}
        for predictions in self._jobs.jobs_dir.glob(f"*/{PREDICTIONS_FILE}"):
            orders.setdefault(predictions.parent.name, None)
        done = []
        for order_id, stored_at in sorted(orders.items()):
            reason = self._due(order_id, stored_at, now)
            if reason is not None:
                self._purge(order_id, reason, now)
                done.append(order_id)
        return done

    def _due(self, order_id: str, stored_at: float | None, now: float) -> str | None:
        """Why the order's shares go now, or None while they are kept."""
        late = DELIVERY_WINDOW_S + self.retention_s
        try:
            if self._jobs.request_of(order_id).kind != INFERENCE_JOB:
                return None
            state = self._jobs.status(order_id).state
        except (NotFound, InvalidInput):    # no job ran on these query rows
            if stored_at is not None and now - stored_at >= late:
                return f"no order ran on them within {late:.0f} s"
            return None
        if state in (JobState.FAILED, JobState.CANCELLED):
            return f"the job ended without predictions ({state.value}); the coordinator refunds the fee"
        if state != JobState.DONE:
            return None
        folder = self._jobs.jobs_dir / order_id
        delivered = _mtime(folder / DELIVERY_FILE)
        if delivered is not None and now - delivered >= self.retention_s:
            return f"delivered to the user; kept {self.retention_s:.0f} s after the last fetch"
        finished = _mtime(folder / RESULT_FILE)
        if finished is not None and now - finished >= late:
            return f"the job finished {late:.0f} s ago" + ("" if delivered else " and nobody fetched them")
        return None

    def _purge(self, order_id: str, reason: str, now: float) -> None:
        folder = self._jobs.jobs_dir / order_id
        if folder.is_dir():   # the marker first: a fetch after this is told why, never a bare error
            when = datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds")
            write_atomic(folder / PURGED_FILE, json.dumps({"reason": reason, "purged_at": when}).encode())
            (folder / PREDICTIONS_FILE).unlink(missing_ok=True)
        self._store.remove(order_id, reason)
        _LOG.info("order %s: deleted its query and prediction shares (%s)", order_id, reason)

    # -- the thread ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="inference-retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sweep()
            except (MutualMindError, OSError):   # tried again at the next sweep
                _LOG.exception("inference retention sweep failed")


def purge_record(jobs: JobRunner, order_id: str) -> dict[str, str] | None:
    """Why and when the order's shares were deleted here ({reason, purged_at}), or None."""
    try:
        raw = json.loads((jobs.jobs_dir / order_id / PURGED_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    return {"reason": str(raw.get("reason", "")), "purged_at": str(raw.get("purged_at", ""))}


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


def _seconds(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None
