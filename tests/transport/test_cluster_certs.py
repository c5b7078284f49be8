"""`mutualmind cluster certs` run as a real subprocess, and the certs library's refusals."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from mutualmind.errors import EXIT_CODES, ErrorCode, InvalidInput, NotFound
from mutualmind.transport.pki import (
    create_ca,
    issue_certificate,
    load_manifest,
    load_signing_key,
    role_of_certificate,
)

ROOT = Path(__file__).resolve().parents[2]


def run_certs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mutualmind", "cluster", "certs", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def expected_files(nodes: int) -> set[str]:
    names = ["coordinator", "dealer", "admin", *(f"node{i}" for i in range(nodes))]
    files = {"ca.pem", "ca.key", "cluster.json"}
    files |= {f"{n}.pem" for n in names} | {f"{n}.key" for n in names}
    files |= {f"node{i}.signing.key" for i in range(nodes)}
    return files


def test_certs_command_writes_the_layout(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    run = run_certs("--out", str(out), "--nodes", "3", "--host", "node0=10.0.0.2",
                    "--host", "node1=10.0.0.3,node1.example.org",
                    "--host", "coordinator=mm.example.org,10.0.0.7")
    assert run.returncode == 0, run.stderr
    assert set(os.listdir(out)) == expected_files(3)
    for path in out.iterdir():
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.suffix == ".key":
            assert mode == 0o600, path.name

    ca = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
    manifest = load_manifest(out)
    assert manifest.ca_fingerprint == hashlib.sha256(
        ca.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert [m.name for m in manifest.nodes] == ["node0", "node1", "node2"]
    assert [m.node_index for m in manifest.nodes] == [0, 1, 2]
    roles = {m.name: m.role for m in manifest.members}
    assert roles == {"coordinator": "coordinator", "node0": "node", "node1": "node",
                     "node2": "node", "dealer": "dealer", "admin": "admin"}
    for member in manifest.members:
        cert = x509.load_pem_x509_certificate((out / f"{member.name}.pem").read_bytes())
        cert.verify_directly_issued_by(ca)
        assert role_of_certificate(cert) == member.role
        assert sans_of(cert) == OWN_SANS[member.name], member.name
        assert set(member.hosts) == OWN_SANS[member.name] - {member.name}
        key = serialization.load_pem_private_key(
            (out / f"{member.name}.key").read_bytes(), None)
        assert key.public_key() == cert.public_key()
    for node in manifest.nodes:
        signing = load_signing_key(out, node.node_index or 0)
        assert isinstance(signing, ed25519.Ed25519PrivateKey)
        assert signing.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        ) == node.signing_public_key
    assert "node2" in run.stdout


# Each certificate names its member and that member's own hosts: node 0's does not
# carry node 1's address, nor the coordinator's (with --hosts every one carried all).
OWN_SANS = {
    "node0": {"node0", "10.0.0.2"},
    "node1": {"node1", "10.0.0.3", "node1.example.org"},
    "coordinator": {"coordinator", "mm.example.org", "10.0.0.7"},
    "node2": {"node2", "localhost", "127.0.0.1"},
    "dealer": {"dealer", "localhost", "127.0.0.1"},
    "admin": {"admin", "localhost", "127.0.0.1"},
}


def sans_of(cert: x509.Certificate) -> set[str]:
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(sans.get_values_for_type(x509.DNSName)) | {
        str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}


def test_certs_command_refuses_to_overwrite_then_force_replaces(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    assert run_certs("--out", str(out), "--nodes", "3").returncode == 0
    before = snapshot(out)
    again = run_certs("--out", str(out), "--nodes", "3")
    assert again.returncode == EXIT_CODES[ErrorCode.ALREADY_EXISTS]
    assert "--force" in again.stderr and "Traceback" not in again.stderr
    assert snapshot(out) == before

    forced = run_certs("--out", str(out), "--nodes", "2", "--force")
    assert forced.returncode == 0, forced.stderr
    assert set(os.listdir(out)) == expected_files(2)  # node2's files went with it
    after = snapshot(out)
    assert after["ca.pem"] != before["ca.pem"]
    assert len(load_manifest(out).nodes) == 2


@pytest.mark.parametrize("args,needle", [
    (("--nodes", "1"), "at least two nodes"),
    (("--nodes", "3", "--host", "node0=bad host!"), "neither an IP address nor a DNS name"),
    (("--nodes", "3", "--hosts", "10.0.0.2"), "every host into every certificate"),
    (("--nodes", "3", "--host", "10.0.0.2"), "MEMBER=HOST"),
    (("--nodes", "3", "--host", "node7=10.0.0.2"), "not a member"),
    (("--nodes", "3", "--host", "node0=node1"), "pass for member node1"),
    (("--nodes", "3", "--host", "coordinator=10.0.0.1,Node2"), "pass for member node2"),
])
def test_certs_command_bad_input_leaves_nothing(tmp_path: Path, args: tuple[str, ...],
                                                needle: str) -> None:
    out = tmp_path / "certs"
    run = run_certs("--out", str(out), *args)
    assert run.returncode == EXIT_CODES[ErrorCode.INVALID_INPUT]
    assert needle in run.stderr
    assert not out.exists()


def test_manifest_problems_are_typed(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="cluster certs"):
        load_manifest(tmp_path)
    (tmp_path / "cluster.json").write_text("{not json")
    with pytest.raises(InvalidInput, match="not readable JSON"):
        load_manifest(tmp_path)
    (tmp_path / "cluster.json").write_text(json.dumps(
        {"version": 1, "ca_fingerprint": "00", "members": [{"name": "x", "role": "king"}]}))
    with pytest.raises(InvalidInput, match="not a valid cluster manifest"):
        load_manifest(tmp_path)


def test_issue_refuses_bad_requests() -> None:
    ca = create_ca()
    with pytest.raises(InvalidInput, match="unknown role"):
        issue_certificate(ca, "node0", "superuser")
    now = dt.datetime.now(dt.timezone.utc)
    with pytest.raises(InvalidInput, match="before it starts"):
        issue_certificate(ca, "node0", "node", not_before=now, not_after=now)
    with pytest.raises(InvalidInput, match="DNS name"):
        issue_certificate(ca, "node0", "node", hosts=("under_score",))
