"""The cluster CA, member certificates, node signing keys and the manifest that lists them.

Every gRPC link between cluster members is mutual TLS from one cluster CA, and a
servicer authorises a caller by the role written in its certificate subject (OU), so the
CA is the cluster's root of trust. Node Ed25519 signing keys (for attestations) are made
here too, so that one `mutualmind cluster certs` run gives every member its identity and
the manifest gives everyone the nodes' public keys.

Identity: every member certificate carries its member name ("node0", "coordinator") as
a DNS SAN, and clients open channels with that name as the TLS server name
(`mutualmind.transport.channel`), so a handshake succeeds only with the member meant.
Besides its name a certificate names only its own member's hosts (`--host
node0=10.0.0.2`); a member given none runs on this machine and gets localhost and
127.0.0.1 (a local or compose cluster, where member names are the service names). No
host may be another member's name: that would let one member pass for another.

Layout of a cluster folder::

    ca.pem  ca.key(0600)  cluster.json
    <name>.pem  <name>.key(0600)        for coordinator, node0..node{n-1}, dealer, admin
    node<i>.signing.key(0600)           Ed25519, PKCS#8 PEM

EC P-256 is used for TLS keys: every TLS stack grpc can be built with accepts it.
This module knows nothing of gRPC; `mutualmind.transport.credentials` reads its files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mutualmind.errors import AlreadyExists, InvalidInput, NotFound
from mutualmind.transport.atomic_file import fsync_dir, write_atomic

ORGANIZATION = "MutualMind"
ROLES = ("coordinator", "node", "dealer", "admin")
MANIFEST_NAME = "cluster.json"
MANIFEST_VERSION = 1
MIN_NODES, MAX_NODES = 2, 32  # one node would hold whole datasets: n-of-n needs n >= 2
CA_VALID_DAYS = 3650
LEAF_VALID_DAYS = 825
CLOCK_SKEW = dt.timedelta(minutes=5)
KEY_MODE = 0o600
COORDINATOR_NAME, DEALER_NAME, ADMIN_NAME = "coordinator", "dealer", "admin"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")  # hosts of a member given none
_DNS_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA certificate with its private key: what issuing needs."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return _private_pem(self.key)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the CA certificate's DER, hex: how the manifest names its CA."""
        return certificate_fingerprint(self.cert)


@dataclass(frozen=True)
class IssuedCertificate:
    """A leaf certificate and its private key, both PEM, ready for grpc credentials."""

    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class Member:
    """One cluster member as the manifest lists it."""

    name: str
    role: str
    node_index: int | None = None
    signing_public_key: bytes | None = None  # raw Ed25519 public key, nodes only
    hosts: tuple[str, ...] = ()  # the SANs besides its name (informational)


@dataclass(frozen=True)
class ClusterManifest:
    """What `cluster.json` says: the CA fingerprint and every member."""

    ca_fingerprint: str
    members: tuple[Member, ...]

    @property
    def nodes(self) -> tuple[Member, ...]:
        """The nodes, ordered by index (share i goes to node i)."""
        return tuple(sorted((m for m in self.members if m.role == "node"),
                            key=lambda m: m.node_index or 0))

    def node_name(self, index: int) -> str:
        """The member name node `index`'s certificate must carry (share i goes to it)."""
        nodes = self.nodes
        if not 0 <= index < len(nodes):
            raise InvalidInput(f"the cluster has {len(nodes)} nodes, there is no node {index}")
        return nodes[index].name

    def member(self, name: str) -> Member:
        for member in self.members:
            if member.name == name:
                return member
        raise NotFound(f"no member {name!r} in the cluster manifest; members are "
                       f"{', '.join(m.name for m in self.members)}")


def certificate_fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def create_ca(common_name: str = "MutualMind cluster CA", *,
              valid_days: int = CA_VALID_DAYS) -> CertificateAuthority:
    """Make a fresh self-signed CA (P-256) that may sign leaf certificates only."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True,
            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(cert=cert, key=key)


def node_name(index: int) -> str:
    """Member name of node `index`; also the DNS SAN a client pins to reach it."""
    return f"node{index}"


def issue_certificate(ca: CertificateAuthority, name: str, role: str, *,
                      hosts: tuple[str, ...] = LOOPBACK_HOSTS,
                      not_before: dt.datetime | None = None,
                      not_after: dt.datetime | None = None) -> IssuedCertificate:
    """Issue a client+server certificate for member `name` with `role` in its OU.

    SANs are the member name and `hosts` (this member's own addresses; by default the
    loopback ones). `not_before`/`not_after` default to now-5min .. now+825 days; tests
    pass past dates to get an expired cert.
    """
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    check_hosts((name, *hosts))
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    start = not_before or now - CLOCK_SKEW
    end = not_after or now + dt.timedelta(days=LEAF_VALID_DAYS)
    if end <= start:
        raise InvalidInput(f"certificate for {name} would end ({end}) before it starts "
                           f"({start}); pass a later not_after")
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False,
            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False)
        .add_extension(x509.SubjectAlternativeName(_san_entries(name, hosts)),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return IssuedCertificate(cert_pem=cert.public_bytes(serialization.Encoding.PEM),
                             key_pem=_private_pem(key))


def role_of_certificate(cert: x509.Certificate) -> str | None:
    """The role in a member certificate's OU, or None when it names no known role."""
    units = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    if len(units) != 1:
        return None
    role = units[0].value
    return role if isinstance(role, str) and role in ROLES else None


