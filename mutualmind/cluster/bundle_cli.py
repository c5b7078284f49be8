"""`mutualmind cluster bundle`: give each member a folder with only its own keys.

    mutualmind cluster bundle --certs CLUSTER_DIR --out DIR --member node0 [--member ...]
    mutualmind cluster bundle --certs CLUSTER_DIR --out DIR --all

writes DIR/<member>/ (ca.pem, cluster.json, <member>.pem/.key, and a node's signing key)
for each member; `--certs` of a member's server then points at its own folder. The
compose deployment runs this once after `cluster certs`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "bundle", help="copy each member's own certificate and keys into a folder of its own",
        description="Per-member folders holding only that member's keys (never the CA key).")
    parser.add_argument("--certs", type=Path, required=True,
                        help="the cluster folder from `cluster certs`")
    parser.add_argument("--out", type=Path, required=True,
                        help="writes <out>/<member>/ for each member")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--member", action="append", help="a member name (repeat)")
    which.add_argument("--all", action="store_true", help="every member of the manifest")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mutualmind.cluster.bundle import write_bundle
    from mutualmind.transport.pki import load_manifest

    names = ([m.name for m in load_manifest(args.certs).members] if args.all
             else list(dict.fromkeys(args.member)))
    for name in names:
        files = write_bundle(args.certs, name, args.out / name)
        print(f"{args.out / name}: {', '.join(files)}")
    return 0
