#!/usr/bin/env python3
"""Benchmark: an MPC job's start with cold workers against ready ones (issue 16, warm).

    python bench/ready_workers.py --json

Three real node job runners (`mpcnode.jobs.JobRunner`) and the dealer's real TTP
sessions run one small job (breast cancer, 2 providers, logistic, 2 epochs, gloo on
loopback) per mode: `cold` (ready_workers 0: every process imports torch and CrypTen
when the job comes) and `warm` (ready_workers 1: the job takes processes that already
did, waited for until every spare is blocked on its stdin). Printed figures per mode:

  first_progress_s   job start -> a node worker's first progress report (slowest node)
  job_wall_s         job start -> every node's job done (the round's MPC part)
  spare_rss_bytes    (warm) resident memory of one idle ready node worker / TTP

Shares come from tests/mpcnode/worker/cluster.py's fixture helper (secrets-split, as a
provider does). Not a timed test: run by hand, one at a time on a loaded machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mpcnode.jobs import PROGRESS_FILE, JobRequest, JobRunner  # noqa: E402
from mpcnode.ttp_sessions import TtpSessions  # noqa: E402
from mutualmind.vocabulary.signing_keys import generate_signing_key  # noqa: E402

NODES = 3


def _blocked_on_stdin(pid: int) -> bool:
    """A spare done preloading: its main thread sleeps (the worker's waits on the reader
    thread, the TTP's reads itself) and a thread of it waits on the stdin pipe."""
    try:
        main = Path(f"/proc/{pid}/wchan").read_text()
        threads = [t.read_text() for t in Path(f"/proc/{pid}/task").glob("*/wchan")]
    except OSError:
        return False
    return ("pipe" in main or "futex" in main) and any("pipe" in t for t in threads)


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run_mode(root: Path, ready: int, job_id: str) -> dict[str, float]:
    from sklearn.datasets import load_breast_cancer

    from tests.mpcnode.worker.cluster import free_port, store_dataset

    dirs = [root / job_id / f"node{i}" for i in range(NODES)]
    x, y = load_breast_cancer(return_X_y=True)
    for p, rows in enumerate(np.array_split(np.arange(300), 2)):
        store_dataset(dirs, f"p{p}", x[rows], y[rows].astype(float))
    store_dataset(dirs, "val", x[450:], y[450:].astype(float), purpose="validation")
    runners = [JobRunner(d, generate_signing_key(), ready_workers=ready) for d in dirs]
    dealer = TtpSessions(root / job_id / "dealer", ready_workers=ready)
    figures: dict[str, float] = {}
    try:
        pools = [r.ready_pool for r in runners] + [dealer.ready_pool]
        if ready:
            end = time.monotonic() + 300
            settled = 0
            while time.monotonic() < end and settled < 5:  # five checks in a row, 1 s
                ok = all(p.pids() and all(_blocked_on_stdin(pid) for pid in p.pids()) for p in pools)
                settled = settled + 1 if ok else 0
                time.sleep(0.2)
            figures["spare_rss_bytes"] = _rss(pools[0].pids()[0])
            figures["spare_ttp_rss_bytes"] = _rss(pools[-1].pids()[0])
        port = free_port()
        started = time.monotonic()
        for rank, runner in enumerate(runners):
            runner.start(JobRequest(
                job_id=job_id, round_id="bench", world_size=NODES, rank=rank, master_addr="127.0.0.1",
                master_port=port, dataset_ids=("p0", "p1"), validation_dataset_id="val",
                model_spec_json='{"kind":"logistic","epochs":2}', job_digest=bytes(32), deadline_s=300.0))
        dealer.start(job_id, NODES, "127.0.0.1", port, 300.0)
        first: dict[int, float] = {}
        while len(first) < NODES and time.monotonic() - started < 300:
            for rank, directory in enumerate(dirs):
                if rank not in first and (directory / "jobs" / job_id / PROGRESS_FILE).exists():
                    first[rank] = time.monotonic() - started
            time.sleep(0.02)
        states = [r.wait(job_id, timeout=300).state for r in runners]
        figures["job_wall_s"] = round(time.monotonic() - started, 3)
        figures["first_progress_s"] = round(max(first.values()), 3) if first else -1.0
        if states != ["done"] * NODES:
            raise SystemExit(f"job {job_id} ended {states}")
        modes = [json.loads((d / "jobs" / job_id / "result.json").read_text())["startup"]["mode"] for d in dirs]
        if modes != ["ready" if ready else "cold"] * NODES:
            raise SystemExit(f"job {job_id} ran on {modes} workers")
    finally:
        for runner in runners:
            runner.close()
        dealer.close()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ready-") as tmp:
        result = {"cold": run_mode(Path(tmp), 0, "cold"), "warm": run_mode(Path(tmp), 1, "warm")}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for mode, figures in result.items():
            print(mode, " ".join(f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
