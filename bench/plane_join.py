"""How long one job's parties take to join the gRPC data plane: `PlaneSession.connect` alone.

    python bench/plane_join.py --repeat 5 --json
    python bench/plane_join.py --spread 0.03 --json   # the nodes start 0-30 ms after the dealer

Writes a 3-node cluster identity to a temporary folder, then per repeat starts the three
nodes and the dealer as separate processes (mutual TLS on loopback), which wait for one
common instant (the nodes a random delay up to `--spread` later: the coordinator starts
the dealer first, and a job's parties start a few ms apart) and then connect their session, and exchange one control message on every link
(so every stream is up both ways). No torch or CrypTen: this measures the links alone.
Run it with PYTHONPATH at two checkouts, alternately, to compare them.

Printed: `join_s` (the slowest party's connect, median over repeats), `join_s_all`
(every repeat's), `party_s` (the median repeat's parties, rank order, dealer last).
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WORLD = 3
VERBOSE = False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def party(config: dict) -> None:
    """One party: wait for the common start, connect, ping every link, print seconds."""
    from mpcnode.worker.plane_session import PlaneConfig, PlaneSession
    from proto import plane_pb2

    plane_config = PlaneConfig(job_id=config["job_id"], rank=config["rank"], world_size=WORLD,
                               addresses=tuple(config["addresses"]),
                               members=tuple(f"node{i}" for i in range(WORLD)),
                               certs_dir=Path(config["certs_dir"]), connect_timeout_s=30.0)
    import mpcnode.worker.plane_client as client
    import mpcnode.worker.plane_servicer as servicer

    marks: list[tuple[str, float]] = []

    def timed(name: str, function):  # type: ignore[no-untyped-def]
        def call(*args, **kwargs):  # type: ignore[no-untyped-def]
            begin = time.monotonic()
            try:
                return function(*args, **kwargs)
            finally:
                marks.append((name, round(begin - started, 4), round(time.monotonic() - started, 4)))
        return call

    client.dial = timed("dial", client.dial)
    servicer.start_plane_server = timed("serve", servicer.start_plane_server)
    print("ready", flush=True)   # imports done; the parent answers with the common instant
    start_at = float(sys.stdin.readline()) + config["delay_s"]
    time.sleep(max(0.0, start_at - time.time()))
    started = time.monotonic()
    late = time.time() - start_at
    session = PlaneSession.connect(plane_config)
    connected = time.monotonic()
    for link in session.links.values():
        link.send_control(plane_pb2.PlaneControl.BARRIER)
    for link in session.links.values():
        link.recv_control(plane_pb2.PlaneControl.BARRIER)
    exchanged = time.monotonic()
    session.close(wait_s=2.0)
    print(json.dumps({"connect_s": connected - started, "exchange_s": exchanged - started, "marks": marks,
                      "late": round(late, 4)}),
          flush=True)


def one_join(certs: Path, job: int, spread: float) -> list[float]:
    addresses = [f"127.0.0.1:{_free_port()}" for _ in range(WORLD)]
    processes = []
    for rank in range(WORLD + 1):
        config = {"job_id": f"join-{job}", "rank": rank, "addresses": addresses, "certs_dir": str(certs),
                  # the coordinator starts the dealer first, then the nodes at once
                  "delay_s": 0.0 if rank == WORLD else random.uniform(0.0, spread)}
        processes.append(subprocess.Popen([sys.executable, __file__, "--party", json.dumps(config)],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    for process in processes:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    start_at = time.time() + 0.2
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(f"{start_at}\n")
        process.stdin.flush()
    outputs = [p.communicate(timeout=60)[0] for p in processes]
    if any(p.returncode for p in processes):
        raise SystemExit(f"a party failed: {[p.returncode for p in processes]}")
    results = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    if VERBOSE:
        print(json.dumps([[r["late"], r["marks"]] for r in results]), file=sys.stderr)
    return [round(r["exchange_s"], 4) for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--spread", type=float, default=0.03, help="nodes start up to this many s after the dealer")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--party", help=argparse.SUPPRESS)
    parser.add_argument("--verbose", action="store_true", help="each party's dial and listen times on stderr")
    args = parser.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    if args.party:
        party(json.loads(args.party))
        return
    from mutualmind.transport.pki import create_cluster

    with tempfile.TemporaryDirectory(prefix="bench-join-") as tmp:
        certs = Path(tmp) / "certs"
        create_cluster(certs, WORLD)
        runs = [one_join(certs, job, args.spread) for job in range(args.repeat)]
    runs.sort(key=max)
    report = {"join_s": max(runs[len(runs) // 2]), "join_s_all": [max(r) for r in runs],
              "party_s": runs[len(runs) // 2]}
    print(json.dumps(report) if args.json else "\n".join(f"{k}: {v}" for k, v in report.items()))


if __name__ == "__main__":
    main()
