"""Issue 12: a round with the coordinator, the dealer and each node on a host of its own.

Every member runs in its own Linux network namespace with its own address on a bridge
(tests/netns.py), its certificate naming that address and its member name only; the
providers, the sponsor and the admin are this process, on the host. The MPC job runs on
the default gRPC data plane with mutual TLS, so its traffic crosses the bridge.

One test, because each MPC job start costs ~20 s of worker start-up: node1's cable is
cut at the bridge mid-job (packets dropped without a word: no RST, no FIN); the run
fails within its deadline with an error naming node1, writes nothing (no result, no
payout, stakes and pool as they were), and node1's own worker stops by itself naming
a peer. Then the cable is back and the re-run settles exactly as the loopback round of
the same fixture is required to (`assert_settled_like_plaintext`, which
test_round_settlement.py runs on loopback), its MPC bytes having crossed each node's
cable.

The cluster is made and started with docs/operations.md's "Members on several hosts"
commands (tests/netns_cluster.py), one provider shares and stakes from a namespace of
its own with only the coordinator's address and the provider bundle (`RemoteProvider`),
and `test_the_docs_multi_host_commands_are_the_ones_run_here` fails when that section
stops quoting a command as this module runs it.

Skips, saying why, only where namespaces cannot be made (not root, no iproute2).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mutualmind.demo.scenario import Scenario
from mutualmind.demo.session import MarketSession
from mutualmind.transport.pki import load_manifest
from tests.coordinator.rounds.conftest import (
    MINT,
    POOL,
    STAKE,
    Market,
    assert_settled_like_plaintext,
    enrol_in_process,
    ledger_kinds,
    run_in_thread,
    running_market,
    stakes,
)
from tests.netns import Network, network, unavailable_reason
from tests.netns_cluster import (
    NODES,
    PROVIDER,
    NetnsCluster,
    docs_form,
    member_names,
    mutualmind_argv,
)

CUT_DEADLINE_S = 90.0     # the cut run's deadline (workers start in ~20 s on a loaded machine)
STRANDED_S = 30.0         # node1's own worker must stop within this of the cut (keepalive: ~20 s)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with network(member_names()) as net:
        cluster = NetnsCluster(tmp_path_factory.mktemp("netns") / "cluster", net)
        remote = RemoteProvider(cluster)
        with running_market(cluster, enrol=remote.enrol) as market:
            yield market


REMOTE = "provider-2"     # an honest provider of the scenario, on a host of its own


class RemoteProvider:
    """The docs' remote provider: in its own namespace, with only the coordinator's
    public address and the provider bundle (CA + manifest), it registers, shares and
    stakes REMOTE's part with the `mutualmind provider` commands; the others are enrolled
    in process (`enrol_in_process`). `ran` keeps the commands as run, for the docs check."""

    def __init__(self, cluster: NetnsCluster) -> None:
        self.cluster = cluster
        self.folder = cluster.host_dir(PROVIDER)
        self.ran: list[list[str]] = []

    def public(self) -> list[str]:
        return ["--coordinator", self.cluster.market_address, "--certs", "provider-bundle"]

    def run(self, *args: str) -> str:
        done = self.cluster.net.run_in(PROVIDER, ["env", "-C", str(self.folder), *mutualmind_argv(*args)],
                                       capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        self.ran.append(list(args))
        return str(done.stdout)

    def enrol(self, session: MarketSession, part: Any, dataset_id: str, scenario: Scenario) -> Any:
        if part.name != REMOTE:
            return enrol_in_process(session, part, dataset_id, scenario)
        # the operator makes the provider bundle (docs: mkdir ... && cp ...); it travels
        operator = self.cluster.operator
        bundle = ["bash", "-c", PROVIDER_BUNDLE]
        subprocess.run(bundle, cwd=operator, check=True, timeout=30)
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.copytree(operator / "provider-bundle", self.folder / "provider-bundle")
        columns = part.table.schema.columns
        rows = [",".join(repr(float(v)) for v in row[:-1]) + f",{int(row[-1])}" for row in part.table.values]
        (self.folder / "alice.csv").write_text(",".join(columns) + "\n" + "\n".join(rows) + "\n")
        self.run("provider", "keygen", "--key", "alice.key", "--id", part.name)
        self.run("provider", "register", "--key", "alice.key", *self.public())
        from proto import admin_pb2  # the operator's `admin mint`

        session.admin.call(session.admin.admin, "Mint",
                           admin_pb2.MintRequest(provider_id=part.name, amount=MINT, memo="netns"))
        self.run("provider", "share", "--key", "alice.key", *self.public(), "--dataset-id", dataset_id,
                 "--csv", "alice.csv", "--label", scenario.schema.label_column)
        self.run("provider", "stake", "--key", "alice.key", *self.public(), "--dataset-id", dataset_id,
                 "--amount", str(STAKE))
        return self


PROVIDER_BUNDLE = "mkdir -p provider-bundle && cp ops/certs/ca.pem ops/certs/cluster.json provider-bundle/"


def _net(market: Market) -> Network:
    assert isinstance(market.cluster, NetnsCluster)
    return market.cluster.net


def _cable_bytes(net: Network, member: str) -> int:
    """Bytes through `member`'s cable, both ways, as the bridge's end counts them."""
    stats = Path("/sys/class/net") / net.members[member].host_veth / "statistics"
    return sum(int((stats / f"{way}_bytes").read_text()) for way in ("rx", "tx"))


def _wait_until_training(market: Market, round_id: str) -> None:
    """Until every node's worker has taken a training step (the data plane is up)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        done = [json.loads(p.read_text())["done"] for i in range(NODES)
                for p in _job_dirs(market, i, round_id, "progress.json")]
        if len(done) == NODES and min(done) > 0:
            return
        time.sleep(0.1)
    pytest.fail(f"round {round_id}'s workers never took a training step")


