"""`mutualmind coordinator serve`: run the coordinator (market + admin APIs, the ledger)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.data_plane import DEFAULT_PLANE, check_plane


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("coordinator", help="run the coordinator")
    sub = parser.add_subparsers(dest="coordinator_command", metavar="ACTION", required=True)
    serve = sub.add_parser("serve", help="serve the market (public TLS) and admin (mTLS) APIs")
    serve.add_argument("--certs", type=Path, required=True,
                       help="cluster folder from `mutualmind cluster certs`")
    serve.add_argument("--data-dir", type=Path, required=True,
                       help="where the ledger and round state live")
    serve.add_argument("--node", action="append", required=True, metavar="PUBLIC,CLUSTER[,MPC_HOST]",
                       help="node addresses in index order (repeat once per node)")
    serve.add_argument("--advertise-node", action="append", metavar="HOST:PORT",
                       help="node i's public address as providers elsewhere reach it (repeat "
                            "once per node, in index order), listed by the Market's ListNodes "
                            "(default: each --node's PUBLIC address)")
    serve.add_argument("--dealer", required=True, help="dealer cluster address host:port")
    serve.add_argument("--public-listen", default="127.0.0.1:0",
                       help="Market port (public TLS: providers, sponsors, nodes) host:port "
                            "(default: a free port on loopback)")
    serve.add_argument("--cluster-listen", default="127.0.0.1:0",
                       help="Admin port (mutual TLS: the operator's admin CLI) host:port "
                            "(default: a free port on loopback)")
    serve.add_argument("--mpc-ports", default="29500-29599",
                       help="port range for MPC jobs' data plane: each node's MPC port (one per "
                            "node per job)")
    # jobs run on the gRPC plane only; the option stays (hidden) so `--mpc-plane gloo` gets
    # a reason, not argparse's "unrecognized arguments" (mutualmind.vocabulary.data_plane)
    serve.add_argument("--mpc-plane", default=DEFAULT_PLANE, help=argparse.SUPPRESS)
    serve.add_argument("--node-quota-bytes", dest="node_quota", default=None,
                       help="share bytes each node holds for all providers; registrations beyond "
                            "it are refused (default 64GiB; units KiB, MiB, GiB, TiB)")
    serve.add_argument("--provider-quota-bytes", dest="provider_quota", default=None,
                       help="share bytes each node holds for one provider (default 16GiB)")
    serve.add_argument("--round-ttl-hours", type=float, default=24.0,
                       help="life of a round whose sponsor signed no expiry (default 24)")
    serve.add_argument("--max-failed-runs", type=int, default=3,
                       help="failed runs after which a round (or a tournament's job) is aborted (default 3)")
    serve.add_argument("--tournament-ttl-days", type=float, default=30.0,
                       help="a tournament not settled this long after its submission deadline is "
                            "aborted: its resolution never arrived (default 30)")
    serve.add_argument("--sweep-interval", type=float, default=60.0,
                       help="seconds between looks for expired rounds (default 60)")
    serve.add_argument("--dividend-period", type=float, default=3600.0,
                       help="seconds between payouts of every model's inference fees to its "
                            "owners, in one group commit (default 3600; 0: only on demand, "
                            "`mutualmind owner dividends`)")
    serve.add_argument("--checkpoint-interval", type=float, default=2.0,
                       help="seconds after which a grown ledger gets a signed checkpoint, so a "
                            "proof of any entry is available that soon (default 2)")
    serve.set_defaults(func=serve_coordinator)


def parse_nodes(values: list[str]) -> tuple[Any, ...]:
    from coordinator.cluster_link import NodeEndpoint

    nodes = []
    for index, value in enumerate(values):
        parts = value.split(",")
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidInput(f"--node {value!r}: expected PUBLIC_ADDR,CLUSTER_ADDR[,MPC_HOST]")
        mpc_host = parts[2] if len(parts) == 3 else parts[1].rsplit(":", 1)[0]
        nodes.append(NodeEndpoint(index=index, name=f"node{index}", public_address=parts[0],
                                  cluster_address=parts[1], mpc_host=mpc_host))
    return tuple(nodes)


def parse_advertised(values: list[str] | None, count: int) -> tuple[str, ...]:
    """--advertise-node addresses: none, or exactly one per --node."""
    if not values:
        return ()
    if len(values) != count:
        raise InvalidInput(f"--advertise-node: give one address per --node ({count}), got {len(values)}")
    return tuple(values)


def parse_port_range(text: str) -> range:
    try:
        lo, hi = (int(p) for p in text.split("-"))
    except ValueError:
        raise InvalidInput(f"--mpc-ports {text!r}: expected LOW-HIGH, e.g. 29500-29599") from None
    if not 1024 <= lo <= hi <= 65535:
        raise InvalidInput(f"--mpc-ports {text!r}: ports must be within 1024-65535, low <= high")
    return range(lo, hi + 1)


def serve_coordinator(args: argparse.Namespace) -> int:
    import logging

    from coordinator.rounds import LifecyclePolicy
    from coordinator.server import CoordinatorConfig, start_coordinator
    from mutualmind.transport import serve_until_signalled
    from mutualmind.vocabulary.quotas import StorageQuota

    logging.basicConfig(level=logging.INFO, format="%(asctime)s coordinator %(levelname)s %(message)s")
    check_plane(args.mpc_plane)
    if not 0 < args.round_ttl_hours <= 30 * 24:
        raise InvalidInput(f"--round-ttl-hours must be within 0..720, got {args.round_ttl_hours}")
    if not 0 < args.tournament_ttl_days <= 3660:
        raise InvalidInput(f"--tournament-ttl-days must be within 0..3660, got {args.tournament_ttl_days}")
    if not 1 <= args.max_failed_runs <= 100:
        raise InvalidInput(f"--max-failed-runs must be within 1..100, got {args.max_failed_runs}")
    if not 0.1 <= args.sweep_interval <= 3600:
        raise InvalidInput(f"--sweep-interval must be within 0.1..3600 s, got {args.sweep_interval}")
    if not 0.1 <= args.checkpoint_interval <= 3600:
        raise InvalidInput(f"--checkpoint-interval must be within 0.1..3600 s, got {args.checkpoint_interval}")
    if args.dividend_period != 0 and not 1 <= args.dividend_period <= 31 * 86400:
        raise InvalidInput(f"--dividend-period must be 0 (off) or within 1..{31 * 86400} s, "
                           f"got {args.dividend_period}")
    config = CoordinatorConfig(
        certs_dir=args.certs, data_dir=args.data_dir, nodes=parse_nodes(args.node),
        advertised=parse_advertised(args.advertise_node, len(args.node)),
        dealer_address=args.dealer, public_address=args.public_listen,
        cluster_address=args.cluster_listen, mpc_ports=parse_port_range(args.mpc_ports),
        quota=StorageQuota.from_sizes(args.node_quota, args.provider_quota),
        lifecycle=LifecyclePolicy(max_failures=args.max_failed_runs,
                                  default_ttl_s=args.round_ttl_hours * 3600,
                                  tournament_ttl_s=args.tournament_ttl_days * 86400),
        sweep_interval_s=args.sweep_interval, checkpoint_interval_s=args.checkpoint_interval,
        dividend_period_s=args.dividend_period)
    running = start_coordinator(config)
    for round_id in running.aborted_on_start:
        print(f"aborted round {round_id} on start (see `admin round show {round_id}`)",
              file=sys.stderr, flush=True)
    return serve_until_signalled(
        f"coordinator public_port={running.public_port} cluster_port={running.cluster_port}",
        lambda: running.stop(grace=2.0), name="coordinator")
