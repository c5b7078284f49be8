"""Separate hosts on one machine: a Linux bridge and one network namespace per member.

Issue 12's real-process tests (and the WAN bench) run the coordinator, the dealer and
every node as if each had a machine of its own: each member gets a namespace with `lo`
up and one end of a veth pair addressed 10.X.Y.k/24; the other end is a port of a
bridge that also carries 10.X.Y.1, so this process (the host: providers, the admin, the
test) reaches every member, and members reach each other, only through the bridge.
Cutting a member's bridge port (`link_down`) is pulling its cable: its packets are
dropped silently, no RST, no ICMP - what a gRPC stream must survive by keepalive.

Names are unique per run and parallel runs do not clash: every interface and namespace
of a run starts with `mn<pid hex>x<run hex>-`, interface names stay within Linux's 15
characters, and the /24 is drawn at random from 10.64.0.0/10 avoiding every route of
the host. A run always tears down what it made (context manager); a run that crashed
(its pid is gone) leaves names that the next run removes (`remove_leftovers`).

Needs root and iproute2 (`ip netns`, veth, bridge); `unavailable_reason()` says why
not, for a test's skip. No `tc netem` here (this kernel lacks it).
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import random
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

PREFIX = "mn"
_NAME = re.compile(rf"^{PREFIX}([0-9a-f]+)x([0-9a-f]+)-")
_RUNS = itertools.count()
SUBNET_POOL = ipaddress.IPv4Network("10.64.0.0/10")
IP_TIMEOUT_S = 10.0
IFNAMSIZ = 15               # Linux's longest interface name


class NetnsError(RuntimeError):
    """An `ip` command failed: the command and its stderr."""


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here (None when they can): the reason a test skips."""
    if shutil.which("ip") is None:
        return "network namespaces need iproute2's `ip` command, which is not installed"
    if os.geteuid() != 0:
        return "network namespaces, veth pairs and bridges need root (CAP_NET_ADMIN)"
    probe = f"{PREFIX}{os.getpid():x}xfff-probe"     # a name `remove_leftovers` knows
    try:
        _ip("netns", "add", probe)
    except NetnsError as err:
        return f"`ip netns add` failed here: {err}"
    _ip("netns", "del", probe, check=False)
    return None


def _ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S)
    if check and done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class Member:
    """One member's namespace: its name, its address on the bridge, its bridge port."""

    name: str
    namespace: str
    address: str
    host_veth: str      # the bridge's end of the member's cable


@dataclass
class Network:
    """A bridge with one namespace per member; the host is `host_address` on the bridge."""

    run: str
    subnet: ipaddress.IPv4Network
    bridge: str
    host_address: str
    members: dict[str, Member] = field(default_factory=dict)

    def address(self, member: str) -> str:
        return self.members[member].address

    def command(self, member: str, argv: Sequence[str]) -> list[str]:
        """`argv` run inside `member`'s namespace (`ip netns exec` keeps the pid: it execs)."""
        return ["ip", "netns", "exec", self.members[member].namespace, *argv]

    def popen(self, member: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen(self.command(member, argv), **kwargs)

    def run_in(self, member: str, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        return subprocess.run(self.command(member, argv), **kwargs)

    def link_down(self, member: str) -> None:
        """Cut `member`'s cable at the bridge: its traffic is dropped without a word."""
        _ip("link", "set", self.members[member].host_veth, "down")

    def link_up(self, member: str) -> None:
        _ip("link", "set", self.members[member].host_veth, "up")

    def add_member(self, name: str) -> Member:
        index = len(self.members) + 2            # .1 is the host
        namespace = f"{self.run}-{name}"
        host_veth, inner = f"{self.run}-h{index}", f"{self.run}-n{index}"
        if len(inner) > IFNAMSIZ:
            raise NetnsError(f"interface name {inner!r} is longer than Linux's {IFNAMSIZ} characters")
        address = str(self.subnet.network_address + index)
        _ip("netns", "add", namespace)
        member = Member(name, namespace, address, host_veth)
        self.members[name] = member
        _ip("link", "add", host_veth, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", namespace)
        _ip("link", "set", host_veth, "master", self.bridge, "up")
        _ip("-n", namespace, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", inner)
        _ip("-n", namespace, "link", "set", inner, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        return member

    def teardown(self) -> None:
        """Kill what runs in the namespaces, delete them, the veths and the bridge."""
        for member in self.members.values():
            _remove_namespace(member.namespace)
            _ip("link", "del", member.host_veth, check=False)
        _ip("link", "del", self.bridge, check=False)


@contextmanager
def network(members: Sequence[str]) -> Iterator[Network]:
    """A fresh bridge and one namespace per name in `members`; everything goes on exit."""
    remove_leftovers()
    run = f"{PREFIX}{os.getpid():x}x{next(_RUNS):x}"
    subnet = _free_subnet()
    net = Network(run=run, subnet=subnet, bridge=f"{run}-br",
                  host_address=str(subnet.network_address + 1))
    try:
        _ip("link", "add", net.bridge, "type", "bridge")
        _ip("addr", "add", f"{net.host_address}/{subnet.prefixlen}", "dev", net.bridge)
        _ip("link", "set", net.bridge, "up")
        for name in members:
            net.add_member(name)
        yield net
    finally:
        net.teardown()


def remove_leftovers() -> list[str]:
    """Delete namespaces and interfaces of runs whose process is gone; their names."""
    removed = []
    for namespace in _namespaces():
        if _stale(namespace):
            _remove_namespace(namespace)
            removed.append(namespace)
    for link in re.findall(r"^\d+: ([^:@\s]+)", _ip("-o", "link", "show"), flags=re.M):
        if _stale(link):
            _ip("link", "del", link, check=False)
            removed.append(link)
    return removed


def _stale(name: str) -> bool:
    match = _NAME.match(name)
    if match is None:
        return False
    try:
        os.kill(int(match.group(1), 16), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _namespaces() -> list[str]:
    return [line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()]


def _remove_namespace(namespace: str) -> None:
    """SIGKILL every process still in `namespace`, then delete it."""
    for _ in range(50):
        pids = [int(p) for p in _ip("netns", "pids", namespace, check=False).split()]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    _ip("netns", "del", namespace, check=False)


def _free_subnet() -> ipaddress.IPv4Network:
    """A random /24 of SUBNET_POOL that overlaps no address or route the host has."""
    used: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for line in _ip("-4", "-o", "addr", "show").splitlines() + _ip("-4", "route", "show").splitlines():
        for token in re.findall(r"\d+\.\d+\.\d+\.\d+(?:/\d+)?", line):
            used.append(ipaddress.ip_network(token, strict=False))
    candidates = [ipaddress.IPv4Network(s) for s in SUBNET_POOL.subnets(new_prefix=24)]
    for _ in range(100):
        subnet = random.choice(candidates)
        if not any(subnet.overlaps(u) for u in used):
            return subnet
    raise NetnsError(f"no free /24 within {SUBNET_POOL}: every one tried overlaps a host route")
