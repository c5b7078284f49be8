"""Per-member bundles: a member's folder holds its own keys and nothing else secret."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mutualmind.cluster.bundle import write_bundle
from mutualmind.errors import InvalidInput, NotFound
from mutualmind.transport import (
    build_server,
    channel_credentials,
    probe_health,
    server_credentials,
)
from tests.certs import ClusterCertsFactory


@pytest.fixture(scope="module")
def certs(cluster_certs: ClusterCertsFactory) -> Path:
    return cluster_certs(2).folder


def test_node_bundle_has_only_its_own_keys_with_private_modes(certs: Path, tmp_path: Path) -> None:
    files = write_bundle(certs, "node1", tmp_path / "node1")
    assert files == ["ca.pem", "cluster.json", "node1.key", "node1.pem", "node1.signing.key"]
    assert sorted(p.name for p in (tmp_path / "node1").iterdir()) == files
    for name in ("node1.key", "node1.signing.key"):
        assert stat.S_IMODE((tmp_path / "node1" / name).stat().st_mode) == 0o600
        assert (tmp_path / "node1" / name).read_bytes() == (certs / name).read_bytes()
    assert write_bundle(certs, "admin", tmp_path / "admin") == [
        "admin.key", "admin.pem", "ca.pem", "cluster.json"]
    assert write_bundle(certs, "node1", tmp_path / "node1") == files   # re-run: same


def test_bundles_are_enough_for_mutual_tls(certs: Path, tmp_path: Path) -> None:
    """A server holding only node0's bundle serves a client holding only admin's."""
    for name in ("node0", "admin"):
        write_bundle(certs, name, tmp_path / name)
    server = build_server([], credentials=server_credentials(tmp_path / "node0", "node0",
                                                             require_client_cert=True),
                          service_names=[])
    try:
        address = f"127.0.0.1:{server.port}"
        assert probe_health(address, channel_credentials(tmp_path / "admin", "admin")) == "SERVING"
        assert probe_health(address, channel_credentials(tmp_path / "admin", None)) == "UNREACHABLE"
    finally:
        server.stop(None).wait()


def test_refusals_leave_the_folder_as_it_was(certs: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no member 'node7'"):
        write_bundle(certs, "node7", tmp_path / "node7")
    assert not (tmp_path / "node7").exists()
    with pytest.raises(InvalidInput, match="cluster folder itself"):
        write_bundle(certs, "node0", certs)
    dirty = tmp_path / "dirty"
    dirty.mkdir()
    (dirty / "coordinator.key").write_bytes(b"someone else's key")
    with pytest.raises(InvalidInput, match="must not have"):
        write_bundle(certs, "node0", dirty)
    assert [p.name for p in dirty.iterdir()] == ["coordinator.key"]


def test_bundle_command_writes_every_member(certs: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundles"
    done = subprocess.run([sys.executable, "-m", "mutualmind", "cluster", "bundle", "--certs",
                           str(certs), "--out", str(out), "--all"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["admin", "coordinator", "dealer",
                                                     "node0", "node1"]
    assert not list(out.rglob("ca.key"))
