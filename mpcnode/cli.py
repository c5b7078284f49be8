"""`mutualmind node serve`: run one MPC node (public share port + mTLS cluster port).

The node learns dataset registrations from the coordinator's Market API
(`CoordinatorRegistry`), so `--coordinator` is required. Heavy imports (grpc, the
server) happen inside the handler so that other subcommands start fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    node = subparsers.add_parser("node", help="run an MPC node")
    node_sub = node.add_subparsers(dest="node_command", metavar="ACTION", required=True)
    serve = node_sub.add_parser(
        "serve",
        help="serve share uploads (public TLS port) and node control (mutual-TLS cluster port)",
    )
    serve.add_argument("--index", type=int, required=True, help="this node's index (share i goes to node i)")
    serve.add_argument("--certs", type=Path, required=True, help="cluster folder from `mutualmind cluster certs`")
    serve.add_argument("--data-dir", type=Path, required=True, help="where shares are stored")
    serve.add_argument("--coordinator", required=True, help="coordinator market address host:port")
    serve.add_argument("--public-listen", default="127.0.0.1:0", help="share upload port (default: a free port)")
    serve.add_argument("--cluster-listen", default="127.0.0.1:0", help="cluster port (default: a free port)")
    serve.add_argument("--node-quota-bytes", "--quota-bytes", dest="node_quota", default=None,
                       help="share bytes this node holds for all providers together "
                            "(default 64GiB; units KiB, MiB, GiB, TiB)")
    serve.add_argument("--provider-quota-bytes", dest="provider_quota", default=None,
                       help="share bytes this node holds for one provider (default 16GiB)")
    serve.add_argument("--uploads-per-provider", type=int, default=2,
                       help="concurrent upload streams of one provider's datasets (default 2)")
    serve.add_argument("--min-upload-rate", default="64KiB",
                       help="uploads slower than this many bytes/s (averaged over 10 s, after "
                            "10 s of grace) are cancelled (default 64KiB)")
    serve.add_argument("--worker-memory", default="4GiB",
                       help="memory one MPC worker process may use; a job that needs more is refused "
                            "before it starts, naming what to change (default 4GiB; units MiB, GiB)")
    serve.add_argument("--ready-workers", type=int, default=1,
                       help="MPC workers kept started ahead of their jobs (torch and CrypTen already "
                            "imported), each ~RSS in docs/operations.md; 0: every job starts its "
                            "worker cold (default 1)")
    serve.add_argument("--inference-retention", type=float, default=60.0, metavar="SECONDS",
                       help="how long an inference order's query and prediction shares stay on this "
                            "node after it delivered them to their user (a grace for a broken "
                            "download); failed orders' go at once (default 60, docs/ownership.md)")
    serve.add_argument("--coordinator-name", default="coordinator",
                       help="name in the coordinator's certificate (when its address is not among its SANs)")
    serve.add_argument("--ledger-vkey", default=None,
                       help="the coordinator's checkpoint key (`ledger head --vkey-only`): this node "
                            "cosigns only checkpoints signed by it (default: the key of the first "
                            "checkpoint it cosigns, pinned from then on)")
    serve.set_defaults(func=serve_node)


def serve_node(args: argparse.Namespace) -> int:
    """Start both servers, print their ports on one line, serve until SIGTERM/SIGINT."""
    import logging

    from mpcnode.coordinator_client import CoordinatorMarket, CoordinatorRegistry
    from mpcnode.inference_retention import MAX_RETENTION_S
    from mpcnode.server import NodeConfig, start_node
    from mpcnode.upload_guard import StallPolicy, StreamLimits
    from mutualmind.errors import InvalidInput
    from mutualmind.transport import (
        channel_credentials,
        open_channel,
        serve_until_signalled,
    )
    from mutualmind.vocabulary.quotas import StorageQuota, parse_size

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s node{args.index} %(levelname)s %(name)s: %(message)s")
    if not 0 <= args.inference_retention <= MAX_RETENTION_S:
        raise InvalidInput(f"--inference-retention must be within 0..{MAX_RETENTION_S:.0f} s, "
                           f"got {args.inference_retention}")
    config = NodeConfig(
        node_index=args.index,
        data_dir=args.data_dir,
        certs_dir=args.certs,
        public_address=args.public_listen,
        cluster_address=args.cluster_listen,
        quota=StorageQuota.from_sizes(args.node_quota, args.provider_quota),
        stall=StallPolicy(min_rate=parse_size(args.min_upload_rate)),
        streams=StreamLimits(per_provider=args.uploads_per_provider),
        worker_memory_bytes=parse_size(args.worker_memory),
        ledger_vkey=args.ledger_vkey,
        ready_workers=args.ready_workers,
        inference_retention_s=args.inference_retention,
    )
    channel = open_channel(
        args.coordinator,
        channel_credentials(args.certs, config.member_name),
        server_name=args.coordinator_name,
    )
    node = start_node(config, CoordinatorRegistry(channel), CoordinatorMarket(channel))
    def stop() -> None:
        node.stop(grace=2.0)
        channel.close()

    return serve_until_signalled(
        f"node{config.node_index} public_port={node.public_port} cluster_port={node.cluster_port}",
        stop, name=f"node{config.node_index}")
