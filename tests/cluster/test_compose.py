"""docker-compose.yml and Dockerfile: no Docker engine runs here, so check what can be.

The compose file must parse; every service command (and every health check) must be a
valid `mutualmind` invocation by the real argument parser; the services must agree with
each other on addresses, node indices, certificate and data paths; volumes and health
checks must be there. The certs service relies on `cluster certs --if-absent`, whose
keep-what-is-there behaviour is checked for real.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mutualmind.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
NODES = 3
SERVERS = ("dealer", "coordinator", *(f"node{i}" for i in range(NODES)))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def parsed(compose: dict[str, Any]) -> dict[str, argparse.Namespace]:
    """Each service's command, parsed by the real `mutualmind` parser."""
    return {name: parse(mutualmind_argv(service))
            for name, service in compose["services"].items()}


def parse(argv: list[str]) -> argparse.Namespace:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as err:          # argparse's way of refusing
        raise AssertionError(f"not a valid mutualmind invocation: {argv}") from err
    assert callable(args.func), argv
    return args


def mutualmind_argv(service: dict[str, Any]) -> list[str]:
    """The arguments `mutualmind` gets: the image's ENTRYPOINT is ["mutualmind"]."""
    entrypoint = service.get("entrypoint", ["mutualmind"])
    assert entrypoint[0] == "mutualmind", entrypoint
    return [*entrypoint[1:], *service["command"]]


