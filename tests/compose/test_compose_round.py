"""The docker-compose cluster as containers, a whole round through it (podman).

What a user does with the compose file, for real: scripts/podman-setup.sh builds the
image, `podman-compose up` starts certs, bundles, dealer, coordinator and three nodes,
every health check passes; providers on the host register and share to the published
share ports with the CA certificate and manifest taken out of the `ca` volume; a sponsor
opens a round from the host; `admin` commands run through the compose `admin` service.
Then a node container is killed mid-round (the run fails within its deadline, nothing is
written, no token moves), started again, and the round re-runs to a close; finally
`compose down` and `up` keep the ledger and the nodes' shares (volumes). Volumes are
removed at the end, pass or fail.

Marked `compose`: `make test` leaves it out, `make test-compose` (and CI) runs it. It
needs root (or a working podman) and the package index for the image build; when podman
cannot work it fails with the failing command and its output, it is never skipped.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.compose.cluster import (
    MARKET,
    NEVER_CONNECTED,
    NODE_SHARE_PORTS,
    REPO,
    ComposeCluster,
    ComposeError,
    podman_setup,
)

pytestmark = [pytest.mark.compose, pytest.mark.timeout(1500)]

ROWS = 120                     # per provider and for the validation set
FEATURES = 5
MINT = 10_000
STAKE = 1_000
POOL = 3_000
SLASH_RATE_PPM = 500_000
MODEL_SPEC = {"kind": "logistic", "task": "binary", "metric": "log_loss", "epochs": 5}
ROUND_DEADLINE_S = 240


@dataclass
class Market:
    """The running compose cluster and the host-side parties' files."""

    cluster: ComposeCluster
    home: Path                                   # keys, CSVs, the provider's certs folder
    timings: dict[str, float] = field(default_factory=dict)

    def host(self, *args: str, timeout: float = 120,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        """`mutualmind ARGS` on the host (providers, the sponsor), this checkout's code."""
        done = subprocess.run([sys.executable, "-m", "mutualmind", *args], check=False,
                              cwd=self.home, capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))
        if check and done.returncode != 0:
            raise AssertionError(f"mutualmind {' '.join(args)} exited {done.returncode}: "
                                 f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done

    def provider(self, action: str, name: str, *args: str) -> None:
        self.host("provider", action, "--key", f"{name}.key", "--coordinator", MARKET,
                  "--certs", "certs", *args)

    def open_round(self, round_id: str) -> None:
        """The sponsor signs the round terms on the host and sends them to the market."""
        self.host("admin", "round", "open", "--market", MARKET, "--certs", "certs",
                  "--round-id", round_id, "--sponsor-key", "sponsor.key", "--pool", str(POOL),
                  "--validation-dataset", "sponsor-val", "--dataset", "alice-1",
                  "--dataset", "bob-1", "--dataset", "carol-1", "--model-spec", json.dumps(MODEL_SPEC),
                  "--slash-rate-ppm", str(SLASH_RATE_PPM))

    def ledger(self) -> dict[str, Any]:
        report = self.cluster.admin_json("ledger", "verify")
        assert report["ok"], report
        return report

    def balances(self) -> dict[str, Any]:
        return self.cluster.admin_json("balances")

    def round(self, round_id: str) -> dict[str, Any]:
        return self.cluster.admin_json("round", "show", round_id)


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory,
           pytestconfig: pytest.Config) -> Iterator[Market]:
    cluster = ComposeCluster()
    home = tmp_path_factory.mktemp("compose")
    market = Market(cluster, home)
    started = time.monotonic()
    set_up = False
    try:
        market.timings["podman setup + image build"] = podman_setup()
        cluster.down(volumes=True)                  # what an interrupted run left behind
        mark = time.monotonic()
        cluster.up()
        market.timings["compose up"] = time.monotonic() - mark
        market.timings["until every member healthy"] = cluster.wait_healthy()
        mark = time.monotonic()
        enrol(market)
        market.timings["providers enrol and share"] = time.monotonic() - mark
        set_up = True
        yield market
    finally:
        report = [f"compose timing: {step}: {seconds:.1f} s"
                  for step, seconds in market.timings.items()]
        report += [f"compose admin command run again (it never connected): {line}"
                   for line in cluster.admin_reruns]
        podman = shutil.which("podman") is not None     # not when its set-up failed
        if not set_up and podman:     # a failed test's report carries them (conftest.py)
            report += ["compose member logs:", cluster.member_logs()]
        mark = time.monotonic()
        try:
            if podman and not os.environ.get("MM_COMPOSE_KEEP"):   # keep: to read a failed run
                cluster.down(volumes=True)
                left = {kind: names for kind, names in cluster.leftovers().items() if names}
                assert not left, f"compose down --volumes left {left}"
        finally:
            report += [f"compose timing: compose down --volumes: {time.monotonic() - mark:.1f} s",
                       f"compose timing: whole compose test: {time.monotonic() - started:.1f} s"]
            # outside pytest's capture: a passing run shows its timings too
            capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
            reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None and capture is not None:
                with capture.global_and_fixture_disabled():
                    reporter.write_line("")
                    for line in report:
                        reporter.write_line(line)


