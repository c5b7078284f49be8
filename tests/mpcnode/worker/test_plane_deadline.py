"""A party never waits on the data plane past its job's deadline (issue 12).

Two real party processes join one job over mutual TLS on loopback and wait for a tensor
the other never sends. Node0 has the job's deadline the way a node's runner gives it to
its worker (`MUTUALMIND_DEADLINE_S`, `lifetime`); node1, the silent peer, is alive
throughout - its keepalive pings are answered - so only the deadline can end node0's
wait. It must fail on its own, before the deadline (and its alarm) kill it, with a
DeadlineExceeded naming node1.
Before, a party waited out a fixed 600 s receive timeout, whatever the job's deadline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.certs import ClusterCertsFactory
from tests.mpcnode.worker.cluster import REPO, free_port

DEADLINE_S = 5.0      # from node0's start; it stops waiting MARGIN_MIN_S (1 s) before


def _line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()   # the test's timeout bounds this: node0 ends by its deadline
    assert line, f"the party exited (status {process.wait(timeout=5)}) without a line"
    return line


def test_a_party_waiting_on_a_silent_peer_fails_by_the_job_deadline_naming_it(
        tmp_path: Path, cluster_certs: ClusterCertsFactory) -> None:
    certs = cluster_certs(2).folder
    addresses = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    parties = []
    try:
        for rank in (0, 1):
            config = {"job_id": "job-stuck", "rank": rank, "certs_dir": str(certs), "addresses": addresses,
                      "keepalive_s": 1.0}
            env = dict(os.environ, OMP_NUM_THREADS="1")
            if rank == 0:
                env["MUTUALMIND_DEADLINE_S"] = str(DEADLINE_S)
            else:
                config["deadline_s"] = 10 * DEADLINE_S     # outlives node0's wait
            path = tmp_path / f"party{rank}.json"
            path.write_text(json.dumps(config))
            parties.append(subprocess.Popen([sys.executable, "-m", "tests.mpcnode.worker.plane_waiter", str(path)],
                                            cwd=REPO, env=env, stdout=subprocess.PIPE, text=True))
        joined = [json.loads(_line(p)) for p in parties]
        waited = json.loads(_line(parties[0]))   # how node0's wait ended
    finally:
        for process in parties:
            process.kill()
            process.wait(timeout=10)
    assert joined == [{"joined": True}, {"joined": True}]
    assert waited["error"] == "DeadlineExceeded", waited
    assert waited["message"].startswith("node1 (rank 1) had not sent what this party waited for")
    assert f"by the job's deadline of {DEADLINE_S:g} s" in waited["message"]
    # on its own: after the keepalive would have ended a dead link (node1 is alive), before the deadline
    assert DEADLINE_S - 2.0 < waited["started_s"] < DEADLINE_S, waited