def _job_dirs(market: Market, node: int, round_id: str, filename: str) -> list[Path]:
    """Node `node`'s `filename` in each job of the round (read where the node keeps it)."""
    assert isinstance(market.cluster, NetnsCluster)
    return list((market.cluster.node_data_dir(node) / "jobs").glob(f"{round_id}-*/{filename}"))


def _worker_error(market: Market, node: int, round_id: str, within_s: float) -> str:
    """The message node `node`'s worker wrote when it stopped by itself (error.json)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        for path in _job_dirs(market, node, round_id, "error.json"):
            return str(json.loads(path.read_text())["message"])
        time.sleep(0.2)
    pytest.fail(f"node{node}'s worker for {round_id} was still running {within_s:.0f} s after "
                "its link was cut: a silent peer must end the job (data-plane keepalive)")


def test_a_round_across_hosts_fails_on_a_cut_link_and_its_rerun_settles_like_loopback(
        hosts: Market) -> None:
    net = _net(hosts)
    manifest = load_manifest(hosts.cluster.certs_dir)
    for member in hosts.cluster.state.members:
        own = net.address(member.name)
        assert all(a.startswith(f"{own}:") for a in member.addresses.values()), member
        # its certificate names its own host only (and its member name)
        assert manifest.member(member.name).hosts == (own,)
    stakes_before = stakes(hosts)
    sponsor_before = hosts.session.balance("sponsor").balance
    terms = hosts.terms("hosts-1")
    hosts.session.open_round(hosts.sponsor, terms)

    # node1's cable is cut while the MPC job runs (every worker past its first step)
    outcome = run_in_thread(hosts, "hosts-1", deadline_s=CUT_DEADLINE_S)
    _wait_until_training(hosts, "hosts-1")
    net.link_down("node1")
    cut = time.monotonic()
    try:
        outcome["thread"].join(timeout=CUT_DEADLINE_S + 30)
        failed_after_s = time.monotonic() - cut
        # node1's worker, cut off from everyone (no RST, no FIN), stops by itself
        stranded = _worker_error(hosts, 1, "hosts-1", within_s=max(0.0, STRANDED_S - failed_after_s))
        stranded_after_s = time.monotonic() - cut
    finally:
        net.link_up("node1")
    print(f"cut link: the run failed {failed_after_s:.1f} s after the cut ({outcome.get('seconds', 0):.1f} s "
          f"after it started); node1's worker stopped by itself {stranded_after_s:.1f} s after it")

    assert "error" in outcome, f"the run should fail when node1's link is cut: {outcome}"
    assert outcome["seconds"] < CUT_DEADLINE_S, outcome
    message = str(outcome["error"])
    assert "node1" in message or "node 1" in message, message
    # it names a peer it lost: "the data-plane stream with node2 ... broke" where its own
    # keepalive fired first, "the data-plane stream with node2 ... was closed by that
    # member" where the peer's end (the dialer) gave up first
    assert "data-plane stream" in stranded, stranded
    assert any(peer in stranded for peer in ("node0", "node2", "dealer")), stranded
    assert ledger_kinds(hosts, "hosts-1") == ["round_opened"]      # nothing written
    assert stakes(hosts) == stakes_before
    assert hosts.session.balance("sponsor").balance == sponsor_before - POOL  # still locked
    assert hosts.session.get_round("hosts-1").status == "open"

    # the cable is back: the re-run settles exactly as the loopback round must
    before = {f"node{i}": _cable_bytes(net, f"node{i}") for i in range(NODES)}
    view = hosts.session.run_round("hosts-1", deadline_s=300)
    assert_settled_like_plaintext(hosts, terms, view)
    # its MPC traffic crossed each node's cable: at least the bytes that node's party sent
    parties = json.loads(view.stats_json)["parties"]
    assert len(parties) == NODES
    for i, party in enumerate(parties):
        assert _cable_bytes(net, f"node{i}") - before[f"node{i}"] >= party["bytes"] > 100_000, (i, party)
    # the remote provider (its dataset paid or not like the loopback round's) reads it
    shown = _remote(hosts).run("provider", "round-show", "hosts-1", *_remote(hosts).public())
    assert "closed" in shown and f"{REMOTE}-data" in shown, shown


def _remote(market: Market) -> RemoteProvider:
    remote = market.clients[REMOTE]
    assert isinstance(remote, RemoteProvider)
    return remote


# -- docs/operations.md "Members on several hosts" quotes what this module runs -----------

DOCS = Path(__file__).resolve().parents[3] / "docs" / "operations.md"
DOCS_NAMES = {f"{REMOTE}-data": "alice-1", REMOTE: "alice", "hosts-1": "r1"}


def docs_commands() -> list[str]:
    """The section's shell commands: continuation lines joined, comments and blanks gone,
    `$P` expanded as its `P=...` line says, whitespace single."""
    section = DOCS.read_text().split("## Members on several hosts", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    lines = " \n".join(blocks).replace("\\\n", " ").splitlines()
    commands = [" ".join(line.split("#", 1)[0].split()) for line in lines]
    variables = dict(re.findall(r'^(\w+)="([^"]*)"$', "\n".join(commands), flags=re.M))
    return [re.sub(r"\$(\w+)", lambda m: variables[m.group(1)], c) for c in commands if c]


def as_docs_line(args: list[str], net: Network) -> str:
    """A `mutualmind` command as run here, in the docs' names and addresses."""
    line = docs_form(" ".join(["mutualmind", *args]), net)
    for ours, theirs in DOCS_NAMES.items():
        line = line.replace(ours, theirs)
    return re.sub(r"^(mutualmind node serve --index) \d+", r"\1 i", line)


