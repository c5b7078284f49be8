"""Each local cluster claims its own MPC port block (real sockets, a real registry folder)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from mutualmind.cluster.mpc_ports import (
    CLAIM_GRACE_S,
    REGISTRY_ENV,
    claim_mpc_ports,
    format_range,
    pick_free_block,
    release_mpc_ports,
)
from mutualmind.errors import Unavailable
from mutualmind.transport.cluster_state import ClusterState, state_path


@pytest.fixture(autouse=True)
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "registry"
    monkeypatch.setenv(REGISTRY_ENV, str(folder))
    return folder


def overlap(a: range, b: range) -> bool:
    return a.start < b.stop and b.start < a.stop


def test_two_clusters_on_one_host_get_disjoint_blocks(tmp_path: Path, registry: Path) -> None:
    first = claim_mpc_ports(tmp_path / "one", "127.0.0.1")
    second = claim_mpc_ports(tmp_path / "two", "127.0.0.1")
    assert not overlap(first, second)
    assert len(first) == len(second) == 100
    assert {p.name for p in registry.iterdir() if not p.name.startswith(".")} == {
        format_range(first), format_range(second)}
    # The same cluster claiming again (a restart) gets a block, not a second one kept.
    again = claim_mpc_ports(tmp_path / "one", "127.0.0.1")
    assert not overlap(again, second)
    assert len([p for p in registry.iterdir() if not p.name.startswith(".")]) == 2
    release_mpc_ports(tmp_path / "one")
    assert not (registry / format_range(again)).exists()
    assert (registry / format_range(second)).exists()


def test_stale_claim_is_reused_and_live_one_is_not(tmp_path: Path, registry: Path) -> None:
    live_dir, gone_dir = tmp_path / "live", tmp_path / "gone"
    live = claim_mpc_ports(live_dir, "127.0.0.1")
    gone = claim_mpc_ports(gone_dir, "127.0.0.1")
    old = time.time() - CLAIM_GRACE_S - 10
    for block in (live, gone):
        os.utime(registry / format_range(block), (old, old))
    # `live` has a state file recording its block; `gone` was never started (no state).
    live_dir.mkdir()
    state_path(live_dir).write_text(ClusterState(
        data_dir=live_dir, certs_dir=live_dir, nodes=2, members=(),
        mpc_ports=format_range(live)).to_json())
    third = claim_mpc_ports(tmp_path / "third", "127.0.0.1")
    assert third == gone and not overlap(third, live)


def test_a_block_with_a_bound_port_is_skipped() -> None:
    first = pick_free_block("127.0.0.1", [])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", first.start + 7))
        busy.listen()
        picked = pick_free_block("127.0.0.1", [])
    assert not overlap(picked, first)
    with pytest.raises(Unavailable, match="no free block"):
        pick_free_block("127.0.0.1", [range(29500, 29700)], first=29500, last=29699)
