"""MPC rendezvous port ranges for local clusters: one block per cluster, per host.

An MPC job's workers meet on a port of node 0's host taken from the coordinator's
`--mpc-ports` range. Compose deployments use the fixed 29500-29599 (one cluster per
host). Several local clusters on one host must not share a block, and a port being free
*now* says nothing about another idle cluster's range (its ports are bound only while a
job runs), so `cluster up` claims its block in a host registry: one file per claimed
block, `<registry>/<low>-<high>`, naming the data dir that holds it. A claim stands while
that data dir's cluster-state.json records the block (`cluster down` and a failed `up`
remove the state file) or while it is younger than CLAIM_GRACE_S (an `up` in progress);
other claims are stale and reused. The registry is per user in the temp dir
(MUTUALMIND_PORT_REGISTRY overrides it); a block is also bind-checked before it is taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from mutualmind.errors import Unavailable
from mutualmind.transport.cluster_state import load_state

MPC_BLOCK_SIZE = 100
FIRST_MPC_PORT = 29500          # compose's fixed range is the first block
LAST_MPC_PORT = 32767           # below Linux's ephemeral ports (32768-60999)
CLAIM_GRACE_S = 120.0
REGISTRY_ENV = "MUTUALMIND_PORT_REGISTRY"


def registry_dir() -> Path:
    override = os.environ.get(REGISTRY_ENV)
    if override:
        return Path(override)
    return Path(tempfile.gettempdir()) / f"mutualmind-{os.getuid()}-mpc-ports"


def format_range(ports: range) -> str:
    """`29500-29599`, as `coordinator serve --mpc-ports` takes it."""
    return f"{ports.start}-{ports.stop - 1}"


def pick_free_block(host: str, claimed: Iterable[range], *, size: int = MPC_BLOCK_SIZE,
                    first: int = FIRST_MPC_PORT, last: int = LAST_MPC_PORT) -> range:
    """The first block of `size` ports from `first` on that overlaps no `claimed` range
    and whose every port binds on `host` now; Unavailable when none is left."""
    taken = list(claimed)
    for low in range(first, last - size + 2, size):
        block = range(low, low + size)
        if any(block.start < r.stop and r.start < block.stop for r in taken):
            continue
        if _all_bind(host, block):
            return block
    raise Unavailable(f"no free block of {size} MPC ports within {first}-{last} on {host}; "
                      f"stop a cluster (`mutualmind cluster down`) or free ports")


def _all_bind(host: str, block: range) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for port in block:
            sock = socket.socket(family)
            sockets.append(sock)
            sock.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for sock in sockets:
            sock.close()


@contextlib.contextmanager
def _registry_locked() -> Iterator[Path]:
    folder = registry_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(folder / ".lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield folder
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _claim_stands(claim: Path, block: range, now: float) -> bool:
    try:
        holder = Path(claim.read_text(encoding="utf-8").strip())
        if now - claim.stat().st_mtime < CLAIM_GRACE_S:
            return True
        return load_state(holder).mpc_ports == format_range(block)
    except Exception:  # noqa: BLE001 - unreadable claim or state: the claim is stale
        return False


def _parse_claim(name: str) -> range | None:
    try:
        low, high = (int(p) for p in name.split("-"))
    except ValueError:
        return None
    return range(low, high + 1) if low <= high else None


def claim_mpc_ports(data_dir: Path, host: str) -> range:
    """Claim a block for the cluster in `data_dir` (re-claims its own stale block first)."""
    data_dir = Path(data_dir).absolute()
    now = time.time()
    with _registry_locked() as folder:
        claimed: list[range] = []
        for claim in folder.iterdir():
            block = _parse_claim(claim.name)
            if block is None:
                continue
            mine = _read(claim) == str(data_dir)
            if not mine and _claim_stands(claim, block, now):
                claimed.append(block)
            else:
                claim.unlink(missing_ok=True)
        block = pick_free_block(host, claimed)
        (folder / format_range(block)).write_text(f"{data_dir}\n", encoding="utf-8")
        return block


def release_mpc_ports(data_dir: Path) -> None:
    """Drop the claims held by the cluster in `data_dir` (after `cluster down`)."""
    data_dir = Path(data_dir).absolute()
    with _registry_locked() as folder:
        for claim in folder.iterdir():
            if _parse_claim(claim.name) is not None and _read(claim) == str(data_dir):
                claim.unlink(missing_ok=True)


def _read(claim: Path) -> str:
    try:
        return claim.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
