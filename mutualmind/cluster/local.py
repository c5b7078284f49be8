"""A whole cluster as local processes on loopback: `mutualmind cluster up|status|down`.

The embedded default deployment (docker-compose is the other): one dealer, one
coordinator and n nodes, each a detached `python -m mutualmind ... serve` process in its
own session, so `cluster up` returns while they keep serving. Ports are chosen up front
(the coordinator must be told every node's address and the dealer's before any of them
runs), certificates are made on first start, and every member is waited for until its
standard gRPC health service says SERVING. Layout of a data dir::

    certs/               the cluster folder (unless another --certs is given)
    members/<name>/      what each member is started with: only its own keys
    coordinator/         ledger and round state
    node<i>/             node i's shares
    dealer/              the dealer's per-job TTP logs
    logs/<name>.log      each member's stdout and stderr
    cluster-state.json   see `local_state`

The lead's demo and end-to-end tests use `LocalCluster` directly::

    with LocalCluster(tmp / "cluster", nodes=3) as cluster:
        cluster.market_address, cluster.admin_address, cluster.certs_dir ...

grpc is imported only inside the functions that probe health, so the CLI starts fast.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from mutualmind.cluster.local_processes import (
    STOP_GRACE_S,
    free_ports,
    log_tail,
    member_running,
    process_start_time,
    stop_members,
)
from mutualmind.cluster.mpc_ports import claim_mpc_ports, format_range, release_mpc_ports
from mutualmind.errors import (
    AlreadyExists,
    InvalidInput,
    MutualMindError,
    NotFound,
    Unavailable,
)
from mutualmind.transport.atomic_file import write_atomic
from mutualmind.transport.cluster_state import (
    ClusterState,
    MemberProcess,
    MemberStatus,
    load_state,
    state_path,
)
from mutualmind.transport.pki import MANIFEST_NAME, MAX_NODES, MIN_NODES, load_manifest
from mutualmind.vocabulary.quotas import StorageQuota

DEFAULT_NODES = 3
START_TIMEOUT_S = 30.0
ADMIN_MEMBER = "admin"      # the certificate health probes present on cluster ports
HEALTH_POLL_S = 0.1
PORT_ATTEMPTS = 3
LOCK_FILE = ".cluster.lock"

__all__ = ["ClusterState", "LocalCluster", "MemberProcess", "MemberStatus", "load_state",
           "member_statuses"]


class LocalCluster:
    """Start, probe and stop a local cluster kept in `data_dir`.

    `up()` refuses (AlreadyExists) while a cluster from this data dir still runs, and
    leaves no process and no state file behind when any member fails to start. The
    address properties read the state file, so a second `LocalCluster(data_dir)` object
    (or another process) sees the same cluster.
    """

    def __init__(self, data_dir: Path, *, nodes: int = DEFAULT_NODES,
                 certs_dir: Path | None = None, host: str = "127.0.0.1",
                 start_timeout_s: float = START_TIMEOUT_S,
                 python: str = sys.executable,
                 quota: StorageQuota = StorageQuota(),
                 inference_retention_s: float | None = None) -> None:
        self.data_dir = Path(data_dir).absolute()
        # the nodes' `--inference-retention` (None: their default)
        self.inference_retention_s = inference_retention_s
        self.quota = quota  # passed to the coordinator and every node: the same limits
        self.nodes = nodes
        self._certs_dir = Path(certs_dir).absolute() if certs_dir is not None else None
        self.host = host
        self.start_timeout_s = start_timeout_s
        self.python = python
        self.mpc_ports: range | None = None   # claimed at `up` (mpc_ports.claim_mpc_ports)

    # -- reading ---------------------------------------------------------------------

    @property
    def state(self) -> ClusterState:
        return load_state(self.data_dir)

    @property
    def certs_dir(self) -> Path:
        return self._certs_dir or self.data_dir / "certs"

    @property
    def market_address(self) -> str:
        return self.state.market_address

    @property
    def admin_address(self) -> str:
        return self.state.admin_address

    @property
    def node_public_addresses(self) -> list[str]:
        return self.state.node_public_addresses

    def running_members(self) -> list[MemberProcess]:
        """Members of the recorded cluster whose processes are still alive."""
        try:
            state = self.state
        except NotFound:
            return []
        return [m for m in state.members if member_running(m)]

    # -- up --------------------------------------------------------------------------

    def up(self) -> ClusterState:
        """Make certificates if absent, start dealer, coordinator and nodes, wait for health.

        Ports are picked free just before the start; should another process take one in
        between (a member then reports "cannot listen on"), everything started is stopped
        and the start is retried with new ports, up to PORT_ATTEMPTS times.
        """
        self._check_arguments()
        self._check_certs()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            self._check_not_running()
            self._make_certs_if_absent()
            self._write_bundles()
            (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
            self.mpc_ports = claim_mpc_ports(self.data_dir, self.host)
            try:
                for attempt in range(1, PORT_ATTEMPTS + 1):
                    try:
                        return self._start_all()
                    except Unavailable as err:
                        if "cannot listen on" not in err.message or attempt == PORT_ATTEMPTS:
                            raise
            except BaseException:
                release_mpc_ports(self.data_dir)
                raise
        raise AssertionError("unreachable")

    def _start_all(self) -> ClusterState:
        plan = self._plan()
        started: list[MemberProcess] = []
        try:
            for batch in (("dealer", "coordinator"), tuple(f"node{i}" for i in range(self.nodes))):
                for name in batch:
                    started.append(self._spawn(name, plan))
                    self._write_state(started)
                for name in batch:
                    self._wait_serving(next(m for m in started if m.name == name))
        except BaseException:
            stop_members(started, grace_s=2.0)
            state_path(self.data_dir).unlink(missing_ok=True)
            raise
        return self.state

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """One `up` or `down` at a time per data dir (an flock, released on exit)."""
        fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise AlreadyExists(f"another `cluster up` or `cluster down` is working on "
                                    f"{self.data_dir}; wait for it to finish") from None
            yield
        finally:
            os.close(fd)

    def _check_arguments(self) -> None:
        if not isinstance(self.nodes, int) or not MIN_NODES <= self.nodes <= MAX_NODES:
            raise InvalidInput(f"--nodes must be between {MIN_NODES} and {MAX_NODES}, got "
                               f"{self.nodes}: additive sharing needs at least two nodes")
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise InvalidInput(f"{self.data_dir} exists and is not a folder; choose another "
                               "--data-dir")

    def _check_not_running(self) -> None:
        running = self.running_members()
        if running:
            pids = ", ".join(f"{m.name}={m.pid}" for m in running)
            raise AlreadyExists(
                f"a cluster from {self.data_dir} is already running ({pids}); use it, or stop "
                f"it first with `mutualmind cluster down --data-dir {self.data_dir}`")
        state_path(self.data_dir).unlink(missing_ok=True)   # stale: every member is gone

    def _make_certs_if_absent(self) -> None:
        if not (self.certs_dir / MANIFEST_NAME).exists():
            from mutualmind.transport.pki import (  # cryptography: only here
                LOOPBACK_HOSTS,
                create_cluster,
                member_names,
            )

            # each certificate names its own member's host only (all --host, unless a
            # subclass places members elsewhere); loopback hosts are the default
            hosts = {name: (self.member_host(name),) for name, _, _ in member_names(self.nodes)
                     if self.member_host(name) not in LOOPBACK_HOSTS}
            create_cluster(self.certs_dir, self.nodes, hosts=hosts or None)

    def _write_bundles(self) -> None:
        """Each member's own certificate and keys in `members/<name>/`, as in compose."""
        from mutualmind.cluster.bundle import write_bundle

        for name in ("dealer", "coordinator", *(f"node{i}" for i in range(self.nodes))):
            write_bundle(self.certs_dir, name, self.member_certs(name))

    def member_certs(self, name: str) -> Path:
        """The folder member `name` is started with as --certs: only its own keys."""
        return self.data_dir / "members" / name

    def _check_certs(self) -> None:
        """Existing certificates must be for this many nodes (checked before writing)."""
        if not (self.certs_dir / MANIFEST_NAME).exists():
            return
        have = len(load_manifest(self.certs_dir).nodes)
        if have != self.nodes:
            raise InvalidInput(
                f"{self.certs_dir} holds certificates for {have} nodes, not {self.nodes}; "
                f"pass --nodes {have}, or another --data-dir for a new cluster")

    def _plan(self) -> dict[str, dict[str, str]]:
        """Addresses of every member, fixed before anything starts."""
        names = ["dealer", "coordinator"] + [f"node{i}" for i in range(self.nodes)]
        ports = iter(free_ports(1 + 2 * (len(names) - 1), self.host))

        def at(name: str) -> str:
            host = self.member_host(name)
            return f"[{host}]:{next(ports)}" if ":" in host else f"{host}:{next(ports)}"

        plan: dict[str, dict[str, str]] = {"dealer": {"cluster": at("dealer")}}
        for name in names[1:]:
            plan[name] = {"public": at(name), "cluster": at(name)}
        return plan

    # -- placement: where each member runs (one machine, unless a subclass says otherwise) --

    def member_host(self, name: str) -> str:
        """The address member `name` listens on and its certificate names: `--host`.

        A subclass that runs members on hosts of their own (tests/netns_cluster.py: a
        network namespace per member) returns each member's own address."""
        return self.host

    def member_command(self, name: str, argv: list[str]) -> list[str]:
        """The command that starts member `name` from its `argv`: `argv` itself here; a
        subclass may prefix it (e.g. `ip netns exec NS`, which keeps the pid: it execs)."""
        return argv

    def member_argv(self, name: str, plan: dict[str, dict[str, str]]) -> list[str]:
        """The `mutualmind` arguments that start member `name` (without the interpreter)."""
        certs = str(self.member_certs(name))
        if name == "dealer":
            return ["dealer", "serve", "--certs", certs,
                    "--listen", plan["dealer"]["cluster"],
                    "--work-dir", str(self.data_dir / "dealer")]
        if name == "coordinator":
            argv = ["coordinator", "serve", "--certs", certs,
                    "--data-dir", str(self.data_dir / "coordinator"),
                    "--dealer", plan["dealer"]["cluster"],
                    "--public-listen", plan[name]["public"],
                    "--cluster-listen", plan[name]["cluster"]]
            if self.mpc_ports is not None:
                argv += ["--mpc-ports", format_range(self.mpc_ports)]
            for i in range(self.nodes):
                node = plan[f"node{i}"]
                argv += ["--node", f"{node['public']},{node['cluster']}"]
            return argv + self._quota_argv()
        index = int(name.removeprefix("node"))
        return ["node", "serve", "--index", str(index), "--certs", certs,
                "--data-dir", str(self.data_dir / name),
                "--coordinator", plan["coordinator"]["public"],
                "--public-listen", plan[name]["public"],
                "--cluster-listen", plan[name]["cluster"], *self._quota_argv(),
                *([] if self.inference_retention_s is None
                  else ["--inference-retention", repr(float(self.inference_retention_s))])]

    def _quota_argv(self) -> list[str]:
        return ["--node-quota-bytes", str(self.quota.node_bytes),
                "--provider-quota-bytes", str(self.quota.provider_bytes)]

    def _spawn(self, name: str, plan: dict[str, dict[str, str]]) -> MemberProcess:
        argv = self.member_command(name, [self.python, "-m", "mutualmind",
                                           *self.member_argv(name, plan)])
        log_path = self.data_dir / "logs" / f"{name}.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=_python_path())
        with open(log_path, "ab") as log:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True,
                                       close_fds=True, env=env, cwd=self.data_dir)
        role = "node" if name.startswith("node") else name
        return MemberProcess(name=name, role=role, pid=process.pid,
                             start_time=process_start_time(process.pid),
                             addresses=dict(plan[name]), log=str(log_path), argv=argv)

    def _wait_serving(self, member: MemberProcess) -> None:
        """Poll health on every port of `member`; fail fast (with its log) if it exits."""
        deadline = time.monotonic() + self.start_timeout_s
        credentials = member_credentials(self.certs_dir)
        pending = dict(member.addresses)
        state = "UNREACHABLE"
        while pending:
            if not member_running(member):
                raise Unavailable(f"{member.name} exited during start-up; its log "
                                  f"{member.log} ends with:\n{log_tail(Path(member.log))}")
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"{member.name} did not report SERVING on {', '.join(pending.values())} "
                    f"within {self.start_timeout_s:.0f} s (last: {state}); its log {member.log} "
                    f"ends with:\n{log_tail(Path(member.log))}")
            for kind, address in list(pending.items()):
                state = probe(address, credentials[kind], timeout=1.0, server_name=member.name)
                if state == "SERVING":
                    del pending[kind]
            if pending:
                time.sleep(HEALTH_POLL_S)

    def _write_state(self, members: list[MemberProcess]) -> None:
        state = ClusterState(data_dir=self.data_dir, certs_dir=self.certs_dir,
                             nodes=self.nodes, members=tuple(members),
                             mpc_ports=format_range(self.mpc_ports) if self.mpc_ports else "",
                             started_at=dt.datetime.now(dt.timezone.utc).isoformat(
                                 timespec="seconds"))
        write_atomic(state_path(self.data_dir), state.to_json().encode())

    # -- status and down ---------------------------------------------------------------

    def status(self) -> list[MemberStatus]:
        return member_statuses(self.state)

    def down(self, *, grace_s: float = STOP_GRACE_S) -> list[str]:
        """Stop every recorded member (SIGTERM, then SIGKILL); remove the state file.

        Returns the names of the members that were still running. NotFound when no
        cluster was started from this data dir.
        """
        state = self.state
        with self._lock():
            return self._stop(state, grace_s)

    def _stop(self, state: ClusterState, grace_s: float) -> list[str]:
        order = sorted(state.members, key=lambda m: (m.role != "node", m.role == "dealer"))
        stopped = stop_members(order, grace_s=grace_s)
        left = [m.name for m in state.members if member_running(m)]
        if left:
            raise Unavailable(f"{', '.join(left)} still run after SIGKILL; the state file "
                              f"{state_path(self.data_dir)} is kept so you can retry")
        state_path(self.data_dir).unlink(missing_ok=True)
        release_mpc_ports(self.data_dir)
        return stopped

    def __enter__(self) -> LocalCluster:
        self.up()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.down()
        except MutualMindError:
            if exc is None:
                raise


