"""Processes of a local cluster: free ports, liveness by pid and start time, stopping.

Members run detached, each leading its own session (and so its own process group, which
also holds any MPC worker it spawns). A member is only ever signalled when both its pid
and its kernel start time match the state file, so a pid recycled for someone else's
process is left alone.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from mutualmind.transport.cluster_state import MemberProcess

STOP_GRACE_S = 5.0
LOG_TAIL_LINES = 15


def process_start_time(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot, None if unknown or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()   # the name in (...) may hold spaces
    return int(fields[19]) if len(fields) > 19 else None


def member_running(member: MemberProcess) -> bool:
    """True while this very process (same pid *and* start time) is alive and not a zombie."""
    try:
        os.waitpid(member.pid, os.WNOHANG)          # reap it if it is our exited child
    except ChildProcessError:
        pass
    try:
        os.kill(member.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False                                 # someone else's process now
    try:
        state = Path(f"/proc/{member.pid}/stat").read_text()
    except OSError:
        return member.start_time is None            # no /proc: trust the pid
    if state[state.rfind(")") + 2:].startswith("Z"):
        return False
    return member.start_time is None or process_start_time(member.pid) == member.start_time


def free_ports(count: int, host: str) -> list[int]:
    """`count` distinct free TCP ports on `host` (all held open while choosing)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            sock.bind((host, 0))
            sockets.append(sock)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty log)"


def _signal_group(member: MemberProcess, signum: int) -> None:
    """Signal the member's process group (it leads its own session), then the pid."""
    try:
        os.killpg(member.pid, signum)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(member.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_members(members: list[MemberProcess], *, grace_s: float = STOP_GRACE_S) -> list[str]:
    """SIGTERM every live member, wait up to `grace_s`, then SIGKILL what is left.

    Only processes whose pid and start time match the record are signalled, so a pid
    the kernel gave to someone else since is left alone. Returns the names stopped.
    """
    live = [m for m in members if member_running(m)]
    for member in live:
        _signal_group(member, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(member_running(m) for m in live):
        time.sleep(0.05)
    for member in live:
        if member_running(member) or _group_alive(member.pid):
            _signal_group(member, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and any(member_running(m) for m in live):
        time.sleep(0.05)
    return [m.name for m in live]
