#!/usr/bin/env python3
"""Benchmark: one MPC training against plaintext, per step and in total.

    python bench/train.py --model logistic --dataset breast_cancer --json

Starts `--parties` MPC parties and the dealer's TTP as local processes (on loopback,
over `--plane gloo` or `grpc`, or `both` one after the other; CrypTen's TTP provider
with the worker's batched dealer prefetch) and trains
one model (or, with `--providers N`, the full and N leave-one-out models in one batched
pass) exactly as a node's worker does: pooled normalisation, the dealer prefetch
(offline phase), the training steps (online), evaluation on the validation split.
Printed figures (one JSON object with --json):

  rounds_per_step     online communication rounds per training step, max over parties
  rounds_per_party    the same, per party (rank order)
  offline_rounds      rounds of the offline phase (rehearsal + batched dealer fetch), max
  bytes_per_step      bytes sent per training step, summed over parties
  mpc_s               wall time of the training steps, slowest party (online only)
  mpc_step_s          mpc_s / steps
  cpu_step_s          CPU seconds per training step summed over the parties, every thread
                      (steadier than wall time when other work shares the cores)
  plaintext_s         the same steps of the same algorithm in float torch (PlainBackend)
  mpc_over_plaintext  mpc_s / plaintext_s
  accuracy_mpc        the MPC model's validation accuracy (revealed), or MSE (linear)
  accuracy_reference  the plaintext run of the same algorithm (same split, same steps)
  accuracy_plaintext  scikit-learn's LogisticRegression on the same split (LinearRegression
                      MSE for linear)

With `--plane both`: {"gloo": report, "grpc": report, "grpc_over_gloo_step_s": ratio}.

WAN mode, `--rtt-ms 0,5,25`: the same training once per round-trip time, every
connection of the gRPC plane (party to party, dealer to party) through a delaying TCP
relay (`bench/latency_relay.py`). Issue 12 asked for `tc netem` inside network
namespaces; this kernel has no netem qdisc ("Specified qdisc kind is unknown"), and a
relay that holds each direction's bytes for RTT/2 (order kept, bandwidth not
throttled, Nagle off) is the same fixed delay for this traffic. gloo cannot be relayed
(its pair connections use addresses it exchanges itself), so it runs at 0 ms only.
Printed: {"wan": [row per (plane, rtt)]}, each row with rounds_per_step,
bytes_per_step, mpc_step_s and latency_bound = mpc_step_s / (rounds_per_step x RTT)
(issue 12's target: at most 1.3 at 25 ms; one round - every party sends, then waits for
the others - costs one one-way delay, RTT/2, so a step bound by latency alone is ~0.5).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.datasets import TASKS, load_task, sklearn_accuracy  # noqa: E402
from bench.mpc_launch import join, provider_scaled, public_seed_share, run_parties  # noqa: E402
from mutualmind.vocabulary.fixed_point import FRAC_BITS  # noqa: E402

# hyper-parameters per model kind, chosen by measurement (docs/performance.md)
DEFAULTS = {
    "logistic": {"lr": 1.0, "epochs": 10, "batch_size": 128},
    "softmax": {"lr": 1.0, "epochs": 10, "batch_size": 32},
    "mlp": {"lr": 0.5, "epochs": 10, "batch_size": 128, "hidden": 8},
    "linear": {"lr": 0.2, "epochs": 10, "batch_size": 128},
}


def model_spec(args: argparse.Namespace, task: str, classes: int) -> dict:
    raw: dict = dict(DEFAULTS[args.model])
    for key in ("lr", "epochs", "batch_size", "hidden"):
        value = getattr(args, key)
        if value is not None and (key != "hidden" or args.model == "mlp"):
            raw[key] = value
    raw["kind"] = args.model
    if args.model == "mlp":
        raw["task"] = task
    if task == "multiclass":
        raw["classes"] = classes
    raw["metric"] = "mse" if task == "regression" else "accuracy"
    return raw


def _masks(rows: int, providers: int):  # type: ignore[no-untyped-def]
    import numpy as np

    from mpcnode.worker.row_masks import RowMasks

    if providers <= 1:
        return RowMasks.everyone(rows)
    return RowMasks.leave_one_out([len(p) for p in np.array_split(np.arange(rows), providers)])


def party(args: argparse.Namespace) -> None:
    """One MPC party (or the TTP): train as a worker does, write this party's figures."""
    crypten = join(args.rank, args.parties, args.port, args.plane, args.plane_addresses, args.certs)
    if crypten is None:
        return
    import crypten.communicator as comm
    from crypten.mpc import MPCTensor

    from mpcnode.worker.backend import CrypTenBackend
    from mpcnode.worker.memory_budget import measured_peak_bytes
    from mpcnode.worker.training import train_masked
    from mutualmind.vocabulary.model_spec import parse_model_spec

    tx, ty, vx, vy, task, classes = load_task(args.dataset, args.rows)
    spec = parse_model_spec(model_spec(args, task, classes))
    tx, ty, vx, vy = provider_scaled(tx, ty, vx, vy, spec.task == "regression")

    def secret(table):  # type: ignore[no-untyped-def]
        return MPCTensor.from_shares(public_seed_share(table, args.parties, args.rank), precision=FRAC_BITS)

    loading = time.perf_counter()
    inputs = (secret(tx), secret(ty.reshape(-1, 1)), secret(vx), secret(vy.reshape(-1, 1)))
    setup_s = time.perf_counter() - loading
    communicator = comm.get()
    marks: dict[str, tuple[float, dict, float]] = {}

    def on_step(done: int, total: int) -> None:
        if done == 1:
            marks["first"] = (time.perf_counter(), dict(communicator.get_communication_stats()), time.process_time())
        if done == total:
            marks["last"] = (time.perf_counter(), dict(communicator.get_communication_stats()), time.process_time())

    communicator.barrier()
    communicator.reset_communication_stats()
    started = time.perf_counter()
    result = train_masked(CrypTenBackend(), spec, *inputs, _masks(len(tx), args.providers), on_step)
    finished = time.perf_counter()
    total = dict(communicator.get_communication_stats())
    (t1, s1, c1), (tn, sn, cn) = marks["first"], marks["last"]
    steps = result.steps
    per_step = {k: (sn[k] - s1[k]) / (steps - 1) if steps > 1 else s1[k] for k in ("rounds", "bytes")}
    step_s = (tn - t1) / (steps - 1) if steps > 1 else tn - started
    cpu_step_s = (cn - c1) / (steps - 1) if steps > 1 else cn
    Path(args.out).write_text(
        json.dumps(
            {
                "rounds_per_step": per_step["rounds"],
                "bytes_per_step": per_step["bytes"],
                "step_s": step_s,
                "cpu_step_s": cpu_step_s,
                "steps": steps,
                "offline": result.offline,
                "rounds_total": int(total["rounds"]),
                "bytes_total": int(total["bytes"]),
                "comm_s": float(total["time"]),
                "job_s": finished - started,
                "metrics": result.metrics,
                "phases": result.phases,
                "setup_s": setup_s,
                "peak_rss_bytes": measured_peak_bytes(),
                "spec": json.loads(spec.to_json()),
            }
        )
    )
    crypten.uninit()