def _python_path() -> str:
    """PYTHONPATH for members: the folder holding this very `mutualmind` package first.

    Members then import the same code as the process that starts them, whatever their
    working directory (an editable install made before a package gained its
    `__init__.py` would otherwise hand them a namespace package).
    """
    root = str(Path(__file__).resolve().parents[2])
    rest = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join(p for p in (root, rest) if p)


def member_credentials(certs_dir: Path) -> dict[str, object]:
    """Client credentials per port kind: none on public ports, admin on cluster ports."""
    from mutualmind.transport import channel_credentials

    return {"public": channel_credentials(certs_dir, None),
            "cluster": channel_credentials(certs_dir, ADMIN_MEMBER)}


def probe(address: str, credentials: object, *, timeout: float, server_name: str) -> str:
    """Health of member `server_name` at `address` (another member there is UNREACHABLE)."""
    from mutualmind.transport import probe_health

    return probe_health(address, credentials, timeout=timeout,  # type: ignore[arg-type]
                        server_name=server_name)


def member_statuses(state: ClusterState, *, timeout: float = 2.0) -> list[MemberStatus]:
    """Process liveness and gRPC health of every member of a recorded cluster."""
    credentials = member_credentials(state.certs_dir)
    statuses = []
    for m in state.members:
        running = member_running(m)
        health = {kind: (probe(address, credentials[kind], timeout=timeout, server_name=m.name)
                         if running
                         else "UNREACHABLE")
                  for kind, address in m.addresses.items()}
        statuses.append(MemberStatus(name=m.name, role=m.role, pid=m.pid, running=running,
                                     health=health, addresses=dict(m.addresses), log=m.log))
    return statuses
