#!/usr/bin/env python3
"""Benchmark: one MPC training against the batched leave-one-out pass, in one run.

    python bench/loo.py --providers 8 --json

Starts `--parties` MPC parties and the dealer's TTP as local processes (gloo on
loopback, CrypTen's TTP provider - the real data plane of a round). Each party holds
additive shares of the same data (breast cancer by default, rows split across
`--providers` providers) and, in the same process, runs first one training (a single
model on every row) and then the batched LOO pass (the full model plus one model per
left-out provider, weights [features, n+1]). Both include normalisation, training and
evaluation on the validation split. Printed figures:

  single_s, loo_s      wall time of each, slowest party (s)
  loo_over_single      loo_s / single_s  (target <= 1.3; naive LOO would be n+1 times)
  rounds_single/_loo   communication rounds, maximum over parties (CrypTen's counter)
  bytes_single/_loo    bytes sent, summed over parties (CrypTen's counter)
  naive_loo_estimate_s (n+1) * single_s, what retraining n+1 times would cost
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


def _dataset(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    x, y = load_breast_cancer(return_X_y=True)
    if args.rows > len(x):  # larger data: repeat rows with a little jitter (public seed)
        rng = np.random.default_rng(0)
        index = rng.integers(0, len(x), size=args.rows)
        x = x[index] * (1 + 0.01 * rng.standard_normal(x[index].shape))
        y = y[index]
    tx, vx, ty, vy = train_test_split(x, y.astype(float), test_size=0.2, random_state=0, stratify=y)
    return tx, ty, vx, vy


def _shares(table, parties: int, rank: int):  # type: ignore[no-untyped-def]
    """This party's additive share of `table` (every party derives all shares from one
    public seed: fine for a benchmark, never for real data - providers share with os.urandom)."""
    import torch

    encoded = torch.round(torch.as_tensor(table, dtype=torch.float64) * 65536).to(torch.long)
    generator = torch.Generator().manual_seed(1234)
    noise = [torch.randint(-(2**62), 2**62, encoded.shape, generator=generator) for _ in range(parties - 1)]
    if rank < parties - 1:
        return noise[rank]
    return encoded - sum(noise)


def party(args: argparse.Namespace) -> None:
    """One MPC party: single training, then batched LOO; writes its figures as JSON."""
    import numpy as np
    import torch

    os.environ.update(
        {
            "RENDEZVOUS": f"tcp://127.0.0.1:{args.port}",
            "WORLD_SIZE": str(args.parties),
            "RANK": str(args.rank),
            "DISTRIBUTED_BACKEND": "gloo",
        }
    )
    from mutualmind.crypten_compat import crypten

    crypten.cfg["mpc.provider"] = "TTP"
    crypten.cfg["communicator.verbose"] = True
    if args.rank == args.parties:
        from crypten.mpc.provider.ttp_provider import TTPServer

        TTPServer()
        return
    crypten.init()
    import crypten.communicator as comm
    from crypten.mpc import MPCTensor

    from mpcnode.worker.backend import CrypTenBackend
    from mpcnode.worker.model_spec import parse_model_spec
    from mpcnode.worker.training import row_masks, train_masked

    tx, ty, vx, vy = _dataset(args)
    parts = np.array_split(np.arange(len(tx)), args.providers)
    provider_rows = [len(p) for p in parts]

    def secret(table):  # type: ignore[no-untyped-def]
        return MPCTensor.from_shares(_shares(table, args.parties, args.rank), precision=16)

    inputs = (secret(tx), secret(ty.reshape(-1, 1)), secret(vx), secret(vy.reshape(-1, 1)))
    spec = parse_model_spec({"kind": args.model, "epochs": args.epochs, "batch_size": args.batch_size})
    figures = {}
    for phase, masks in (
        ("single", torch.ones(1, len(tx), 1, dtype=torch.long)),
        ("loo", row_masks(provider_rows)),
    ):
        comm.get().barrier()
        comm.get().reset_communication_stats()
        started = time.perf_counter()
        result = train_masked(CrypTenBackend(), spec, *inputs, masks)
        elapsed = time.perf_counter() - started
        stats = comm.get().get_communication_stats()
        figures[phase] = {
            "s": elapsed,
            "rounds": int(stats["rounds"]),
            "bytes": int(stats["bytes"]),
            "comm_s": float(stats["time"]),
            "models": int(masks.size(0)),
            "steps": result.steps,
            "metrics": result.metrics,
        }
    figures["train_rows"] = len(tx)
    Path(args.out).write_text(json.dumps(figures))
    crypten.uninit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--providers", type=int, default=8)
    parser.add_argument("--parties", type=int, default=3, help="MPC nodes (the dealer comes on top)")
    parser.add_argument("--model", default="logistic", choices=["logistic", "mlp"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=0, help="0 = full batch")
    parser.add_argument("--rows", type=int, default=0, help="total rows (default: the dataset's 569)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rank", type=int, default=-1, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rank >= 0:
        party(args)
        return 0
    if not 2 <= args.providers <= 64 or not 2 <= args.parties <= 8:
        parser.error("--providers must be in [2, 64] and --parties in [2, 8]")

    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with tempfile.TemporaryDirectory(prefix="bench-loo-") as tmp:
        outs = [Path(tmp) / f"party{r}.json" for r in range(args.parties)]
        common = [
            "--providers", str(args.providers), "--parties", str(args.parties), "--model", args.model,
            "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--rows", str(args.rows),
            "--port", str(port),
        ]
        processes = [
            subprocess.Popen(
                [sys.executable, __file__, *common, "--rank", str(r), "--out", str(outs[r] if r < args.parties else "")],
                env=env,
            )
            for r in range(args.parties + 1)
        ]
        codes = [p.wait() for p in processes]
        if any(codes):
            print(f"a party failed (exit codes {codes})", file=sys.stderr)
            return 1
        parties = [json.loads(o.read_text()) for o in outs]
    single = {k: [p["single"][k] for p in parties] for k in ("s", "rounds", "bytes")}
    loo = {k: [p["loo"][k] for p in parties] for k in ("s", "rounds", "bytes")}
    report = {
        "providers": args.providers,
        "parties": args.parties,
        "model": args.model,
        "epochs": args.epochs,
        "dataset_rows": args.rows or 569,
        "train_rows": parties[0]["train_rows"],
        "single_s": round(max(single["s"]), 3),
        "loo_s": round(max(loo["s"]), 3),
        "loo_over_single": round(max(loo["s"]) / max(single["s"]), 3),
        "rounds_single": max(single["rounds"]),
        "rounds_loo": max(loo["rounds"]),
        "bytes_single": sum(single["bytes"]),
        "bytes_loo": sum(loo["bytes"]),
        "rounds_per_party_single": single["rounds"],
        "rounds_per_party_loo": loo["rounds"],
        "naive_loo_estimate_s": round((args.providers + 1) * max(single["s"]), 3),
        "metrics_loo": parties[0]["loo"]["metrics"],
    }
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>26}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
