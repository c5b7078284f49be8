"""A whole cluster with every member on a host of its own (tests/netns.py's namespaces).

The real `LocalCluster` (same argv, certificates, bundles, health waits, state file and
`down`), placed by its two hooks: member `name` listens on its namespace's address, its
certificate names that address and its member name only, and it is started with `ip
netns exec <its namespace>`. The test process, the providers and the admin stay on the
host and reach the members over the bridge, as from another machine.
"""

from __future__ import annotations

from pathlib import Path

from mutualmind.cluster.local import LocalCluster
from tests.netns import Network

NODES = 3


def member_names(nodes: int = NODES) -> list[str]:
    """The members that get a namespace (the admin is this process, on the host)."""
    return ["coordinator", "dealer", *(f"node{i}" for i in range(nodes))]


class NetnsCluster(LocalCluster):
    """`LocalCluster` with member `name` in `net`'s namespace of that name."""

    def __init__(self, data_dir: Path, net: Network, *, nodes: int = NODES) -> None:
        super().__init__(data_dir, nodes=nodes)
        self.net = net

    def member_host(self, name: str) -> str:
        return self.net.address(name) if name in self.net.members else self.host

    def member_command(self, name: str, argv: list[str]) -> list[str]:
        return self.net.command(name, argv)
