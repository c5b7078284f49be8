"""A whole cluster with every member on a host of its own, made and started as
docs/operations.md "Members on several hosts" says (tests/netns.py's namespaces).

The real `LocalCluster` (health waits, state file and `down`), placed by its hooks, with
what the operator runs by hand there: certificates from `mutualmind cluster certs
--host MEMBER=ADDRESS` and `cluster bundle --all` in an operator folder, each member's
bundle copied to its own host folder as `mm-certs`, and each member started in its
namespace, in its host folder, with the docs' `serve` command (`0.0.0.0` listeners, the
docs' ports: every namespace has its own port space). The test process (the sponsor,
the admin) stays on the host and reaches the members over the bridge, as from another
machine; a remote provider gets a namespace of its own (`PROVIDER`).

`DOCS_ADDRESSES` maps a run's addresses to the docs' (10.0.0.2 coordinator, .3 dealer,
.4-.6 node0-2, .7 the provider): the namespaces get them in that order, so only the
network part differs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from mutualmind.cluster.local import ClusterState, LocalCluster
from tests.netns import Network

NODES = 3
PROVIDER = "provider"              # the remote provider's namespace
DOCS_NETWORK = "10.0.0."           # the docs' addresses: 10.0.0.2 coordinator ... .7 provider
MPC_PORTS = "29500-29599"
PORTS = {"coordinator": {"public": 7001, "cluster": 7002}, "dealer": {"cluster": 7301},
         "node": {"public": 7101, "cluster": 7201}}


def member_names(nodes: int = NODES) -> list[str]:
    """The namespaces, in the docs' address order (the admin is this process, on the host)."""
    return ["coordinator", "dealer", *(f"node{i}" for i in range(nodes)), PROVIDER]


def docs_form(text: str, net: Network) -> str:
    """`text` with this run's network part written as the docs' (10.0.0.x)."""
    return text.replace(str(net.subnet.network_address).rsplit(".", 1)[0] + ".", DOCS_NETWORK)


def mutualmind_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "mutualmind", *args]


class NetnsCluster(LocalCluster):
    """`LocalCluster` with member `name` in `net`'s namespace of that name, set up as the
    docs' multi-host section says (see the module's docstring)."""

    def __init__(self, data_dir: Path, net: Network, *, nodes: int = NODES) -> None:
        data_dir = Path(data_dir).absolute()
        super().__init__(data_dir, nodes=nodes, certs_dir=data_dir / "operator" / "ops" / "certs")
        self.net = net
        self.operator = data_dir / "operator"
        self.ran: list[list[str]] = []     # the operator's commands, as run (`mutualmind` args)

    # -- the operator's machine ----------------------------------------------------------

    def operator_commands(self) -> list[list[str]]:
        """The docs' certificate commands: every member's certificate names its own host."""
        hosts = [arg for name in self.member_order() for arg in ("--host", f"{name}={self.net.address(name)}")]
        return [["cluster", "certs", "--out", "ops/certs", "--nodes", str(self.nodes), *hosts],
                ["cluster", "bundle", "--certs", "ops/certs", "--out", "ops/bundles", "--all"]]

    def up(self) -> ClusterState:
        """Certificates and bundles by the docs' commands, each member's bundle copied to
        its host folder (the docs' `scp -r ops/bundles/node1 node1-host:mm-certs`), then
        the members started (LocalCluster.up)."""
        if not self.certs_dir.exists():
            self.operator.mkdir(parents=True, exist_ok=True)
            for args in self.operator_commands():
                subprocess.run(mutualmind_argv(*args), cwd=self.operator, check=True,
                               capture_output=True, timeout=60)
                self.ran.append(args)
            for name in self.member_order():
                shutil.copytree(self.operator / "ops" / "bundles" / name, self.member_certs(name))
        return super().up()

    def member_order(self) -> list[str]:
        return [n for n in member_names(self.nodes) if n != PROVIDER]

    # -- placement -----------------------------------------------------------------------

    def host_dir(self, name: str) -> Path:
        """Member `name`'s own host folder: where it runs (its relative paths start here)."""
        return self.data_dir / "hosts" / name

    def node_data_dir(self, index: int) -> Path:
        return self.host_dir(f"node{index}") / "node-data"

    def member_certs(self, name: str) -> Path:
        return self.host_dir(name) / "mm-certs"

    def member_host(self, name: str) -> str:
        return self.net.address(name) if name in self.net.members else self.host

    def member_command(self, name: str, argv: list[str]) -> list[str]:
        self.host_dir(name).mkdir(parents=True, exist_ok=True)
        return self.net.command(name, ["env", "-C", str(self.host_dir(name)), *argv])

    def _plan(self) -> dict[str, dict[str, str]]:
        """The docs' fixed ports at each member's own address."""
        return {name: {kind: f"{self.net.address(name)}:{port}"
                       for kind, port in PORTS["node" if name.startswith("node") else name].items()}
                for name in self.member_order()}

    def member_argv(self, name: str, plan: dict[str, dict[str, str]]) -> list[str]:
        """The docs' `serve` commands (relative paths: each runs in its host folder)."""
        def listen(kind: str) -> str:
            return f"0.0.0.0:{plan[name][kind].rsplit(':', 1)[1]}"

        if name == "dealer":
            return ["dealer", "serve", "--certs", "mm-certs", "--listen", listen("cluster"),
                    "--work-dir", "dealer-work"]
        if name == "coordinator":
            nodes = [arg for i in range(self.nodes) for arg in
                     ("--node", f"{plan[f'node{i}']['public']},{plan[f'node{i}']['cluster']}")]
            return ["coordinator", "serve", "--certs", "mm-certs", "--data-dir", "coordinator-data",
                    "--dealer", plan["dealer"]["cluster"], *nodes,
                    "--public-listen", listen("public"), "--cluster-listen", listen("cluster"),
                    "--mpc-ports", MPC_PORTS]
        return ["node", "serve", "--index", name.removeprefix("node"), "--certs", "mm-certs",
                "--data-dir", "node-data", "--coordinator", plan["coordinator"]["public"],
                "--public-listen", listen("public"), "--cluster-listen", listen("cluster")]
