#!/usr/bin/env python3
"""Benchmark: large messages on the MPC data plane, gRPC against gloo.

    python bench/plane_throughput.py --mib 32 --reps 8 --json

Three parties on loopback (separate processes; gRPC: mutual TLS from a throw-away
cluster CA) all_reduce one int64 tensor of `--mib` MiB `--reps` times - the collective
that opens Beaver products and reveals, and most of a large job's bytes. Printed per
plane: wall seconds per all_reduce (slowest party) and CPU seconds per all_reduce
summed over the parties, every thread included (gRPC's own threads do the TLS and the
socket work). On 2 shared cores a job is CPU-bound, so the CPU figure is the one that
predicts a job's time, and it is far less noisy than the wall time when other work
shares the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.mpc_launch import free_port  # noqa: E402
from mpcnode.worker.heap import HUGE_PAGES_ENV  # noqa: E402

PARTIES = 3


def party(args: argparse.Namespace) -> None:
    import torch

    rank = args.rank
    if args.plane == "grpc":
        from mpcnode.worker.grpc_plane import GrpcCommunicator
        from mpcnode.worker.heap import fix_mmap_threshold
        from mpcnode.worker.plane_session import PlaneConfig, PlaneSession

        fix_mmap_threshold()   # as the worker does
        session = PlaneSession.connect(PlaneConfig(
            job_id="bench", rank=rank, world_size=PARTIES, addresses=tuple(args.addresses.split(",")),
            members=tuple(f"node{i}" for i in range(PARTIES)), certs_dir=Path(args.certs), with_dealer=False))
        all_reduce = GrpcCommunicator(session).all_reduce
    else:
        import torch.distributed as dist

        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}", rank=rank, world_size=PARTIES)

        def all_reduce(tensor: torch.Tensor) -> torch.Tensor:   # as CrypTen's communicator does
            result = tensor.clone()
            dist.all_reduce(result)
            return result

    from mpcnode.worker.heap import freeze_imports

    freeze_imports()   # as a worker does once it is set up (either plane)
    tensor = torch.randint(0, 1 << 40, (args.mib << 17,), generator=torch.Generator().manual_seed(rank))
    all_reduce(torch.zeros(1, dtype=torch.long))     # warm up the links
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.reps):
        all_reduce(tensor)
    result = {"wall_s": (time.perf_counter() - wall) / args.reps, "cpu_s": (time.process_time() - cpu) / args.reps}
    Path(args.out).write_text(json.dumps(result))
    if args.plane == "grpc":
        session.close()


def measure(plane: str, mib: int, reps: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **HUGE_PAGES_ENV)  # as a node's workers
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory(prefix="bench-plane-") as tmp:
        extra = ["--port", str(free_port())]
        if plane == "grpc":
            from mutualmind.transport.pki import create_cluster

            create_cluster(Path(tmp) / "certs", PARTIES)
            extra += ["--addresses", ",".join(f"127.0.0.1:{free_port()}" for _ in range(PARTIES)),
                      "--certs", str(Path(tmp) / "certs")]
        outs = [Path(tmp) / f"party{r}.json" for r in range(PARTIES)]
        processes = [subprocess.Popen([sys.executable, __file__, "--plane", plane, "--mib", str(mib), "--reps", str(reps),
                                       "--rank", str(r), "--out", str(outs[r]), *extra], env=env)
                     for r in range(PARTIES)]
        if any(p.wait(timeout=600) for p in processes):
            raise RuntimeError("a party failed")
        results = [json.loads(o.read_text()) for o in outs]
    return {"plane": plane, "mib": mib, "reps": reps,
            "wall_s_per_all_reduce": round(max(r["wall_s"] for r in results), 4),
            "cpu_s_per_all_reduce": round(sum(r["cpu_s"] for r in results), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--mib", type=int, default=32)
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument("--plane", default="both", choices=("gloo", "grpc", "both"))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rank", type=int, default=-1, help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--addresses", default="", help=argparse.SUPPRESS)
    parser.add_argument("--certs", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rank >= 0:
        party(args)
        return 0
    planes = ("gloo", "grpc") if args.plane == "both" else (args.plane,)
    rows = [measure(plane, args.mib, args.reps) for plane in planes]
    if len(rows) == 2:
        rows.append({"grpc_over_gloo_wall": round(rows[1]["wall_s_per_all_reduce"] / rows[0]["wall_s_per_all_reduce"], 2),
                     "grpc_over_gloo_cpu": round(rows[1]["cpu_s_per_all_reduce"] / rows[0]["cpu_s_per_all_reduce"], 2)})
    for row in rows:
        print(json.dumps(row) if args.json else row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
