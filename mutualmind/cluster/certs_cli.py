"""`mutualmind cluster certs`: write a cluster CA, member certificates and node keys.

Parsing only; `cryptography` is imported by the handler so other commands start fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "certs", help="make the cluster CA, member certificates and node signing keys",
        description="Make a cluster CA and a certificate per coordinator, node, dealer and "
                    "admin, plus each node's Ed25519 signing key and cluster.json.")
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument("--nodes", type=int, default=3,
                        help="number of MPC nodes (at least 2, default 3)")
    parser.add_argument("--host", action="append", default=[], metavar="MEMBER=HOST[,HOST]",
                        help="the DNS names / IPs member MEMBER is reached at, e.g. "
                             "node0=10.0.0.2 (repeatable); only MEMBER's certificate names "
                             "them. A member given none gets localhost and 127.0.0.1; every "
                             "certificate also names its member (node0, coordinator, ...)")
    parser.add_argument("--hosts", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--force", action="store_true",
                        help="replace an existing cluster in --out (old certs stop working)")
    parser.add_argument("--if-absent", action="store_true",
                        help="do nothing (exit 0) when --out already holds a cluster; for a "
                             "one-shot certs service that runs on every start")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mutualmind.transport.pki import MANIFEST_NAME, create_cluster, load_manifest

    if args.if_absent and not args.force and (args.out / MANIFEST_NAME).exists():
        manifest = load_manifest(args.out)
        if len(manifest.nodes) != args.nodes:
            from mutualmind.errors import InvalidInput

            raise InvalidInput(f"{args.out} holds a cluster of {len(manifest.nodes)} nodes, "
                               f"not {args.nodes}; pass --force to replace it")
        print(f"cluster already in {args.out} ({len(manifest.nodes)} nodes); kept as it is")
        return 0
    manifest = create_cluster(args.out, args.nodes, hosts=parse_member_hosts(args),
                              force=args.force)
    print(f"cluster written to {args.out} (CA sha256 {manifest.ca_fingerprint[:16]}...)")
    for member in manifest.members:
        extra = f"  hosts {','.join(member.hosts)}"
        if member.signing_public_key is not None:
            extra += f"  signing key {member.signing_public_key.hex()[:16]}..."
        print(f"  {member.name:<12} {member.role:<12}{extra}")
    return 0


def parse_member_hosts(args: argparse.Namespace) -> dict[str, list[str]]:
    """`--host node0=10.0.0.2,node0.example.org` (repeatable) -> {"node0": [...]}."""
    from mutualmind.errors import InvalidInput

    if args.hosts:
        raise InvalidInput("--hosts put every host into every certificate, so one member's "
                           "certificate could pass for another's address; give each member "
                           "its own with --host MEMBER=HOST[,HOST] (e.g. --host node0=10.0.0.2)")
    hosts: dict[str, list[str]] = {}
    for item in args.host:
        member, sep, values = item.partition("=")
        names = [h.strip() for h in values.split(",") if h.strip()]
        if not sep or not member.strip() or not names:
            raise InvalidInput(f"--host {item!r} is not MEMBER=HOST[,HOST]; e.g. "
                               "--host node0=10.0.0.2 --host coordinator=mm.example.org")
        hosts.setdefault(member.strip(), []).extend(names)
    return hosts
