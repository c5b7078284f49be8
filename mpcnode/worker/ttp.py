"""The dealer's per-job process: CrypTen's trusted third party (TTP) for one job.

`python -m mpcnode.worker.ttp --world-size N --master-addr HOST --master-port PORT`
joins the job's torch.distributed rendezvous as rank N (after the N nodes) and serves
Beaver triples, wraps and B2A randomness until party 0 says "terminate" or the job's
processes go away; it also answers a whole training run's requests in one batch
(`dealer_prefetch`). It sees only randomness it made itself, never a share - which is
why it must never run on a node or the coordinator.

Two data planes: `--plane grpc` (issue 12, the dealer's only plane: mutual TLS, typed
requests, `plane_dealer`), where `--addresses` lists the nodes' MPC ports and
`--certs-dir` holds the dealer's certificate; and `--plane gloo --bench-gloo`, the
benchmark baseline (CrypTen's TTP protocol over torch.distributed, its requests
CrypTen's restricted-unpickled messages from party 0), which only a benchmark or test
harness starts - the dealer never passes `--bench-gloo`.

`python -m mpcnode.worker.ttp --ready` is the same process started ahead of its job
(`mpcnode.ready_workers`): it imports CrypTen and the dealer's modules, then reads one
line of JSON from stdin, `{"args": [the arguments above], "deadline_s": 120.0}`, and
serves that one job as a cold one would. Closed stdin without a line: exit 0.
"""

from __future__ import annotations

import argparse
import os
import sys

from mpcnode.worker.job_spec import check_party, check_port, validate_host
from mpcnode.worker.lifetime import Deadline, bind_to_parent_and_deadline
from mutualmind.errors import MutualMindError
from mutualmind.vocabulary.data_plane import BENCH_FLAG, DEFAULT_PLANE, check_plane


def serve(world_size: int, master_addr: str, master_port: int, gloo_interface: str = "") -> None:
    """Run the TTP server for one job until it ends (blocking)."""
    check_party(0, world_size)
    validate_host(master_addr)
    check_port(master_port)
    host = f"[{master_addr}]" if ":" in master_addr else master_addr
    os.environ.update(
        {
            "RENDEZVOUS": f"tcp://{host}:{master_port}",
            "WORLD_SIZE": str(world_size),
            "RANK": str(world_size),
            "DISTRIBUTED_BACKEND": "gloo",
        }
    )
    if gloo_interface:
        os.environ["GLOO_SOCKET_IFNAME"] = gloo_interface
    run_ttp_server()


def run_ttp_server() -> None:
    """CrypTen's TTP server plus `batch` (a whole run's material in one answer), in this
    process, whose torch.distributed environment (RENDEZVOUS, RANK, ...) is already set.
    Returns when party 0 sends "terminate" or the connection drops."""
    from mutualmind.crypten_compat import crypten

    crypten.cfg["mpc.provider"] = "TTP"
    from crypten.mpc.provider.ttp_provider import TTPServer

    from mpcnode.worker.dealer_prefetch import serve_batch

    class BatchingTTPServer(TTPServer):
        def batch(self, requests: object) -> object:
            return serve_batch(self, requests)

    BatchingTTPServer()


def serve_grpc(job_id: str, world_size: int, addresses: list[str], members: list[str],
               certs_dir: str, connect_timeout_s: float, deadline: Deadline | None = None) -> None:
    """Dial every node of the job over the gRPC plane and serve party 0 until the end.
    Party 0 asks for all material before training, then is silent until the job ends:
    the dealer waits for it until the job's `deadline`."""
    from pathlib import Path

    from mpcnode.worker.heap import freeze_imports
    from mpcnode.worker.job_spec import validate_job_id, validate_plane_address
    from mpcnode.worker.plane_dealer import serve_dealer
    from mpcnode.worker.plane_session import PlaneConfig, PlaneSession

    check_party(0, world_size)
    config = PlaneConfig(
        job_id=validate_job_id(job_id), rank=world_size, world_size=world_size,
        addresses=tuple(validate_plane_address(a) for a in addresses),
        members=tuple(members) or tuple(f"node{i}" for i in range(world_size)),
        certs_dir=Path(certs_dir), connect_timeout_s=connect_timeout_s, deadline=deadline)
    session = PlaneSession.connect(config)
    freeze_imports()   # as a worker does (heap.freeze_imports)
    try:
        serve_dealer(session)
    finally:
        session.close()


