"""`mutualmind cluster up|status|down` with real member processes on loopback.

The CLI runs as a real subprocess (so `up` must return while the members keep running
detached); the Python API (`LocalCluster`) is exercised for the refusals and for
clean-up after a member fails to start. "Leaves no process" is checked by scanning
/proc for any command line that mentions the test's data dir.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coordinator.cli import parse_port_range
from mutualmind.cluster.local import LocalCluster
from mutualmind.cluster.local_processes import (
    member_running,
    process_start_time,
    stop_members,
)
from mutualmind.cluster.mpc_ports import MPC_BLOCK_SIZE, registry_dir
from mutualmind.errors import AlreadyExists, InvalidInput, NotFound, Unavailable
from mutualmind.transport.cluster_state import (
    STATE_FILE,
    ClusterState,
    MemberProcess,
    load_state,
)
from mutualmind.transport.pki import create_cluster
from tests.certs import ClusterCertsFactory


def mutualmind(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mutualmind", *args], capture_output=True,
                          text=True, timeout=timeout)


def processes_mentioning(text: str) -> list[int]:
    """Pids of live (non-zombie) processes whose command line contains `text`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if text in cmdline and not stat[stat.rfind(")") + 2:].startswith("Z"):
            pids.append(int(entry.name))
    return pids


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("mutualmind: error: "), stderr
    return lines[0]