def enrol(market: Market) -> None:
    """Three providers (alice and carol: clean rows; bob: labels flipped; a round needs at
    least 3 datasets by the default dataset terms) and a sponsor, from the host."""
    market.cluster.provider_certs(market.home / "certs")
    assert {p.name for p in (market.home / "certs").iterdir()} == {"ca.pem", "cluster.json"}
    tables = csv_tables(market.home)
    nodes = [arg for address in NODE_SHARE_PORTS for arg in ("--node", address)]
    for name, dataset, purpose in (("alice", "alice-1", "training"),
                                   ("bob", "bob-1", "training"),
                                   ("carol", "carol-1", "training"),
                                   ("sponsor", "sponsor-val", "validation")):
        market.host("provider", "keygen", "--key", f"{name}.key", "--id", name)
        market.provider("register", name)
        market.cluster.admin("mint", "--to", name, "--amount", str(MINT))
        market.provider("share", name, "--dataset-id", dataset, "--csv", str(tables[name]),
                        "--label", "label", "--purpose", purpose, *nodes)
        if purpose == "training":
            market.provider("stake", name, "--dataset-id", dataset, "--amount", str(STAKE))


def csv_tables(home: Path) -> dict[str, Path]:
    """Standardised breast-cancer rows: alice's and carol's true, bob's labels flipped."""
    from sklearn.datasets import load_breast_cancer  # type: ignore[import-untyped]

    data = load_breast_cancer()
    x = np.asarray(data.data[:, :FEATURES], dtype=np.float64)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    y = np.asarray(data.target, dtype=np.int64)
    order = np.random.default_rng(17).permutation(len(y))
    parts = {"alice": order[:ROWS], "bob": order[ROWS:2 * ROWS],
             "carol": order[2 * ROWS:3 * ROWS], "sponsor": order[3 * ROWS:4 * ROWS]}
    out = {}
    for name, rows in parts.items():
        labels = 1 - y[rows] if name == "bob" else y[rows]
        path = out[name] = home / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow([*(f"x{i}" for i in range(FEATURES)), "label"])
            for features, label in zip(x[rows], labels, strict=True):
                writer.writerow([*(f"{v:.5f}" for v in features), int(label)])
    return out


def run_round(market: Market, round_id: str) -> dict[str, Any]:
    market.cluster.admin("round", "run", round_id, "--json", "--deadline",
                         str(ROUND_DEADLINE_S), timeout=ROUND_DEADLINE_S + 120)
    return market.round(round_id)


def assert_settled(view: dict[str, Any], bob_stake: int) -> None:
    """Bob (flipped labels) is slashed a share of the stake he had when the round ran and
    paid nothing; alice and carol (true labels) share the pool and bob's slash."""
    assert view["status"] == "closed", view
    parts = {p["provider_id"]: p for p in view["participants"]}
    assert set(parts) == {"alice", "bob", "carol"}
    assert {p["rows"] for p in parts.values()} == {ROWS}
    assert parts["bob"]["contribution_micro"] < 0, parts
    slash = bob_stake * SLASH_RATE_PPM // 1_000_000
    assert parts["bob"]["slashed"] == slash > 0 and parts["bob"]["payout"] == 0
    assert parts["alice"]["slashed"] == parts["carol"]["slashed"] == 0
    assert parts["alice"]["payout"] + parts["carol"]["payout"] == POOL + slash, parts
    assert parts["alice"]["payout"] > 0 or parts["carol"]["payout"] > 0
    assert view["refund_to_sponsor"] == 0


