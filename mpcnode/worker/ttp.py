"""The dealer's per-job process: CrypTen's trusted third party (TTP) for one job.

`python -m mpcnode.worker.ttp --world-size N --master-addr HOST --master-port PORT`
joins the job's torch.distributed rendezvous as rank N (after the N nodes) and serves
Beaver triples, wraps and B2A randomness until party 0 says "terminate" or the job's
processes go away; it also answers a whole training run's requests in one batch
(`dealer_prefetch`). It sees only randomness it made itself, never a share - which is
why it must never run on a node or the coordinator. Phase 1 of the data plane:
CrypTen's TTP protocol (its requests are CrypTen's restricted-unpickled messages from
party 0); only for trusted networks.
"""

from __future__ import annotations

import argparse
import os
import sys

from mpcnode.worker.job_spec import check_party, check_port, validate_host
from mpcnode.worker.lifetime import bind_to_parent_and_deadline
from mutualmind.errors import MutualMindError


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mpcnode.worker.ttp")
    parser.add_argument("--world-size", type=int, required=True, help="number of nodes (parties)")
    parser.add_argument("--master-addr", required=True)
    parser.add_argument("--master-port", type=int, required=True)
    parser.add_argument("--gloo-interface", default="")
    args = parser.parse_args(argv)
    bind_to_parent_and_deadline()
    try:
        serve(args.world_size, args.master_addr, args.master_port, args.gloo_interface)
    except MutualMindError as err:
        print(f"ttp: {err.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