def test_the_docs_multi_host_commands_are_the_ones_run_here(hosts: Market) -> None:
    """Every command the docs' section gives for a member, the operator or the remote
    provider is one this module ran (or runs here: the operator's probes, the SAN)."""
    net, cluster = _net(hosts), hosts.cluster
    assert isinstance(cluster, NetnsCluster)
    operator = cluster.operator
    env = {"MUTUALMIND_COORDINATOR": cluster.admin_address, "MUTUALMIND_MARKET": cluster.market_address,
           "MUTUALMIND_CERTS": "ops/bundles/admin"}
    probe = ["cluster", "probe", "--address", cluster.state.member("node1").addresses["cluster"],
             "--certs", "ops/bundles/admin", "--member", "admin", "--server-name", "node1"]
    for args in (probe, ["admin", "nodes"]):
        done = subprocess.run(mutualmind_argv(*args), cwd=operator, capture_output=True, text=True,
                              timeout=60, env={**os.environ, **env})
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    assert done.stdout.count("SERVING") == NODES, done.stdout
    san = subprocess.run(["openssl", "x509", "-in", "ops/bundles/node1/node1.pem", "-noout", "-ext",
                          "subjectAltName"], cwd=operator, capture_output=True, text=True, check=True)

    docs = docs_commands()
    run_here = [*cluster.ran, *(m.argv[m.argv.index("mutualmind") + 1:] for m in cluster.state.members),
                *_remote(hosts).ran, probe]
    missing = [line for line in (as_docs_line(list(a), net) for a in run_here) if line not in docs]
    assert not missing, f"docs/operations.md does not quote these commands as run: {missing}"
    exports = "export " + " ".join(f"{k}={docs_form(v, net)}" for k, v in env.items())
    for line in (exports, "mutualmind admin nodes", PROVIDER_BUNDLE):
        assert line in docs, line
    # the docs' comment under the openssl line is what it prints for node1's certificate
    assert docs_form(san.stdout.splitlines()[-1].strip(), net) in DOCS.read_text()
    assert "openssl x509 -in ops/bundles/node1/node1.pem -noout -ext subjectAltName" in docs
