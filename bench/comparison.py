#!/usr/bin/env python3
"""Benchmark: the two comparisons `[x < 0]` side by side, by input size.

    python bench/comparison.py --sizes 256,4096,16384,65536 --json

Three CrypTen parties and the dealer in one process over the in-memory plane
(`mpcnode.worker.plane_memory`: no TLS, no sockets, so what differs is the protocols'
own work and bytes) time the adder (`comparison.less_than_zero_adder`) and the packed
comparison (`less_than_zero_packed`) on random values of each size. `PACKED_FROM` in
`comparison.py` is where `less_than_zero` switches: chosen from these figures.
Prints one JSON object: per size, each comparison's seconds (slowest party), rounds and
bytes (party 0), and packed_over_adder for both.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mpcnode.worker.plane_memory import run_parties  # noqa: E402


def _party(sizes: list[int], budget_elements: int) -> object:
    def protocol(rank: int) -> dict[str, list[float]]:
        import crypten.communicator as comm
        from crypten.mpc import MPCTensor

        from mpcnode.worker.comparison import less_than_zero_adder, less_than_zero_packed

        out: dict[str, list[float]] = {}
        for size in sizes:
            generator = torch.Generator().manual_seed(size * 10 + rank)   # public test values
            value = MPCTensor.from_shares(torch.randint(-2**40, 2**40, (size,), generator=generator), precision=0)
            reps = max(3, budget_elements // size)
            for name, compare in (("adder", less_than_zero_adder), ("packed", less_than_zero_packed)):
                compare(value)   # warm
                comm.get().reset_communication_stats()
                start = time.perf_counter()
                for _ in range(reps):
                    compare(value)
                seconds = (time.perf_counter() - start) / reps
                stats = comm.get().get_communication_stats()
                out[f"{size}:{name}"] = [seconds, stats["rounds"] / reps, stats["bytes"] / reps]
        return out
    return protocol


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,1024,4096,16384,65536", help="comma-separated element counts")
    parser.add_argument("--budget", type=int, default=8000, help="elements compared per size and method (sets reps)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    parties = run_parties(3, _party(sizes, args.budget))
    rows = []
    for size in sizes:
        row: dict[str, float] = {"elements": size}
        for name in ("adder", "packed"):
            row[f"{name}_s"] = round(max(p[f"{size}:{name}"][0] for p in parties), 5)
            row[f"{name}_rounds"] = parties[0][f"{size}:{name}"][1]
            row[f"{name}_bytes"] = int(parties[0][f"{size}:{name}"][2])
        row["packed_over_adder_s"] = round(row["packed_s"] / row["adder_s"], 2)
        row["packed_over_adder_bytes"] = round(row["packed_bytes"] / row["adder_bytes"], 3)
        rows.append(row)
    if args.json:
        print(json.dumps({"comparisons": rows}))
    else:
        for row in rows:
            print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
