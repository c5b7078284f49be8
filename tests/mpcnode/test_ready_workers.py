"""Ready workers with real processes: real node servers (mutual TLS on loopback), the real
dealer, real CrypTen jobs over the gRPC data plane.

With one ready worker per node (and one ready TTP at the dealer) two jobs run back to
back and each takes a worker that was started before the job: its pid was the pool's
idle spare when the job was asked for, and the worker reports `startup.mode == "ready"`.
(Cold starts are what every other job test runs: the library's default is no spares;
a cold run of this very job to compare metrics with cost the suite ~20 s.) A spare killed
while idle is replaced and the next job still runs on a ready worker; stopping the nodes
and the dealer leaves no worker process behind. The third test: a node process killed
with SIGKILL takes its idle spare with it (parent-death signal).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from coordinator.dealer_client import DealerClient
from mpcnode.dealer_server import RunningDealer, start_dealer
from mpcnode.registry import InMemoryRegistry
from mpcnode.server import NodeConfig, RunningNode, start_node
from mutualmind.transport import channel_credentials, open_channel
from proto import node_pb2, node_pb2_grpc
from tests.certs import ClusterCertsFactory
from tests.mpcnode.worker.cluster import REPO, free_port, job_plane, store_dataset

NODES = 3


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, cluster_certs: ClusterCertsFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("ready")
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(5).permutation(len(x))
    x, y = x[order], y[order].astype(float)
    dirs = [root / f"node{i}" for i in range(NODES)]
    for p, rows in enumerate(np.array_split(np.arange(300), 2)):
        store_dataset(dirs, f"p{p}", x[rows], y[rows])
    store_dataset(dirs, "val", x[450:], y[450:], purpose="validation")
    return cluster_certs(NODES).folder, dirs


def _until(check: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while not check() and time.monotonic() < end:
        time.sleep(0.1)
    return check()


def _children() -> list[int]:
    """This test process's child processes that run an MPC worker or TTP (any state)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"mpcnode.worker" in cmdline:
            found.append(int(entry.name))
    return found


def _run_job(certs: Path, nodes: list[RunningNode], dealer: RunningDealer, job_id: str) -> list[dict[str, object]]:
    """Start `job_id` on every node over NodeControl and at the dealer; each node's result.json."""
    port, plane = free_port(), job_plane(NODES)
    stubs = []
    for node in nodes:
        channel = open_channel(f"127.0.0.1:{node.cluster_port}", channel_credentials(certs, "coordinator"),
                               server_name=node.config.member_name)
        stubs.append(node_pb2_grpc.NodeControlStub(channel))
    for rank, stub in enumerate(stubs):
        stub.StartJob(node_pb2.JobSpec(
            job_id=job_id, round_id="round-r", world_size=NODES, rank=rank, master_addr="127.0.0.1",
            master_port=port, dataset_ids=["p0", "p1"], validation_dataset_id="val",
            model_spec_json='{"kind":"logistic","epochs":2}', job_digest=b"\x05" * 32, deadline_s=120.0,
            plane=plane["plane"], plane_addresses=plane["plane_addresses"], plane_members=plane["plane_members"],
        ), timeout=20)
    with open_channel(f"127.0.0.1:{dealer.port}", channel_credentials(certs, "coordinator"), server_name="dealer") as ch:
        DealerClient(ch).start(job_id, world_size=NODES, master_addr="127.0.0.1", master_port=port, deadline_s=120.0,
                               **plane)  # type: ignore[arg-type]
    statuses = [node.jobs.wait(job_id, timeout=150) for node in nodes if node.jobs is not None]
    assert [s.state for s in statuses] == ["done"] * NODES, [s.message for s in statuses]
    return [json.loads((node.config.data_dir / "jobs" / job_id / "result.json").read_text()) for node in nodes]


def _start(certs: Path, dirs: list[Path], ready: int) -> tuple[list[RunningNode], RunningDealer]:
    nodes = [start_node(NodeConfig(i, dirs[i], certs, ready_workers=ready), InMemoryRegistry()) for i in range(NODES)]
    return nodes, start_dealer(certs, "127.0.0.1:0", dirs[0].parent / f"dealer-{ready}", ready_workers=ready)


def _stop(nodes: list[RunningNode], dealer: RunningDealer) -> None:
    for node in nodes:
        node.stop()
    dealer.stop()


def test_back_to_back_jobs_run_on_ready_workers(world: tuple[Path, list[Path]]) -> None:
    certs, dirs = world
    nodes, dealer = _start(certs, dirs, ready=1)
    pools = [n.jobs.ready_pool for n in nodes if n.jobs is not None] + [dealer.sessions.ready_pool]
    try:
        assert _until(lambda: all(p.stats().idle == 1 for p in pools), 60)
        spares = [p.pids()[0] for p in pools]
        first = _run_job(certs, nodes, dealer, "warm-1")
        assert [r["startup"]["mode"] for r in first] == ["ready"] * NODES  # type: ignore[index]
        assert [r["startup"]["pid"] for r in first] == spares[:NODES]  # type: ignore[index]
        assert len(first[0]["metrics"]) == 3  # type: ignore[arg-type]  # the full model and 2 leave-one-out

        # the pools refilled; a spare killed while idle is replaced before the next job
        assert _until(lambda: all(p.stats().idle == 1 for p in pools), 60)
        victim = pools[0].pids()[0]
        os.killpg(victim, signal.SIGKILL)
        assert _until(lambda: pools[0].stats().died_idle == 1 and pools[0].stats().idle == 1, 60)
        spares = [p.pids()[0] for p in pools]
        assert victim not in spares
        second = _run_job(certs, nodes, dealer, "warm-2")
        assert [r["startup"]["pid"] for r in second] == spares[:NODES]  # type: ignore[index]
        assert not {r["startup"]["pid"] for r in first} & {r["startup"]["pid"] for r in second}  # type: ignore[index]
        assert all(n.jobs is not None and n.jobs.launch_mode("warm-2") == "ready" for n in nodes)
        assert dealer.sessions.ready_stats().taken == 2
        assert [p.stats().taken for p in pools] == [2] * (NODES + 1)
        # the job's log holds the ready worker's whole output; no spare log is left behind
        assert (dirs[0] / "jobs" / "warm-2" / "worker.log").exists()
    finally:
        _stop(nodes, dealer)
    assert _children() == []  # every spare and worker was killed and reaped
    assert list((dirs[0] / "ready-workers").glob("spare-*.log")) == []


NODE_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from mutualmind.vocabulary.signing_keys import generate_signing_key
    from mpcnode.jobs import JobRunner
    runner = JobRunner(sys.argv[1], generate_signing_key(), ready_workers=1)
    while not runner.ready_pool.pids():
        time.sleep(0.05)
    print(runner.ready_pool.pids()[0], flush=True)
    time.sleep(600)
    """
)


def test_an_idle_spare_dies_with_its_node(tmp_path: Path) -> None:
    node = subprocess.Popen([sys.executable, "-c", NODE_SCRIPT, str(tmp_path)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert node.stdout is not None
        spare = int(node.stdout.readline())
        time.sleep(0.5)  # past its prctl(PDEATHSIG), the first thing a spare does
        os.kill(node.pid, signal.SIGKILL)
        node.wait(timeout=10)
        assert _until(lambda: not Path(f"/proc/{spare}").exists(), 20), "the spare outlived its node"
    finally:
        if node.poll() is None:
            node.kill()