READY_PRELOAD = (
    "torch",
    "mutualmind.crypten_compat",
    "crypten.mpc.provider.ttp_provider",
    "mpcnode.worker.dealer_prefetch",
    "mpcnode.worker.plane_dealer",
    "mpcnode.worker.plane_session",
)
MAX_HANDOVER_BYTES = 64 * 1024


def serve_ready() -> int:
    """Preload, wait for the job's arguments on stdin, serve it (see the module doc)."""
    import importlib
    import json
    import math

    from mpcnode.worker.lifetime import arm_deadline, bind_to_parent

    bind_to_parent()
    for name in READY_PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as err:  # the job imports it again and reports the failure
            print(f"ready ttp: preloading {name} failed: {type(err).__name__}: {err}", file=sys.stderr)
    try:
        from mpcnode.worker.dealer_prefetch import warm_shapes

        warm_shapes()   # the first answer's size would cost the job's first request ~2 s
    except Exception as err:  # the job computes them itself and reports any failure
        print(f"ready ttp: warming the shape computations failed: {type(err).__name__}: {err}", file=sys.stderr)
    line = sys.stdin.buffer.readline(MAX_HANDOVER_BYTES + 1)
    if not line:
        return 0
    try:
        raw = json.loads(line.decode("utf-8"))
        args, deadline_s = raw["args"], raw["deadline_s"]
        if not (isinstance(args, list) and all(isinstance(a, str) for a in args) and "--ready" not in args):
            raise ValueError("args must be a list of strings")
        if not (isinstance(deadline_s, (int, float)) and math.isfinite(deadline_s) and deadline_s > 0):
            raise ValueError("deadline_s must be a positive number of seconds")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        print(f"ready ttp: bad handover from the dealer: {err}", file=sys.stderr)
        return 2
    deadline = Deadline.after(float(deadline_s))
    arm_deadline(deadline)
    return main(args, ready_deadline=deadline)


def main(argv: list[str] | None = None, *, ready_deadline: Deadline | None = None) -> int:
    """Serve one job; `ready_deadline`: a ready process's, already bound to its parent
    and armed when the job was handed over."""
    if ready_deadline is None and (sys.argv[1:] if argv is None else argv) == ["--ready"]:
        return serve_ready()
    parser = argparse.ArgumentParser(prog="python -m mpcnode.worker.ttp")
    parser.add_argument("--world-size", type=int, required=True, help="number of nodes (parties)")
    parser.add_argument("--plane", default=DEFAULT_PLANE)
    parser.add_argument(BENCH_FLAG, action="store_true", help="a benchmark or test: allow --plane gloo")
    parser.add_argument("--master-addr", help="gloo: the job's rendezvous host")
    parser.add_argument("--master-port", type=int, help="gloo: the job's rendezvous port")
    parser.add_argument("--gloo-interface", default="")
    parser.add_argument("--job-id", help="grpc: the job the dealer serves")
    parser.add_argument("--addresses", default="", help="grpc: node ranks' MPC host:port, comma separated")
    parser.add_argument("--members", default="", help="grpc: node ranks' certificate names (default node0,...)")
    parser.add_argument("--certs-dir", help="grpc: cluster folder with ca.pem, dealer.pem, dealer.key")
    parser.add_argument("--connect-timeout-s", type=float, default=60.0)
    args = parser.parse_args(argv)
    deadline = bind_to_parent_and_deadline() if ready_deadline is None else ready_deadline
    try:
        if check_plane(args.plane, bench=args.bench_gloo) == DEFAULT_PLANE:
            if not (args.job_id and args.addresses and args.certs_dir):
                parser.error("--plane grpc needs --job-id, --addresses and --certs-dir")
            serve_grpc(args.job_id, args.world_size, args.addresses.split(","),
                       [m for m in args.members.split(",") if m], args.certs_dir, args.connect_timeout_s,
                       deadline)
        else:
            if not args.master_addr or args.master_port is None:
                parser.error("--plane gloo needs --master-addr and --master-port")
            serve(args.world_size, args.master_addr, args.master_port, args.gloo_interface)
    except MutualMindError as err:
        print(f"ttp: {err.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