def member_names(nodes: int) -> list[tuple[str, str, int | None]]:
    """(name, role, node index) of every member of an n-node cluster, in file order."""
    members: list[tuple[str, str, int | None]] = [(COORDINATOR_NAME, "coordinator", None)]
    members += [(node_name(i), "node", i) for i in range(nodes)]
    members += [(DEALER_NAME, "dealer", None), (ADMIN_NAME, "admin", None)]
    return members


def member_hosts(nodes: int, hosts: Mapping[str, Sequence[str]] | None
                 ) -> dict[str, tuple[str, ...]]:
    """Each member's own hosts: those given for it, or the loopback ones when none were.

    InvalidInput for a name that is not a member of an n-node cluster, a malformed host,
    or a host that is another member's name (its certificate would pass for that member).
    """
    names = [name for name, _, _ in member_names(nodes)]
    given = {name: tuple(values) for name, values in (hosts or {}).items()}
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise InvalidInput(f"--host names {', '.join(unknown)}, which is not a member of a "
                           f"{nodes}-node cluster; members are {', '.join(names)}")
    result: dict[str, tuple[str, ...]] = {}
    for name in names:
        own = given.get(name) or LOOPBACK_HOSTS
        check_hosts(own)
        # DNS names match case-insensitively in TLS: NODE1 would pass for node1
        taken = sorted(h for h in own if h.lower() in names and h.lower() != name)
        if taken:
            raise InvalidInput(f"--host {name}={taken[0]} would let {name}'s certificate pass "
                               f"for member {taken[0].lower()}; give {name} its own address")
        result[name] = tuple(dict.fromkeys(own))
    return result


def create_cluster(out_dir: Path, nodes: int, *,
                   hosts: Mapping[str, Sequence[str]] | None = None,
                   force: bool = False) -> ClusterManifest:
    """Write a whole cluster identity into `out_dir` and return its manifest.

    `hosts` maps a member name to the DNS names/IPs it is reached at; its certificate
    names those and its member name only (a member not listed: localhost, 127.0.0.1).
    Refuses (AlreadyExists) when `out_dir` already holds a cluster unless `force`: a new
    CA silently invalidates every certificate the running members hold. Input is checked
    before anything is written; a failure while writing removes the files it created.
    """
    if not isinstance(nodes, int) or not MIN_NODES <= nodes <= MAX_NODES:
        raise InvalidInput(f"--nodes must be between {MIN_NODES} and {MAX_NODES}, got "
                           f"{nodes}: additive sharing needs at least two nodes")
    own_hosts = member_hosts(nodes, hosts)
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInput(f"{out_dir} exists and is not a folder; choose another --out")
    existing = _existing_cluster_files(out_dir)
    if existing and not force:
        raise AlreadyExists(
            f"{out_dir} already holds a cluster ({', '.join(existing[:3])}); pass --force "
            "to replace it (every member then needs the new certificates)")
    created_dir = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def put(filename: str, data: bytes, mode: int) -> None:
        path = out_dir / filename
        if not path.exists():
            written.append(path)
        write_atomic(path, data, mode=mode)

    try:
        ca = create_ca()
        put("ca.key", ca.key_pem, KEY_MODE)
        put("ca.pem", ca.cert_pem, 0o644)
        members: list[Member] = []
        for name, role, index in member_names(nodes):
            issued = issue_certificate(ca, name, role, hosts=own_hosts[name])
            put(f"{name}.key", issued.key_pem, KEY_MODE)
            put(f"{name}.pem", issued.cert_pem, 0o644)
            public: bytes | None = None
            if role == "node":
                signing = ed25519.Ed25519PrivateKey.generate()
                put(f"{name}.signing.key", _private_pem(signing), KEY_MODE)
                public = signing.public_key().public_bytes(
                    serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            members.append(Member(name, role, index, public, own_hosts[name]))
        manifest = ClusterManifest(ca_fingerprint=ca.fingerprint, members=tuple(members))
        _remove_stale_nodes(out_dir, nodes)
        put(MANIFEST_NAME, manifest_json(manifest).encode(), 0o644)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        if created_dir and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    return manifest


def manifest_json(manifest: ClusterManifest) -> str:
    members = []
    for m in manifest.members:
        entry: dict[str, object] = {"name": m.name, "role": m.role}
        if m.node_index is not None:
            entry["node_index"] = m.node_index
        if m.signing_public_key is not None:
            entry["signing_public_key"] = m.signing_public_key.hex()
        if m.hosts:
            entry["hosts"] = list(m.hosts)
        members.append(entry)
    return json.dumps({"version": MANIFEST_VERSION, "ca_fingerprint": manifest.ca_fingerprint,
                       "members": members}, indent=2, sort_keys=True) + "\n"


def load_manifest(certs_dir: Path) -> ClusterManifest:
    """Read and check `cluster.json`; bad content is an InvalidInput saying what is off."""
    path = certs_dir / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"{path} does not exist; run `mutualmind cluster certs --out "
                       f"{certs_dir}` first") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InvalidInput(f"{path} is not readable JSON ({err}); regenerate it with "
                           "`mutualmind cluster certs --force`") from None
    try:
        if raw["version"] != MANIFEST_VERSION:
            raise ValueError(f"version {raw['version']!r}, expected {MANIFEST_VERSION}")
        members = []
        for entry in raw["members"]:
            key_hex = entry.get("signing_public_key")
            key = bytes.fromhex(key_hex) if key_hex is not None else None
            hosts = entry.get("hosts", [])
            if entry["role"] not in ROLES or (key is not None and len(key) != 32) \
                    or not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
                raise ValueError(f"bad member entry {entry.get('name')!r}")
            members.append(Member(str(entry["name"]), entry["role"],
                                  entry.get("node_index"), key, tuple(hosts)))
        return ClusterManifest(ca_fingerprint=str(raw["ca_fingerprint"]),
                               members=tuple(members))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InvalidInput(f"{path} is not a valid cluster manifest ({err}); regenerate "
                           "it with `mutualmind cluster certs --force`") from None


