"""`mutualmind cluster witnesses --certs DIR`: the nodes' witness keys, one a line.

Each MPC node cosigns the coordinator's checkpoints under its member name with its
signing key from the cluster manifest (`mpcnode.witness`). This prints those keys in the
C2SP verifier-key form (`node0+<key ID>+<base64(0x04 || key)>`) that `mutualmind ledger
check-proof --witnesses FILE --quorum K` reads; it needs only the manifest (cluster.json),
which a provider's bundle holds.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "witnesses", help="print the nodes' checkpoint witness keys (for check-proof --quorum)",
        description="The nodes' cosigner keys from the cluster manifest, one a line.")
    parser.add_argument("--certs", type=Path, required=True,
                        help="a cluster folder holding cluster.json")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ledger.cosignature import Cosigner
    from mutualmind.errors import InvalidInput
    from mutualmind.transport.pki import load_manifest

    for node in load_manifest(args.certs).nodes:
        if node.signing_public_key is None:
            raise InvalidInput(f"the manifest in {args.certs} lists no signing key for {node.name}")
        print(Cosigner(node.name, node.signing_public_key).vkey())
    return 0
