"""Rank 0's rendezvous store listens on the job's address only, never on every interface.

A real worker process (`python -m mpcnode.worker SPEC.json`, rank 0 of 2) loads its
shares and waits at the rendezvous for a peer that never comes; while it waits, the
kernel's table of listening sockets (/proc/net/tcp and tcp6) is read for the job's
master port. The job is given 127.0.0.2 - a loopback address other than the usual one
- so a store bound to "wherever" cannot pass by accident.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from mutualmind.vocabulary.data_plane import BENCH_FLAG, BENCH_PLANE
from tests.mpcnode.worker.cluster import REPO, free_port, store_dataset, worker_spec

JOB_ADDRESS = "127.0.0.2"
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def listeners(port: int) -> list[str]:
    """Local addresses of every socket listening on `port` (IPv4 and IPv6)."""
    found = []
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            address_hex, port_hex = local.split(":")
            if state != LISTEN or int(port_hex, 16) != port:
                continue
            raw = bytes.fromhex(address_hex)
            # the kernel prints each 32-bit word in host (little-endian) order
            words = b"".join(raw[i:i + 4][::-1] for i in range(0, width, 4))
            found.append(str(ipaddress.ip_address(words)))
    return found


def test_rank0_store_listens_on_the_jobs_address_only(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    dirs = [tmp_path / "node0", tmp_path / "node1"]
    store_dataset(dirs, "a", rng.normal(size=(20, 3)), rng.integers(0, 2, 20))
    store_dataset(dirs, "v", rng.normal(size=(10, 3)), rng.integers(0, 2, 10), "validation")
    port = free_port()
    spec = worker_spec("bound", 0, 2, port, dirs[0], tmp_path / "out", ["a"], "v",
                       {"kind": "logistic", "epochs": 1})
    spec["master_addr"] = JOB_ADDRESS
    spec["plane"] = BENCH_PLANE   # the rendezvous is the gloo baseline's (bench mode)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ, PYTHONPATH=str(REPO), MUTUALMIND_DEADLINE_S="60")
    worker = subprocess.Popen([sys.executable, "-m", "mpcnode.worker", BENCH_FLAG, str(spec_path)],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while not seen and time.monotonic() < deadline and worker.poll() is None:
            seen = listeners(port)
            time.sleep(0.05)
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
        assert seen == [JOB_ADDRESS], f"rank 0's store listens on {seen}"
        time.sleep(0.5)  # still waiting for its peer: nothing else opened that port
        assert listeners(port) == [JOB_ADDRESS]
    finally:
        worker.kill()
        worker.wait(timeout=10)