def provider_balance(balances: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [row for row in balances["providers"] if row["provider_id"] == name]
    assert len(matches) == 1, balances
    return matches[0]


def test_a_round_through_the_compose_cluster_pays_out_and_its_ledger_verifies(
        market: Market) -> None:
    assert len(wait_until_the_coordinator_sees_every_node(market)) == 3
    before = market.balances()
    market.open_round("r1")
    mark = time.monotonic()
    view = run_round(market, "r1")
    market.timings["round r1 (admin round run through compose)"] = time.monotonic() - mark
    assert_settled(view, bob_stake=STAKE)
    after = market.balances()
    bob = provider_balance(after, "bob")
    slash = STAKE * SLASH_RATE_PPM // 1_000_000
    payouts = {p["provider_id"]: p["payout"] for p in view["participants"]}
    for name in ("alice", "carol"):
        assert provider_balance(after, name)["balance"] == \
            provider_balance(before, name)["balance"] + payouts[name]
    assert bob["balance"] == provider_balance(before, "bob")["balance"]      # slashed from stake
    assert bob["staked"] == STAKE - slash
    assert provider_balance(after, "sponsor")["balance"] == \
        provider_balance(before, "sponsor")["balance"] - POOL
    market.ledger()


def test_a_node_killed_mid_round_fails_the_run_cleanly_and_the_rerun_closes(
        market: Market) -> None:
    market.open_round("r2")
    ledger_before, balances_before = market.ledger(), market.balances()
    started = time.monotonic()
    run = run_until_training(market, "r2")
    try:
        subprocess.run(["podman", "kill", market.cluster.container("node1")], check=True,
                       capture_output=True, timeout=60)
        out, err = run.communicate(timeout=240)
        seconds = time.monotonic() - started
    finally:
        if run.poll() is None:            # a failed step must not leave the run behind
            run.kill()
            run.wait(timeout=30)
    market.timings["failed run after the node kill"] = seconds

    assert run.returncode != 0, f"the run should fail when a node dies: {out}"
    assert seconds < 120 + 60, seconds                     # within the round's deadline
    assert "node" in err.lower() or "unavailable" in err.lower(), err
    assert market.round("r2")["status"] == "open"
    assert market.ledger()["entries"] == ledger_before["entries"]     # nothing written
    assert market.balances() == balances_before                        # no token moved

    if market.cluster.state("node1").get("Status") != "running":
        subprocess.run(["podman", "start", market.cluster.container("node1")], check=True,
                       capture_output=True, timeout=60)
    market.cluster.wait_healthy(("node1",), timeout=120)
    mark = time.monotonic()
    wait_until_the_coordinator_sees_every_node(market)
    market.timings["until the coordinator reaches node1 again"] = time.monotonic() - mark
    assert_settled(run_round(market, "r2"),
                   bob_stake=provider_balance(balances_before, "bob")["staked"])
    market.ledger()


def run_until_training(market: Market, round_id: str) -> subprocess.Popen[str]:
    """`admin round run` started and read until every node's worker runs (stage
    `training`); started once more when its container never connected to the coordinator
    (as `ComposeCluster.admin` does)."""
    for attempt in range(2):
        run = market.cluster.admin_popen("round", "run", round_id, "--json", "--deadline", "120")
        stages = []
        try:
            assert run.stdout is not None
            for line in run.stdout:
                if line.startswith("{") and '"stage"' in line:
                    stages.append(json.loads(line)["stage"])
                    if stages[-1] == "training":
                        return run
            out, err = run.communicate(timeout=60)
        finally:
            if stages[-1:] != ["training"] and run.poll() is None:
                run.kill()
                run.wait(timeout=30)
        if attempt == 0 and not stages and NEVER_CONNECTED in err:
            market.cluster.admin_reruns.append(f"round run {round_id}: {err.strip()[-300:]}")
            continue
        raise AssertionError(f"the round never reached training: {stages} {out} {err}")
    raise AssertionError("unreachable")


def wait_until_the_coordinator_sees_every_node(market: Market,
                                               timeout: float = 120) -> list[dict[str, Any]]:
    """`admin nodes` until every node is SERVING from inside the coordinator, as an
    operator checks before running a round. The coordinator probes each node on a new
    channel; its job channels are renewed before each job (a restarted container has a
    new address, which an old channel could miss for minutes: `MemberChannel`)."""
    deadline = time.monotonic() + timeout
    while True:
        out = market.cluster.admin("nodes", "--json", check=False).stdout
        nodes = json.loads(out) if out.strip() else []
        if nodes and all(n["health"] == "SERVING" for n in nodes):
            return list(nodes)
        assert time.monotonic() < deadline, f"the coordinator never reached every node: {out}"
        time.sleep(2)


def test_compose_down_and_up_keep_the_ledger_and_the_shares(market: Market) -> None:
    ledger_before = market.ledger()
    assert ledger_before["entries"] > 0
    mark = time.monotonic()
    market.cluster.down(volumes=False)
    market.cluster.up()
    market.cluster.wait_healthy()
    market.timings["compose down, up, healthy again"] = time.monotonic() - mark

    ledger_after = market.ledger()
    assert (ledger_after["entries"], ledger_after["root"]) == \
        (ledger_before["entries"], ledger_before["root"])
    assert market.round("r1")["status"] == "closed"
    # The trained model's shares live in the nodes' volumes: the sponsor fetches them.
    market.provider("collect-model", "sponsor", "--round-id", "r1", "--out", "r1-model.json",
                    *(arg for address in NODE_SHARE_PORTS for arg in ("--node", address)))
    model = json.loads((market.home / "r1-model.json").read_text(encoding="utf-8"))
    assert model, "an empty model file"


def test_compose_errors_name_the_failing_command() -> None:
    """The harness's refusal is loud: the command, its exit code and its output."""
    from tests.compose.cluster import run

    with pytest.raises(ComposeError, match=r"(?s)exited 3\n.*stderr: boom"):
        run(["sh", "-c", "echo boom >&2; exit 3"], timeout=10)
