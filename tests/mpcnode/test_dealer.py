"""The dealer's control API over real mutual TLS, and `mutualmind dealer serve` as a process.

Only the coordinator (and admins) may drive the dealer; bad requests are typed refusals
that start nothing; a session's TTP process is a real subprocess that StopSession kills.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.dealer_client import DealerClient
from mpcnode.dealer_server import RunningDealer, start_dealer
from mutualmind.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from mutualmind.transport import channel_credentials, open_channel, probe_health
from tests.certs import ClusterCertsFactory
from tests.mpcnode.worker.cluster import REPO, free_port, job_plane


@pytest.fixture(scope="module")
def certs(cluster_certs: ClusterCertsFactory) -> Path:
    return cluster_certs(2).folder


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dealer") / "work"


@pytest.fixture(scope="module")
def dealer(certs: Path, work_dir: Path) -> Iterator[RunningDealer]:
    running = start_dealer(certs, "127.0.0.1:0", work_dir)
    yield running
    running.stop()


def _client(certs: Path, dealer: RunningDealer, name: str) -> DealerClient:
    channel = open_channel(f"127.0.0.1:{dealer.port}", channel_credentials(certs, name), server_name="dealer")
    return DealerClient(channel, timeout_s=10.0)


def test_a_session_runs_a_ttp_process_until_stopped(certs: Path, dealer: RunningDealer, work_dir: Path) -> None:
    client = _client(certs, dealer, "coordinator")
    session = client.start("job-a", world_size=2, master_addr="127.0.0.1", master_port=free_port(), deadline_s=60.0, **job_plane(2))
    assert session.state == "running"
    time.sleep(0.5)
    assert client.status("job-a").state == "running"  # dials its nodes on the data plane
    assert client.stop("job-a").state == "cancelled"
    log = work_dir / "job-a.log"
    assert log.exists()
    with pytest.raises(AlreadyExists):
        client.start("job-a", world_size=2, master_addr="127.0.0.1", master_port=free_port(), deadline_s=60.0, **job_plane(2))


def test_a_session_ends_at_its_deadline(certs: Path, dealer: RunningDealer) -> None:
    client = _client(certs, dealer, "admin")
    client.start("job-late", world_size=2, master_addr="127.0.0.1", master_port=free_port(), deadline_s=1.0, **job_plane(2))
    end = time.monotonic() + 15
    while (state := client.status("job-late").state) == "running" and time.monotonic() < end:
        time.sleep(0.1)
    assert state == "failed"
    assert "deadline" in client.status("job-late").message


def test_nodes_may_not_drive_the_dealer(certs: Path, dealer: RunningDealer) -> None:
    with pytest.raises(PermissionDenied, match="role coordinator or admin"):
        _client(certs, dealer, "node0").start(
            "job-n", world_size=2, master_addr="127.0.0.1", master_port=free_port(), deadline_s=5.0, **job_plane(2)
        )
    with pytest.raises(NotFound):
        _client(certs, dealer, "coordinator").status("job-n")


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"world_size": 1}, "world size"),
        ({"master_addr": "no such host!"}, "master_addr"),
        ({"master_port": 0}, "master_port"),
        ({"deadline_s": -1.0}, "deadline"),
    ],
)
def test_bad_sessions_are_refused(certs: Path, dealer: RunningDealer, fields: dict, fragment: str) -> None:
    request = {"world_size": 2, "master_addr": "127.0.0.1", "master_port": 4000, "deadline_s": 5.0, **job_plane(2), **fields}
    with pytest.raises(InvalidInput, match=fragment):
        _client(certs, dealer, "coordinator").start("job-bad", **request)
    with pytest.raises(NotFound):
        _client(certs, dealer, "coordinator").status("job-bad")


def test_dealer_serve_command_serves_health_until_terminated(certs: Path, tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mutualmind", "dealer", "serve", "--certs", str(certs), "--listen", f"127.0.0.1:{port}",
         "--work-dir", str(tmp_path / "work")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert line.strip() == f"dealer cluster_port={port}"
        credentials = channel_credentials(certs, "coordinator")
        assert probe_health(f"127.0.0.1:{port}", credentials) == "SERVING"
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0


def test_a_dealer_that_comes_up_late_is_waited_for_and_one_that_stays_down_is_named(
    certs: Path, tmp_path: Path
) -> None:
    """A start that cannot reach the dealer is retried for a few seconds (a transient name
    lookup failure must not fail a round), then fails as Unavailable."""
    import threading

    from coordinator.dealer_client import START_RETRY_S
    from mutualmind.errors import Unavailable

    port = free_port()
    channel = open_channel(f"127.0.0.1:{port}", channel_credentials(certs, "coordinator"), server_name="dealer")
    client = DealerClient(channel, timeout_s=10.0)
    late: list[RunningDealer] = []
    starter = threading.Timer(1.5, lambda: late.append(start_dealer(certs, f"127.0.0.1:{port}", tmp_path / "w")))
    starter.start()
    try:
        session = client.start("job-late-dealer", world_size=2, master_addr="127.0.0.1",
                               master_port=free_port(), deadline_s=30.0, **job_plane(2))
        assert session.state == "running" and late
        client.stop("job-late-dealer")
    finally:
        starter.join()
        for running in late:
            running.stop()
    down = open_channel(f"127.0.0.1:{free_port()}", channel_credentials(certs, "coordinator"), server_name="dealer")
    began = time.monotonic()
    with pytest.raises(Unavailable):
        DealerClient(down, timeout_s=10.0).start("job-never", world_size=2, master_addr="127.0.0.1",
                                                  master_port=free_port(), deadline_s=30.0, **job_plane(2))
    assert START_RETRY_S <= time.monotonic() - began < START_RETRY_S + 5
