"""Start MPC parties and the dealer's TTP as local processes for a benchmark.

Each benchmark script re-runs itself once per party (`--rank R`) and once as the TTP
(`--rank N`); the parties meet on loopback, exactly as node workers do - over gloo, or
with `plane="grpc"` over the gRPC data plane (mutual TLS, with a throw-away cluster CA
made for the run) - and each writes its figures as JSON to a file this module collects. Shares are derived
from a public seed: fine for benchmarks, never for real data (providers split their
tables with `secrets`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from mpcnode.worker.heap import HUGE_PAGES_ENV
from mutualmind.vocabulary.fixed_point import SCALE

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_parties(script: str, arguments: list[str], parties: int, timeout: float = 1800.0,
                plane: str = "gloo", rtt_ms: float = 0.0) -> list[dict]:
    """Run `script arguments --rank r --port P --out F [--plane grpc --plane-addresses A
    --certs C]` for r in 0..parties (the last is the TTP); return the parties' JSON
    outputs in rank order. With `rtt_ms` (gRPC plane only), every party-to-party and
    dealer-to-party connection goes through a `latency_relay` adding that round trip:
    each party listens on its own address and dials the others' relays."""
    if rtt_ms > 0 and plane != "grpc":
        raise ValueError("added latency needs the gRPC plane: gloo's pair connections cannot be relayed")
    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **HUGE_PAGES_ENV)  # as a node's workers
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory(prefix="bench-mpc-") as tmp, contextlib.ExitStack() as stack:
        outs = [Path(tmp) / f"party{r}.json" for r in range(parties)]
        extra: list[list[str]] = [[] for _ in range(parties + 1)]
        if plane == "grpc":
            from bench.latency_relay import relays
            from mutualmind.transport.pki import create_cluster

            create_cluster(Path(tmp) / "certs", parties)
            listen = [f"127.0.0.1:{free_port()}" for _ in range(parties)]
            dial = stack.enter_context(relays(listen, rtt_ms))
            for r in range(parties + 1):
                own = [listen[i] if i == r else dial[i] for i in range(parties)]
                extra[r] = ["--plane", "grpc", "--plane-addresses", ",".join(own), "--certs", str(Path(tmp) / "certs")]
        processes = [
            subprocess.Popen(
                [sys.executable, script, *arguments, "--parties", str(parties), "--rank", str(r), "--port", str(port),
                 "--out", str(outs[r]) if r < parties else "", *extra[r]],
                env=env,
            )
            for r in range(parties + 1)
        ]
        try:
            codes = [p.wait(timeout=timeout) for p in processes]
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
        if any(codes):
            raise RuntimeError(f"a party failed (exit codes {codes})")
        return [json.loads(o.read_text()) for o in outs]


def join(rank: int, parties: int, port: int, plane: str = "gloo", addresses: str = "",
         certs: str = "") -> object:
    """Join the job as `rank`; the TTP (rank == parties) serves until the parties finish
    and returns None. Parties get the initialised crypten module."""
    if plane == "grpc":
        return _join_grpc(rank, parties, addresses.split(","), Path(certs))
    os.environ.update(
        {
            "RENDEZVOUS": f"tcp://127.0.0.1:{port}",
            "WORLD_SIZE": str(parties),
            "RANK": str(rank),
            "DISTRIBUTED_BACKEND": "gloo",
        }
    )
    if rank == parties:
        from mpcnode.worker.ttp import run_ttp_server

        run_ttp_server()
        return None
    from mutualmind.crypten_compat import crypten

    crypten.cfg["mpc.provider"] = "TTP"
    crypten.cfg["communicator.verbose"] = True
    crypten.init()
    from mpcnode.worker.crypten_config_view import install

    install(crypten.cfg)  # as the worker does
    return crypten


def _join_grpc(rank: int, parties: int, addresses: list[str], certs: Path) -> object:
    """`join` over the gRPC data plane, as a worker (or the dealer) on that plane does."""
    if rank == parties:
        from mpcnode.worker.ttp import serve_grpc

        serve_grpc("bench", parties, addresses, [], str(certs), 60.0)
        return None
    from mpcnode.worker.crypten_config_view import install
    from mpcnode.worker.heap import fix_mmap_threshold
    from mpcnode.worker.plane_install import init_crypten_over_plane
    from mpcnode.worker.plane_session import PlaneConfig
    from mutualmind.crypten_compat import crypten

    fix_mmap_threshold()
    crypten.cfg["mpc.provider"] = "TTP"
    crypten.cfg["communicator.verbose"] = True
    init_crypten_over_plane(PlaneConfig(
        job_id="bench", rank=rank, world_size=parties, addresses=tuple(addresses),
        members=tuple(f"node{i}" for i in range(parties)), certs_dir=certs))
    install(crypten.cfg)
    return crypten


def provider_scaled(tx: object, ty: object, vx: object, vy: object, regression: bool) -> tuple[object, ...]:
    """The tables as `provider share` encodes them: each column divided by its public
    power of two (mutualmind.vocabulary.column_scale), a regression target too; class
    labels as they are. Standardisation is scale-invariant, so the model is the same."""
    import numpy as np

    from mutualmind.vocabulary.column_scale import column_exponent

    def scaled(train: object, validation: object) -> tuple[object, object]:
        a, b = np.asarray(train, dtype=np.float64), np.asarray(validation, dtype=np.float64)
        columns = a.reshape(len(a), -1).shape[1]
        stacked = np.vstack([a.reshape(len(a), columns), b.reshape(len(b), columns)])
        exponents = np.array([column_exponent(float(m)) for m in np.abs(stacked).max(axis=0)])
        power = exponents.reshape(a.shape[1:]) if a.ndim > 1 else exponents[0]
        return np.ldexp(a, -power), np.ldexp(b, -power)

    tx, vx = scaled(tx, vx)
    if regression:
        ty, vy = scaled(ty, vy)
    return tx, ty, vx, vy


def public_seed_share(table: object, parties: int, rank: int, seed: int = 1234) -> object:
    """This party's additive share (16 fractional bits, Z/2^64) of a public table."""
    import numpy as np
    import torch

    shape = np.shape(table)

    def noise(index: int) -> np.ndarray:  # one generator per share: no party makes all of them
        return np.random.default_rng([seed, index]).integers(-(2**62), 2**62, size=shape, dtype=np.int64)

    if rank < parties - 1:
        return torch.from_numpy(noise(rank))
    # C order: gloo sends a tensor's memory as laid out, so a Fortran-ordered share (a
    # table built column by column) would be summed in the wrong order - garbage on reveal
    share = np.ascontiguousarray(np.round(np.asarray(table, dtype=np.float64) * SCALE).astype(np.int64))
    with np.errstate(over="ignore"):
        for index in range(parties - 1):
            share -= noise(index)  # in place: at most two table-sized arrays at once
    return torch.from_numpy(share)
