"""The state file of a local cluster: what `cluster up` started and where it listens.

`<data-dir>/cluster-state.json` (not to be confused with the certificate manifest
`certs/cluster.json`) records every member's pid with its kernel start time (so a
recycled pid is never signalled), its addresses and its log path. `cluster status`,
`cluster down` and `mutualmind admin --data-dir` read it; nothing else is needed to find
a local cluster.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mutualmind.errors import InvalidInput, NotFound

STATE_FILE = "cluster-state.json"
STATE_VERSION = 1


@dataclass(frozen=True)
class MemberProcess:
    """One member process as the state file records it.

    `addresses` maps a port kind ("public", "cluster") to host:port; `start_time` is the
    process start time in clock ticks since boot (Linux /proc), None where unknown.
    """

    name: str
    role: str
    pid: int
    start_time: int | None
    addresses: dict[str, str]
    log: str
    argv: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ClusterState:
    """What `cluster up` started, read back by `status`, `down` and `admin --data-dir`."""

    data_dir: Path
    certs_dir: Path
    nodes: int
    members: tuple[MemberProcess, ...]
    started_at: str = ""
    mpc_ports: str = ""     # "LOW-HIGH" passed to `coordinator serve --mpc-ports`

    def member(self, name: str) -> MemberProcess:
        for m in self.members:
            if m.name == name:
                return m
        raise NotFound(f"no member {name!r} in {self.data_dir / STATE_FILE}")

    @property
    def market_address(self) -> str:
        """The coordinator's public Market API (providers, `admin round open`)."""
        return self.member("coordinator").addresses["public"]

    @property
    def admin_address(self) -> str:
        """The coordinator's cluster port, where the Admin API is (mTLS, admin cert)."""
        return self.member("coordinator").addresses["cluster"]

    @property
    def node_public_addresses(self) -> list[str]:
        """Share-upload addresses in node index order (share i goes to node i)."""
        return [self.member(f"node{i}").addresses["public"] for i in range(self.nodes)]

    @property
    def dealer_address(self) -> str:
        return self.member("dealer").addresses["cluster"]

    def to_json(self) -> str:
        return json.dumps({
            "version": STATE_VERSION, "data_dir": str(self.data_dir),
            "certs_dir": str(self.certs_dir), "nodes": self.nodes,
            "started_at": self.started_at, "mpc_ports": self.mpc_ports,
            "members": [asdict(m) for m in self.members],
        }, indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True)
class MemberStatus:
    """What `cluster status` reports for one member."""

    name: str
    role: str
    pid: int
    running: bool
    health: dict[str, str]          # port kind -> SERVING | NOT_SERVING | UNREACHABLE
    addresses: dict[str, str]
    log: str

    @property
    def healthy(self) -> bool:
        return self.running and all(h == "SERVING" for h in self.health.values())


def state_path(data_dir: Path) -> Path:
    return Path(data_dir) / STATE_FILE


def load_state(data_dir: Path) -> ClusterState:
    """Read `<data-dir>/cluster-state.json`; NotFound when no cluster was started there."""
    path = state_path(data_dir)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"no local cluster in {data_dir} ({path.name} is missing); start one "
                       f"with `mutualmind cluster up --data-dir {data_dir}`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InvalidInput(f"{path} is not readable JSON ({err}); stop what runs and "
                           "remove the file") from None
    try:
        if raw["version"] != STATE_VERSION:
            raise ValueError(f"version {raw['version']!r}, expected {STATE_VERSION}")
        members = tuple(MemberProcess(
            name=str(m["name"]), role=str(m["role"]), pid=int(m["pid"]),
            start_time=None if m.get("start_time") is None else int(m["start_time"]),
            addresses={str(k): str(v) for k, v in m["addresses"].items()},
            log=str(m["log"]), argv=[str(a) for a in m.get("argv", [])])
            for m in raw["members"])
        return ClusterState(data_dir=Path(raw["data_dir"]), certs_dir=Path(raw["certs_dir"]),
                            nodes=int(raw["nodes"]), members=members,
                            started_at=str(raw.get("started_at", "")),
                            mpc_ports=str(raw.get("mpc_ports", "")))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InvalidInput(f"{path} is not a valid cluster state file ({err}); stop what "
                           "runs and remove the file") from None
