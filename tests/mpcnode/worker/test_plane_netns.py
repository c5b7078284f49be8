"""Issue 12: a data-plane link whose peer vanishes without a word fails, naming the peer.

Two parties, each in its own network namespace (tests/netns.py) with its own address
and a certificate naming it, join one job over mutual TLS and wait for a tensor. While
the link is merely quiet nothing happens (keepalive pings are answered); once node1's
cable is cut at the bridge (packets dropped: no RST, no FIN, no ICMP) both sides'
links fail within a few keepalive periods with an Unavailable that names the other
member, instead of waiting out the receive timeout. Skips, saying why, only where
namespaces cannot be made.
"""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mutualmind.transport.pki import create_cluster
from tests.mpcnode.worker.cluster import REPO
from tests.netns import network, unavailable_reason

KEEPALIVE_S = 1.0         # production: plane_keepalive.KEEPALIVE_S (10 s)
DEADLINE_S = 60.0         # the job deadline a dropped link would wait for without keepalive
QUIET_S = 6 * KEEPALIVE_S   # more pings than gRPC sends without data by default (2)
PORT = 29500              # each namespace has all its ports to itself


def _ready(process: subprocess.Popen[str], timeout_s: float) -> bool:
    """Whether the party wrote (or closed) its stdout within `timeout_s`."""
    with selectors.DefaultSelector() as selector:
        assert process.stdout is not None
        selector.register(process.stdout, selectors.EVENT_READ)
        return bool(selector.select(timeout_s))


def _line(process: subprocess.Popen[str], timeout_s: float) -> dict[str, Any]:
    """The party's next JSON line (its stdout is line-buffered by print(flush=True))."""
    if not _ready(process, timeout_s):
        pytest.fail(f"no line from the party within {timeout_s:.0f} s")
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, f"the party exited (status {process.wait(timeout=5)}) without a line"
    return dict(json.loads(line))


def test_a_peer_cut_off_silently_fails_the_link_naming_it(tmp_path: Path) -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with network(["node0", "node1"]) as net:
        certs = tmp_path / "certs"
        create_cluster(certs, 2, hosts={m: [net.address(m)] for m in ("node0", "node1")})
        parties = []
        try:
            for rank in (0, 1):
                config = tmp_path / f"party{rank}.json"
                config.write_text(json.dumps({
                    "job_id": "job-cut", "rank": rank, "certs_dir": str(certs),
                    "addresses": [f"{net.address(m)}:{PORT}" for m in ("node0", "node1")],
                    "deadline_s": DEADLINE_S, "keepalive_s": KEEPALIVE_S}))
                parties.append(net.popen(f"node{rank}", [sys.executable, "-m", "tests.mpcnode.worker.plane_waiter",
                                                         str(config)], cwd=REPO, stdout=subprocess.PIPE, text=True))
            assert [_line(p, 60)["joined"] for p in parties] == [True, True]

            time.sleep(QUIET_S)        # quiet, not dead: pings are answered, nobody fails
            early = [_line(p, 0) for p in parties if _ready(p, 0)]
            assert not early, f"a quiet link was dropped: {early}"

            net.link_down("node1")
            cut = time.monotonic()
            ended = [_line(p, DEADLINE_S / 2) for p in parties]
            seconds = time.monotonic() - cut
        finally:
            for process in parties:
                process.kill()
                process.wait(timeout=10)
    print(f"both links failed within {seconds:.1f} s of the cut (keepalive {KEEPALIVE_S} s): {ended}")
    assert [e["error"] for e in ended] == ["Unavailable", "Unavailable"]
    assert "data-plane stream with node1 (rank 1)" in ended[0]["message"]
    assert "data-plane stream with node0 (rank 0)" in ended[1]["message"]
    assert seconds < 10 * KEEPALIVE_S      # not the deadline
