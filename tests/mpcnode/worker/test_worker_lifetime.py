"""A job's worker does not outlive its node: SIGKILL the node, the worker goes too.

The "node" here is a real process running a real `JobRunner` over a real share store;
its job loads its shares and waits on the data plane for a peer that never comes (long
deadline). After the node is killed, the kernel's parent-death
signal must end the worker within seconds - no orphan keeps the data plane port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from tests.certs import ClusterCertsFactory
from tests.mpcnode.worker.cluster import REPO, free_port, store_dataset

NODE_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from mutualmind.vocabulary.signing_keys import generate_signing_key
    from mpcnode.jobs import JobRequest, JobRunner
    runner = JobRunner(sys.argv[1], generate_signing_key(), certs_dir=sys.argv[3])
    runner.start(JobRequest(
        job_id="orphan", round_id="r", world_size=2, rank=0, master_addr="127.0.0.1",
        master_port=int(sys.argv[2]), dataset_ids=("a",), validation_dataset_id="v",
        model_spec_json='{"kind": "logistic"}', job_digest=bytes(32), deadline_s=600.0,
        plane_addresses=(f"127.0.0.1:{sys.argv[2]}", f"127.0.0.1:{sys.argv[4]}"),
        plane_members=("node0", "node1")))
    print("started", flush=True)
    time.sleep(600)
    """
)


def _workers_of(spec_path: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(spec_path).encode() in cmdline and b"mpcnode.worker" in cmdline:
            pids.append(int(entry.name))
    return pids


def test_worker_dies_with_its_node(tmp_path: Path, cluster_certs: ClusterCertsFactory) -> None:
    rng = np.random.default_rng(0)
    store_dataset([tmp_path, tmp_path / "other"], "a", rng.normal(size=(20, 3)), rng.integers(0, 2, 20))
    store_dataset([tmp_path, tmp_path / "other"], "v", rng.normal(size=(10, 3)), rng.integers(0, 2, 10), "validation")
    node = subprocess.Popen(
        [sys.executable, "-c", NODE_SCRIPT, str(tmp_path), str(free_port()), str(cluster_certs(2).folder),
         str(free_port())],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert node.stdout is not None and node.stdout.readline().strip() == "started"
        spec_path = tmp_path / "jobs" / "orphan" / "spec.json"
        time.sleep(1.5)  # past loading its shares: now waiting for node1 on the data plane
        assert _workers_of(spec_path), "the worker should be waiting for its peer"
        assert not (tmp_path / "jobs" / "orphan" / "error.json").exists()
        os.kill(node.pid, signal.SIGKILL)
        node.wait(timeout=10)
        end = time.monotonic() + 10
        while _workers_of(spec_path) and time.monotonic() < end:
            time.sleep(0.1)
        assert _workers_of(spec_path) == []
    finally:
        if node.poll() is None:
            node.kill()