def host_port(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> volume name (with ':ro' kept on the name)."""
    out = {}
    for entry in service["volumes"]:
        volume, path, *mode = entry.split(":")
        out[path] = volume + (":" + mode[0] if mode else "")
    return out


def test_every_service_command_is_a_valid_invocation(parsed: dict[str, argparse.Namespace],
                                                     compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"certs", "bundles", "admin", *SERVERS}
    assert parsed["certs"].cluster_command == "certs" and parsed["certs"].if_absent
    assert parsed["certs"].nodes == NODES
    assert parsed["bundles"].cluster_command == "bundle" and parsed["bundles"].all
    assert parsed["bundles"].certs == parsed["certs"].out
    assert parsed["dealer"].dealer_command == "serve"
    assert parsed["coordinator"].coordinator_command == "serve"
    for i in range(NODES):
        assert parsed[f"node{i}"].node_command == "serve"
        assert parsed[f"node{i}"].index == i
    assert parsed["admin"].admin_command == "nodes"


def test_nodes_and_coordinator_share_one_storage_quota(parsed: dict[str, argparse.Namespace]) -> None:
    """The coordinator refuses registrations the nodes would refuse: same quotas, set."""
    from mutualmind.vocabulary.quotas import StorageQuota

    def quota(name: str) -> StorageQuota:
        args = parsed[name]
        assert args.node_quota and args.provider_quota, f"{name} starts with no explicit quota"
        return StorageQuota.from_sizes(args.node_quota, args.provider_quota)

    expected = quota("coordinator")
    assert expected == StorageQuota()  # the documented defaults
    assert all(quota(f"node{i}") == expected for i in range(NODES))


def test_services_agree_on_addresses(parsed: dict[str, argparse.Namespace]) -> None:
    coordinator = parsed["coordinator"]
    market_port = host_port(coordinator.public_listen)[1]
    assert len(coordinator.node) == NODES
    for i, entry in enumerate(coordinator.node):
        public, cluster = entry.split(",")
        node = parsed[f"node{i}"]
        assert public == f"node{i}:{host_port(node.public_listen)[1]}"
        assert cluster == f"node{i}:{host_port(node.cluster_listen)[1]}"
        assert node.coordinator == f"coordinator:{market_port}"
        assert host_port(node.public_listen)[0] == "0.0.0.0"
    assert coordinator.dealer == f"dealer:{host_port(parsed['dealer'].listen)[1]}"


def test_volumes_keys_stay_with_their_member_and_data_paths(
        compose: dict[str, Any], parsed: dict[str, argparse.Namespace]) -> None:
    services = compose["services"]
    members = ("coordinator", "dealer", "admin", *(f"node{i}" for i in range(NODES)))
    assert set(compose["volumes"]) == {"ca", "ledger",
                                       *(f"{m}-certs" for m in members),
                                       *(f"node{i}-shares" for i in range(NODES))}
    ca_dir = str(parsed["certs"].out)
    assert mounts(services["certs"]) == {ca_dir: "ca"}                  # writable
    bundle_mounts = mounts(services["bundles"])
    assert bundle_mounts.pop(ca_dir) == "ca:ro"
    assert bundle_mounts == {f"{parsed['bundles'].out}/{m}": f"{m}-certs" for m in members}
    for name in (*SERVERS, "admin"):
        certs_path = str(getattr(parsed[name], "certs", None) or
                         services[name]["environment"]["MUTUALMIND_CERTS"])
        assert mounts(services[name])[certs_path] == f"{name}-certs:ro", name
        assert "ca" not in {v.split(":")[0] for v in mounts(services[name]).values()}, name
    assert mounts(services["coordinator"])[str(parsed["coordinator"].data_dir)] == "ledger"
    for i in range(NODES):
        node = f"node{i}"
        assert mounts(services[node])[str(parsed[node].data_dir)] == f"{node}-shares"


def test_health_checks_are_grpc_probes_of_each_servers_own_port(
        compose: dict[str, Any], parsed: dict[str, argparse.Namespace]) -> None:
    for name in SERVERS:
        check = compose["services"][name]["healthcheck"]
        assert check["test"][:2] == ["CMD", "mutualmind"], name
        probe = parse(check["test"][2:])
        assert probe.cluster_command == "probe"
        own_ports = {host_port(getattr(parsed[name], attr))[1]
                     for attr in ("listen", "cluster_listen") if hasattr(parsed[name], attr)}
        assert host_port(probe.address)[1] in own_ports, name
        assert probe.server_name == name and probe.member == name   # its own certificate
        for key in ("interval", "timeout", "retries"):
            assert key in check, (name, key)


def test_start_order_waits_for_certs_and_health(compose: dict[str, Any]) -> None:
    services = compose["services"]

    def waits_for(name: str) -> dict[str, str]:
        return {k: v["condition"] for k, v in services[name].get("depends_on", {}).items()}

    done = "service_completed_successfully"
    assert waits_for("bundles") == {"certs": done}
    assert waits_for("dealer") == {"bundles": done}
    assert waits_for("coordinator") == {"bundles": done, "dealer": "service_healthy"}
    for i in range(NODES):
        assert waits_for(f"node{i}") == {"bundles": done, "coordinator": "service_healthy"}
    assert services["certs"]["restart"] == services["bundles"]["restart"] == "no"
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert all(p.startswith("127.0.0.1:") for p in published)   # loopback only


def test_dockerfile_runs_mutualmind_as_an_unprivileged_user() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r'^ENTRYPOINT \["mutualmind"\]$', text, re.MULTILINE)
    user = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert user and user[-1] not in ("root", "0")
    assert "mkdir -p /ca /certs /data /bundles/coordinator /bundles/dealer /bundles/admin" in text
    assert "mkdir -p /bundles/node$i" in text        # fresh volumes writable for `bundles`
    assert "--no-deps crypten==0.4.1" in text
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    for must in (".git", ".venv", "*.key", "tests"):
        assert must in ignored


def test_certs_if_absent_keeps_an_existing_cluster(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    command = [sys.executable, "-m", "mutualmind", "cluster", "certs", "--out", str(out),
               "--nodes", str(NODES), "--if-absent"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    ca = (out / "ca.pem").read_bytes()
    again = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "kept" in again.stdout
    assert (out / "ca.pem").read_bytes() == ca
    other = subprocess.run([*command[:-2], "2", "--if-absent"], capture_output=True, text=True,
                           timeout=60)
    assert other.returncode == 2 and "3 nodes, not 2" in other.stderr
    assert (out / "ca.pem").read_bytes() == ca