def load_ca(certs_dir: Path) -> CertificateAuthority:
    """Read the CA certificate and key (to issue one more certificate)."""
    cert = x509.load_pem_x509_certificate(read_member_file(certs_dir, "ca.pem"))
    key = serialization.load_pem_private_key(read_member_file(certs_dir, "ca.key"), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidInput(f"{certs_dir / 'ca.key'} is not an EC key")
    return CertificateAuthority(cert=cert, key=key)


def load_signing_key(certs_dir: Path, node_index: int) -> ed25519.Ed25519PrivateKey:
    """A node's Ed25519 attestation key."""
    path_name = f"node{node_index}.signing.key"
    key = serialization.load_pem_private_key(read_member_file(certs_dir, path_name), None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise InvalidInput(f"{certs_dir / path_name} is not an Ed25519 private key")
    return key


def read_member_file(certs_dir: Path, filename: str) -> bytes:
    """Read one file of the cluster folder, as a typed error when it is missing."""
    path = certs_dir / filename
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"{path} does not exist; run `mutualmind cluster certs --out "
                       f"{certs_dir}` or pass the right certificate folder") from None
    except OSError as err:
        raise InvalidInput(f"cannot read {path}: {err.strerror}") from None


def check_hosts(hosts: tuple[str, ...]) -> None:
    """Each host must be an IP address or a DNS name; say which one is not."""
    for host in hosts:
        if _is_ip(host):
            continue
        if len(host) > 253 or not _DNS_NAME.match(host):
            raise InvalidInput(f"host {host!r} is neither an IP address nor a DNS name; "
                               "use letters, digits, '-' and '.' (e.g. node0.example.org)")


def _san_entries(name: str, hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    seen: set[str] = set()
    for host in (name, *hosts):
        if host in seen:
            continue
        seen.add(host)
        if _is_ip(host):
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        else:
            entries.append(x509.DNSName(host))
    return entries


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _private_pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _existing_cluster_files(out_dir: Path) -> list[str]:
    if not out_dir.is_dir():
        return []
    names = {MANIFEST_NAME, "ca.pem", "ca.key"}
    return sorted(p.name for p in out_dir.iterdir() if p.name in names)


_NODE_FILE = re.compile(r"^node(\d+)\.(pem|key|signing\.key)$")


def _remove_stale_nodes(out_dir: Path, nodes: int) -> None:
    """With --force into a bigger old cluster, drop the files of nodes that no longer exist."""
    removed = False
    for path in out_dir.iterdir():
        match = _NODE_FILE.match(path.name)
        if match and int(match.group(1)) >= nodes:
            path.unlink()
            removed = True
    if removed:
        fsync_dir(out_dir)