def test_up_status_refuse_second_up_down(tmp_path: Path) -> None:
    data = tmp_path / "cluster"
    started = time.monotonic()
    up = mutualmind("cluster", "up", "--data-dir", str(data), "--nodes", "3", "--json")
    assert up.returncode == 0, up.stderr
    assert time.monotonic() - started < 30
    state = load_state(data)
    assert [m.name for m in state.members] == ["dealer", "coordinator", "node0", "node1", "node2"]
    assert json.loads(up.stdout)["admin_address"] == state.admin_address
    for member in state.members:
        assert member_running(member), member.name
        assert os.getpgid(member.pid) == member.pid       # detached: leads its own session
        assert Path(member.log).is_file()
    assert (data / "certs" / "cluster.json").is_file()   # fresh certificates were made
    # Its own MPC port block, claimed in the host registry and given to the coordinator.
    mpc = parse_port_range(state.mpc_ports)
    assert len(mpc) == MPC_BLOCK_SIZE and json.loads(up.stdout)["mpc_ports"] == state.mpc_ports
    coordinator = state.member("coordinator")
    cmdline = Path(f"/proc/{coordinator.pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[cmdline.index(b"--mpc-ports") + 1].decode() == state.mpc_ports
    assert (registry_dir() / state.mpc_ports).read_text().strip() == str(data.absolute())
    for member in state.members:                         # each runs with only its own keys
        certs = Path(member.argv[member.argv.index("--certs") + 1])
        own = {f"{member.name}.key"} | ({f"{member.name}.signing.key"} if member.role == "node"
                                        else set())
        assert {p.name for p in certs.glob("*.key")} == own, member.name

    status = mutualmind("cluster", "status", "--data-dir", str(data), "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    assert len(report["members"]) == 5
    assert all(m["running"] and set(m["health"].values()) == {"SERVING"} for m in report["members"])
    table = mutualmind("cluster", "status", "--data-dir", str(data))
    assert table.returncode == 0 and table.stdout.count("SERVING") == 9   # dealer has one port

    probe = ["cluster", "probe", "--address", state.admin_address, "--certs",
             str(state.certs_dir), "--server-name", "coordinator"]
    serving = mutualmind(*probe)
    assert serving.returncode == 0 and "SERVING" in serving.stdout
    no_cert = mutualmind(*probe, "--member", "none")      # the cluster port demands one
    assert no_cert.returncode == 1 and "UNREACHABLE" in no_cert.stdout

    again = mutualmind("cluster", "up", "--data-dir", str(data))
    assert again.returncode == 4
    assert "already running" in one_error_line(again.stderr)
    assert load_state(data).members == state.members     # the running cluster is untouched

    down = mutualmind("cluster", "down", "--data-dir", str(data))
    assert down.returncode == 0, down.stderr
    assert "node0" in down.stdout and "coordinator" in down.stdout
    assert not any(member_running(m) for m in state.members)
    assert processes_mentioning(str(data)) == []
    assert not (data / STATE_FILE).exists()
    assert not (registry_dir() / state.mpc_ports).exists()  # its MPC block is released
    assert (data / "coordinator" / "ledger.db").is_file()   # data is kept
    gone = mutualmind("cluster", "status", "--data-dir", str(data))
    assert gone.returncode == 3 and "cluster up" in one_error_line(gone.stderr)
    again_down = mutualmind("cluster", "down", "--data-dir", str(data))
    assert again_down.returncode == 3


def test_up_with_certificates_for_another_size_refuses_and_writes_nothing(
        tmp_path: Path, cluster_certs: ClusterCertsFactory) -> None:
    certs = cluster_certs(3).folder
    data = tmp_path / "cluster"
    with pytest.raises(InvalidInput, match="3 nodes, not 2"):
        LocalCluster(data, nodes=2, certs_dir=certs).up()
    with pytest.raises(InvalidInput, match="between 2 and 32"):
        LocalCluster(data, nodes=1).up()
    assert not data.exists()


def test_a_member_that_cannot_start_takes_the_others_down(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    create_cluster(certs, 2)
    (certs / "coordinator.key").write_bytes(b"not a key\n")
    data = tmp_path / "cluster"
    with pytest.raises(Unavailable, match="coordinator exited during start-up") as info:
        LocalCluster(data, nodes=2, certs_dir=certs, start_timeout_s=20).up()
    assert "coordinator.log" in info.value.message
    assert not (data / STATE_FILE).exists()
    assert processes_mentioning(str(data)) == []          # the dealer started first is gone


def _detached_python(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _record(process: subprocess.Popen[bytes], name: str) -> MemberProcess:
    return MemberProcess(name=name, role="node", pid=process.pid,
                         start_time=process_start_time(process.pid), addresses={}, log="")


def test_stop_escalates_to_sigkill_and_never_signals_a_recycled_pid(tmp_path: Path) -> None:
    stubborn = _detached_python(
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n")
    bystander = _detached_python("import time; time.sleep(60)")
    try:
        time.sleep(0.5)                                   # let it install the handler
        record = _record(stubborn, "stubborn")
        assert member_running(record)
        # a record with the right pid but another start time is someone else's process
        imposter = MemberProcess(name="old", role="node", pid=bystander.pid,
                                 start_time=(process_start_time(bystander.pid) or 0) + 1,
                                 addresses={}, log="")
        assert not member_running(imposter)
        began = time.monotonic()
        stopped = stop_members([record, imposter], grace_s=0.5)
        assert stopped == ["stubborn"]
        assert time.monotonic() - began >= 0.5            # SIGTERM alone did not do it
        assert not member_running(record)
        with pytest.raises(ProcessLookupError):
            os.kill(stubborn.pid, 0)                      # killed and reaped
        assert bystander.poll() is None                   # left alone
    finally:
        for process in (stubborn, bystander):
            if process.poll() is None:
                process.kill()
                process.wait()


def test_down_with_only_dead_members_just_removes_the_state(tmp_path: Path) -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    record = _record(finished, "node0")
    finished.wait()
    state = ClusterState(data_dir=tmp_path, certs_dir=tmp_path / "certs", nodes=2,
                         members=(record,))
    (tmp_path / STATE_FILE).write_text(state.to_json())
    assert LocalCluster(tmp_path).down() == []
    assert not (tmp_path / STATE_FILE).exists()


def test_state_file_errors_are_typed(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="cluster up"):
        load_state(tmp_path)
    (tmp_path / STATE_FILE).write_text("{not json")
    with pytest.raises(InvalidInput, match="not readable JSON"):
        load_state(tmp_path)
    (tmp_path / STATE_FILE).write_text(json.dumps({"version": 1, "members": [{}]}))
    with pytest.raises(InvalidInput, match="not a valid cluster state file"):
        load_state(tmp_path)


class TakenPortCluster(LocalCluster):
    """A LocalCluster whose first port plan hands node0 a port another process holds —
    what happens when someone grabs a free port between choosing and binding it."""

    def __init__(self, *args: object, taken: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.taken = taken
        self.plans: list[dict[str, dict[str, str]]] = []

    def _plan(self) -> dict[str, dict[str, str]]:
        plan = super()._plan()
        if not self.plans:
            plan["node0"]["public"] = f"127.0.0.1:{self.taken}"
        self.plans.append(plan)
        return plan


def test_a_port_taken_meanwhile_is_retried_with_new_ports(tmp_path: Path) -> None:
    import socket

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    cluster = TakenPortCluster(tmp_path / "cluster", nodes=2, taken=taken)
    try:
        state = cluster.up()
        assert len(cluster.plans) == 2
        assert state.member("node0").addresses["public"] != f"127.0.0.1:{taken}"
        assert all(s.healthy for s in cluster.status())
        assert "cannot listen on" in (tmp_path / "cluster" / "logs" / "node0.log").read_text()
    finally:
        holder.close()
        if (tmp_path / "cluster" / STATE_FILE).exists():
            cluster.down()
    assert processes_mentioning(str(tmp_path / "cluster")) == []


def test_up_refuses_while_another_up_or_down_holds_the_data_dir(tmp_path: Path) -> None:
    import fcntl

    data = tmp_path / "cluster"
    data.mkdir()
    with open(data / ".cluster.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(AlreadyExists, match="another `cluster up` or `cluster down`"):
            LocalCluster(data, nodes=2).up()
    assert not (data / "certs").exists() and not (data / STATE_FILE).exists()