def plaintext_step_seconds(spec_raw: dict, tx, ty, vx, vy, providers: int, repeats: int = 7) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(seconds per step of the same algorithm in float torch, its validation metric)."""
    import torch

    from mpcnode.worker.backend import PlainBackend
    from mpcnode.worker.training import train_masked
    from mutualmind.vocabulary.model_spec import parse_model_spec

    spec = parse_model_spec(spec_raw)
    masks = _masks(len(tx), providers)
    timings = []
    metric = 0.0
    for _ in range(repeats):  # the fastest of a few runs: plaintext at its best
        marks: list[float] = []
        # fresh tensors every run: training standardises its inputs in place
        tensors = [torch.tensor(a, dtype=torch.float64) for a in (tx, ty.reshape(-1, 1), vx, vy.reshape(-1, 1))]
        result = train_masked(PlainBackend(), spec, *tensors, masks,
                              lambda done, total, marks=marks: marks.append(time.perf_counter()))
        timings.append((marks[-1] - marks[0]) / max(1, len(marks) - 1))
        metric = result.metrics[0]
    return min(timings), metric


def measure(args: argparse.Namespace) -> dict:
    """Run the parties and the plaintext side; return the report."""
    tx, ty, vx, vy, task, classes = load_task(args.dataset, args.rows)
    raw = model_spec(args, task, classes)
    forwarded = ["--model", args.model, "--dataset", args.dataset, "--rows", str(args.rows), "--providers", str(args.providers)]
    for key in ("lr", "epochs", "batch_size", "hidden"):
        if getattr(args, key) is not None:
            forwarded += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    parties = run_parties(__file__, forwarded, args.parties, plane=args.plane, rtt_ms=args.rtt)
    steps = parties[0]["steps"]
    plain_step_s, plain_metric = plaintext_step_seconds(raw, tx, ty, vx, vy, args.providers)
    mpc_step_s = max(p["step_s"] for p in parties)
    offline = [p["offline"] or {} for p in parties]
    return {
        "plane": args.plane,
        "rtt_ms": args.rtt,
        "model": args.model,
        "dataset": args.dataset,
        "parties": args.parties,
        "providers": max(1, args.providers),
        "models_trained": len(parties[0]["metrics"]),
        "train_rows": int(len(tx)),
        "features": int(tx.shape[1]),
        "spec": parties[0]["spec"],
        "steps": steps,
        "rounds_per_step": max(p["rounds_per_step"] for p in parties),
        "rounds_per_party": [p["rounds_per_step"] for p in parties],
        "offline_rounds": max(o.get("rounds", 0) for o in offline),
        "offline_bytes": sum(o.get("bytes", 0) for o in offline),
        "offline_s": round(max(o.get("wall_s", 0.0) for o in offline), 3),
        "bytes_per_step": int(sum(p["bytes_per_step"] for p in parties)),
        "rounds_job": max(p["rounds_total"] for p in parties),
        "job_s": round(max(p["job_s"] for p in parties), 3),
        "mpc_s": round(mpc_step_s * steps, 4),
        "mpc_step_s": round(mpc_step_s, 5),
        "cpu_step_s": round(sum(p["cpu_step_s"] for p in parties), 5),
        "plaintext_s": round(plain_step_s * steps, 6),
        "plaintext_step_s": round(plain_step_s, 7),
        "mpc_over_plaintext": round(mpc_step_s / plain_step_s, 1) if plain_step_s > 0 else None,
        # where a job's time goes, slowest party: standardise, offline, steps, evaluate
        "phases_s": {k: round(max(p["phases"][k] for p in parties), 3) for k in parties[0]["phases"]},
        "peak_rss_mb": [round(p["peak_rss_bytes"] / 2**20) for p in parties],
        "accuracy_mpc": round(parties[0]["metrics"][0], 4),
        "accuracy_reference": round(plain_metric, 4),
        "accuracy_plaintext": round(sklearn_accuracy(task, tx, ty, vx, vy), 4),
        "metric": "mse" if task == "regression" else "accuracy",
    }


def wan_rows(args: argparse.Namespace) -> list[dict]:
    """One row per (plane, RTT): gloo at 0 ms only (see module docstring)."""
    rows = []
    for rtt in (float(v) for v in args.rtt_ms.split(",")):
        planes = ("gloo", "grpc") if args.plane == "both" else (args.plane,)
        for plane in planes:
            if plane == "gloo" and rtt > 0:
                continue
            report = measure(argparse.Namespace(**{**vars(args), "plane": plane, "rtt": rtt}))
            row = {"plane": plane, "rtt_ms": rtt,
                   **{k: report[k] for k in ("rounds_per_step", "bytes_per_step", "mpc_step_s", "offline_s", "job_s")}}
            row["latency_bound"] = round(report["mpc_step_s"] / (report["rounds_per_step"] * rtt / 1000), 3) if rtt else None
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--model", default="logistic", choices=sorted(DEFAULTS))
    parser.add_argument("--dataset", default="breast_cancer", choices=sorted(TASKS))
    parser.add_argument("--parties", type=int, default=3, help="MPC nodes (the dealer comes on top)")
    parser.add_argument("--providers", type=int, default=0, help="batched LOO over N providers (0: one model)")
    parser.add_argument("--rows", type=int, default=0, help="resample the set to this many rows (scaling)")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", dest="batch_size", type=int, default=None, help="0 = full batch")
    parser.add_argument("--hidden", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rank", type=int, default=-1, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    parser.add_argument("--plane", default="gloo", choices=("gloo", "grpc", "both"),
                        help="the MPC data plane (both: gloo, then grpc, and their ratio)")
    parser.add_argument("--rtt-ms", dest="rtt_ms", default="",
                        help="WAN mode: round-trip times in ms, comma separated (e.g. 0,5,25)")
    parser.add_argument("--rtt", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--plane-addresses", default="", help=argparse.SUPPRESS)
    parser.add_argument("--certs", default="", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.rank >= 0:
        party(args)
        return 0
    if not 2 <= args.parties <= 8 or not 0 <= args.providers <= 64:
        parser.error("--parties must be in [2, 8] and --providers in [0, 64]")
    if args.rtt_ms:
        report = {"wan": wan_rows(args)}
    elif args.plane == "both":
        reports = {plane: measure(argparse.Namespace(**{**vars(args), "plane": plane})) for plane in ("gloo", "grpc")}
        report = {**reports, "grpc_over_gloo_step_s": round(reports["grpc"]["mpc_step_s"] / reports["gloo"]["mpc_step_s"], 3),
                  "grpc_over_gloo_cpu": round(reports["grpc"]["cpu_step_s"] / reports["gloo"]["cpu_step_s"], 3)}
    else:
        report = measure(args)
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>20}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
