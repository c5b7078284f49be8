"""A member restarted under a new address is reached by the coordinator's next call.

The compose cluster's failure (issue 17): node1's container was killed mid-round and
started again; podman gave it a new address, and the coordinator's long-lived channel
to `node1`, whose name lookups had been failing while it was down, did not find it in
time: the re-run's StartJob missed its 10 s deadline. Here the same happens on loopback
(tests/transport/member_moves.py, in a private mount namespace with its own /etc/hosts):
the member's name moves from 127.0.0.1 to 127.0.0.2. A plain channel stays stuck on the
old address (gRPC looks a name up again at most every 30 s); a `MemberChannel` reaches
the member at the call after the one that failed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def private_hosts_unavailable() -> str | None:
    """Why a private /etc/hosts cannot be mounted here (None when it can)."""
    if shutil.which("unshare") is None:
        return "a private /etc/hosts needs util-linux's `unshare`, which is not installed"
    if os.geteuid() != 0:
        return "a private /etc/hosts needs root (a mount namespace and a bind mount)"
    return None


def test_a_member_back_under_a_new_address_is_reached_by_the_next_call(
        cluster_dir: Path, tmp_path: Path) -> None:
    reason = private_hosts_unavailable()
    if reason is not None:
        pytest.skip(reason)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n", encoding="utf-8")
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts),
         sys.executable, "-m", "tests.transport.member_moves", str(cluster_dir), str(hosts)],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True,
        timeout=120, check=False)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    plain, member = report["results"]["plain"], report["results"]["member"]
    assert plain[0]["ok"] and member[0]["ok"], report    # before the move

    # The control: grpc's own channel still dials the old address (the bug's mechanism).
    assert not plain[1]["ok"] and not plain[2]["ok"], report
    # The first call after the move fails (the old channel) and leaves a new channel;
    # the next one reaches the member at its new address at once.
    assert not member[1]["ok"], report
    assert member[2]["ok"] and member[2]["seconds"] < 1.5, report
    assert report["renewals"] == 1, report
