"""Every admin command with `--json` prints JSON lines only, against a real coordinator.

The coordinator is the product's own server (`start_coordinator`: SQLite ledger, Admin and
Market APIs over mutual TLS on loopback); only the MPC nodes are stood in for by
`settled_round.AttestingLink`, which signs fixed metrics with the nodes' real keys from
the cluster folder. Round "r1" is settled once per module; each command then runs as a
real `mutualmind admin ...` subprocess and every stdout line must parse with json.loads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from settled_round import EPSILON_MICRO, METRICS_MICRO, NODES, AttestingLink, settle_round  # noqa: E402

from coordinator.cluster_link import NodeEndpoint  # noqa: E402
from coordinator.round_verify import RERUN_NOISE_MICRO  # noqa: E402
from coordinator.server import CoordinatorConfig, RunningCoordinator, start_coordinator  # noqa: E402
from mutualmind.transport.pki import load_signing_key  # noqa: E402
from mutualmind.vocabulary.signing_keys import save_private_key  # noqa: E402
from tests.certs import ClusterCertsFactory  # noqa: E402


@dataclass
class Served:
    coordinator: RunningCoordinator
    link: AttestingLink
    target: list[str]           # the flags that point `admin` at this coordinator
    sponsor_key: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory,
           cluster_certs: ClusterCertsFactory) -> Iterator[Served]:
    certs = cluster_certs(NODES).folder
    link = AttestingLink([load_signing_key(certs, i) for i in range(NODES)])
    folder = tmp_path_factory.mktemp("admin-json")
    coordinator = start_coordinator(CoordinatorConfig(
        certs_dir=certs, data_dir=folder / "coordinator",
        nodes=tuple(NodeEndpoint(i, f"node{i}", "127.0.0.1:1", "127.0.0.1:1")
                    for i in range(NODES)),
        dealer_address="127.0.0.1:1"), link=link)
    try:
        keys = settle_round(coordinator.ledger, coordinator.rounds)
        sponsor_key = folder / "sponsor.key"
        save_private_key(keys["sponsor"], sponsor_key)
        target = ["--coordinator", f"127.0.0.1:{coordinator.cluster_port}",
                  "--market", f"127.0.0.1:{coordinator.public_port}", "--certs", str(certs)]
        yield Served(coordinator, link, target, sponsor_key)
    finally:
        coordinator.stop(grace=None)


def admin(served: Served, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mutualmind", "admin", *args, *served.target],
                          capture_output=True, text=True, timeout=120)


def json_lines(served: Served, *args: str) -> list[Any]:
    """Run with --json; every stdout line must be one JSON document, nothing else."""
    result = admin(served, *args, "--json")
    assert result.returncode in (0, 1), (args, result.stderr)
    lines = result.stdout.splitlines()
    assert lines, (args, result.stderr)
    return [json.loads(line) for line in lines]


def test_every_json_command_prints_json_lines_only(served: Served, tmp_path: Path) -> None:
    open_r2 = ["round", "open", "--round-id", "r2", "--sponsor-key", str(served.sponsor_key),
               "--sponsor", "sponsor", "--pool", "100", "--validation-dataset", "val-1",
               "--dataset", "a-1", "--dataset", "b-1", "--dataset", "c-1",
               "--model-spec", '{"kind": "logistic", "lr": 1.0}']
    open_r3 = [a if a != "r2" else "r3" for a in open_r2]
    commands = [
        ["nodes"], ["providers"], ["balances"], ["balances", "--provider", "sponsor"],
        ["mint", "--to", "sponsor", "--amount", "5"], ["ledger", "verify"],
        ["round", "list"], ["round", "show", "r1"],
        ["round", "report", "r1", "--png", str(tmp_path / "r1.png")],
        ["round", "verify", "r1"],
        open_r2, ["round", "run", "r2", "--deadline", "30"],
        open_r3, ["round", "abort", "r3", "--reason", "test"],
    ]
    outputs = {" ".join(c[:2]): json_lines(served, *c) for c in commands}
    assert all(len(lines) == 1 for name, lines in outputs.items() if name != "round run")

    shown = outputs["round show"][0]
    assert shown["model_spec"]["lr"] == 0.5               # a number, not the ledger's "0.5"
    report = outputs["round report"][0]
    assert report["round_id"] == "r1" and report["bytes"] == (tmp_path / "r1.png").stat().st_size
    assert outputs["round verify"][0]["agrees"] is True

    run = outputs["round run"]
    progress, final = run[:-1], run[-1]
    assert final["round_id"] == "r2" and final["status"] == "closed"
    assert final["model_spec"]["lr"] == 1.0
    assert progress and all(set(p) == {"stage", "fraction", "message"} for p in progress)
    assert all(a != b for a, b in zip(progress, progress[1:])), progress   # no repeats
    assert outputs["round abort"][0]["status"] == "aborted"


def test_verify_tolerance_is_the_rerun_noise_and_names_datasets(served: Served) -> None:
    """The default tolerance is the larger of epsilon and an honest re-run's fixed-point
    noise (0.005 on log-loss): an honest round agrees, a re-run 0.02 away does not."""
    agreed = json_lines(served, "round", "verify", "r1")[0]
    assert agreed["agrees"] is True and agreed["tolerance_micro"] == max(EPSILON_MICRO, RERUN_NOISE_MICRO)
    assert agreed["datasets"] == ["a-1", "b-1", "c-1"]
    # a re-run 0.02 away on b-1: beyond the noise band
    served.link.metrics_micro = [METRICS_MICRO[0], METRICS_MICRO[1],
                                 METRICS_MICRO[2] - 20_000, METRICS_MICRO[3]]
    try:
        text = admin(served, "round", "verify", "r1")
    finally:
        served.link.metrics_micro = list(METRICS_MICRO)
    assert text.returncode == 1, text.stderr
    assert "DISAGREES" in text.stderr and "tolerance 0.005000" in text.stderr
    rows = [line for line in text.stdout.splitlines() if "b-1" in line]
    assert len(rows) == 1 and "-0.020000" in rows[0]
    assert "dataset #" not in text.stdout
