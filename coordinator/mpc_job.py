"""Running one MPC job on every node and the dealer, for rounds and tournaments alike.

The nodes are started at once and polled together; the first failure ends the wait, and
any failure or deadline cancels the job on every node that started it. Nothing here
writes to the ledger: the caller checks the nodes' attestations and decides.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from coordinator.cluster_link import ClusterLink, JobOrder, NodeJobReport
from mutualmind.errors import Aborted, DeadlineExceeded, Unavailable
from mutualmind.vocabulary.states import JobState

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.25

Progress = Callable[[str, float, str], None]   # (stage, fraction 0..1, message)


def run_job(link: ClusterLink, order: JobOrder, report: Progress,
            poll_s: float = POLL_INTERVAL_S, *, stop_dealer_behind: bool = False) -> list[NodeJobReport]:
    """Start `order` on the dealer and every node, wait until all are done; the reports in
    node order. Aborted (a node failed) or DeadlineExceeded, after cancelling the job.
    `poll_s`: the pause between two looks at the nodes (a short job waits less).
    `stop_dealer_behind`: once every node is done, return at once and stop the dealer's
    session from another thread (a user waits on an inference job's answer, not on the
    dealer's cleanup); a failed job still stops it before the error is raised."""
    nodes = link.nodes
    started: list[int] = []
    deadline = time.monotonic() + order.deadline_s
    # The nodes are asked at once and the first failure ends the wait: when a node's
    # link is cut, its peers report the broken stream within seconds, and that
    # answer must not queue behind the silent node's call deadline.
    pool = ThreadPoolExecutor(max_workers=len(nodes), thread_name_prefix="job-poll")
    dealer_reached, done = True, False
    try:
        try:
            link.start_dealer(order)
        except Unavailable:
            # no byte reached the dealer (coordinator/dealer_client.py): there is no
            # session to stop, and a stop call would only wait out its own retries
            dealer_reached = False
            raise
        # every node at once: each checks the order against the market before it hands
        # the job to a worker, and the parties' plane joins wait for the last to start
        starts = {pool.submit(link.start_job, n.index, order): n.index for n in nodes}
        refusals: list[BaseException] = []
        for start in as_completed(starts):
            try:
                start.result()
                started.append(starts[start])
            except Exception as err:  # every start is waited for, then the first refusal raised
                refusals.append(err)
        if refusals:
            raise refusals[0]
        while True:
            asked = {pool.submit(link.job_report, n.index, order.job_id): i
                     for i, n in enumerate(nodes)}
            answers: dict[int, NodeJobReport] = {}
            for future in as_completed(asked):
                i, r = asked[future], future.result()
                if r.state in (JobState.FAILED, JobState.CANCELLED):
                    # the node's message says whether running the round again can
                    # help (a peer crashed, a deadline) or not (a numeric cause)
                    raise Aborted(f"node {i} {r.state}: {r.message or 'no reason given'}; "
                                  "nothing was written, the round stays open")
                answers[i] = r
            reports = [answers[i] for i in range(len(nodes))]
            if all(r.state == JobState.DONE for r in reports):
                done = True
                return reports
            if time.monotonic() > deadline:
                raise DeadlineExceeded(
                    f"job {order.job_id} passed its {order.deadline_s:.0f}s deadline; nothing "
                    "was written, the round stays open: check the nodes and run it again")
            fraction = min(r.progress for r in reports)
            report("training", 0.05 + 0.9 * fraction, f"nodes at {fraction:.0%}")
            time.sleep(poll_s)
    except BaseException:
        for index in started:
            _quietly(link.cancel_job, index, order.job_id)
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if dealer_reached and done and stop_dealer_behind:
            threading.Thread(target=_quietly, args=(link.stop_dealer, order.job_id),
                             name=f"stop-dealer-{order.job_id}", daemon=True).start()
        elif dealer_reached:
            _quietly(link.stop_dealer, order.job_id)


def _quietly(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception as err:  # cleanup must not hide the error that caused it
        log.warning("cleanup call %s%s failed: %s", getattr(fn, "__name__", fn), args, err)
