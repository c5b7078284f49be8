#!/usr/bin/env python3
"""Share-upload throughput per node stream, TLS on, loopback: `python bench/upload.py --json`.

Makes a throw-away cluster (CA, node certificates), starts each node in its own process
(so client and server do not share a GIL, as on real machines), registers a dataset whose
shares total --mb megabytes per node, and times each client-streaming upload from the
first message to the node's signed receipt - which the node sends only after the share is
on disk, fsynced, hashed and checked against the commitment. Prints one JSON object with
`mb_per_s`: the median over --repeat runs of each run's slowest stream (MB = 10^6 bytes).
The 1-minute load average is printed too: on a shared machine it explains the spread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def serve_node(certs: Path, index: int, data_dir: Path, registration_file: Path, public_key_hex: str) -> None:
    """Child mode: one node whose registry holds the registrations the parent wrote
    (length-prefixed serialized DatasetRegistration messages)."""
    from mpcnode.registry import InMemoryRegistry
    from mpcnode.server import NodeConfig, start_node
    from proto import common_pb2

    registry = InMemoryRegistry()
    raw = registration_file.read_bytes()
    while raw:
        size = int.from_bytes(raw[:4], "little")
        registration = common_pb2.DatasetRegistration.FromString(raw[4 : 4 + size])
        registry.add(registration, bytes.fromhex(public_key_hex))
        raw = raw[4 + size :]
    node = start_node(NodeConfig(node_index=index, data_dir=data_dir, certs_dir=certs), registry)
    print(node.public_port, flush=True)
    sys.stdin.read()  # the parent closes stdin to stop us
    node.stop(grace=None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100.0, help="share size per node in MB (default 100)")
    parser.add_argument("--nodes", type=int, default=1, help="concurrent streams, one node each (default 1)")
    parser.add_argument("--cols", type=int, default=16)
    parser.add_argument("--chunk-kib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3, help="uploads per stream; the median is reported")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--serve-node", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_node:
        certs, index, data_dir, reg_file, key_hex = args.serve_node
        serve_node(Path(certs), int(index), Path(data_dir), Path(reg_file), key_hex)
        return 0

    import numpy as np

    from mutualmind.transport import channel_credentials, open_channel
    from mutualmind.transport.pki import create_cluster
    from mutualmind.vocabulary.dataset import TableSchema
    from mutualmind.vocabulary.fixed_point import FRAC_BITS
    from mutualmind.vocabulary.signed_requests import signed_dataset_registration
    from mutualmind.vocabulary.signing_keys import (
        generate_signing_key,
        public_key_bytes,
    )
    from provider.client import upload_share
    from provider.sharing import random_int64, share_commitment

    n = max(args.nodes, 2)  # a registration names at least two shares
    rows = max(1, int(args.mb * 1e6) // (args.cols * 8))
    size = rows * args.cols * 8
    shares = [random_int64((rows, args.cols)) for _ in range(args.nodes)]
    commitments = [share_commitment(s) for s in shares]
    commitments += [share_commitment(np.zeros((1, 1), dtype=np.int64))] * (n - len(commitments))
    key = generate_signing_key()
    names = tuple(f"c{i}" for i in range(args.cols))
    registrations = [
        signed_dataset_registration(
            key, dataset_id=f"bench-{k}", provider_id="bench-provider", rows=rows,
            cols=args.cols, frac_bits=FRAC_BITS, schema=TableSchema(names, names), share_commitments=commitments,
        )
        for k in range(args.repeat)
    ]
    with tempfile.TemporaryDirectory(prefix="mm-bench-") as tmp:
        work = Path(tmp)
        create_cluster(work / "certs", n)
        (work / "registration.bin").write_bytes(b"".join(
            len(body).to_bytes(4, "little") + body for body in (r.SerializeToString() for r in registrations)
        ))
        children = [
            subprocess.Popen(
                [sys.executable, __file__, "--serve-node", str(work / "certs"), str(i), str(work / f"node{i}"),
                 str(work / "registration.bin"), public_key_bytes(key).hex()],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
            for i in range(args.nodes)
        ]
        try:
            ports = [int(child.stdout.readline()) for child in children]  # type: ignore[union-attr]
            credentials = channel_credentials(work / "certs", None)
            channels = [open_channel(f"127.0.0.1:{port}", credentials, server_name=f"node{i}")
                        for i, port in enumerate(ports)]
            # warm the TLS connections so the handshake is not timed
            for channel in channels:
                import grpc

                grpc.channel_ready_future(channel).result(timeout=30)

            def timed(i: int, k: int) -> float:
                start = time.perf_counter()
                upload_share(channels[i], f"bench-{k}", i, shares[i], chunk_bytes=args.chunk_kib * 1024)
                return time.perf_counter() - start

            runs: list[list[float]] = []  # runs[k][i]: seconds of stream i in run k
            with ThreadPoolExecutor(max_workers=args.nodes) as pool:
                for k in range(args.repeat):
                    runs.append(list(pool.map(timed, range(args.nodes), [k] * args.nodes)))
            for channel in channels:
                channel.close()
        finally:
            for child in children:
                child.stdin.close()  # type: ignore[union-attr]
                child.wait(timeout=30)
    slowest = sorted(size / 1e6 / max(run) for run in runs)  # each run: its slowest stream
    result = {
        "mb_per_s": round(statistics.median(slowest), 1),
        "runs_mb_per_s": [round(size / 1e6 / max(run), 1) for run in runs],
        "per_stream_mb_per_s": [[round(size / 1e6 / s, 1) for s in run] for run in runs],
        "streams": args.nodes,
        "bytes_per_stream": size,
        "chunk_bytes": args.chunk_kib * 1024,
        "tls": True,
        "target_mb_per_s": 200,
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key_name, value in result.items():
            print(f"{key_name:>20}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
