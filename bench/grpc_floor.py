#!/usr/bin/env python3
"""Benchmark: what moving bytes costs gRPC Python itself, with and without TLS, against a
plain socket - the floor under the MPC data plane (issue 12).

    python bench/grpc_floor.py --kib 350,2048 --mib-total 600 --json

An echo: this process sends a message of the given size and waits for the echo from a
server process, `--mib-total` MiB each way per size, in three modes:

  tcp       a plain TCP socket (what gloo's pair transport costs: the kernel's copies)
  grpc      a gRPC bidirectional stream, no TLS, bytes in and out (no protobuf)
  grpc_tls  the same with mutual TLS from a throw-away cluster CA, as the plane runs

Printed per mode and size: ns_per_byte = CPU seconds of both processes (every thread)
divided by the bytes moved (each byte sent once and received once), and wall_s per echo.
The plane's own figure to compare: `bench/plane_throughput.py` CPU per all_reduce over
4 x the tensor's bytes (3 parties, reduce-scatter + all-gather: each party sends and
receives 4/3 of the tensor) - the gap between it and grpc_tls is the plane's own code;
between grpc_tls and tcp is gRPC Python and TLS.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

METHOD = "/floor.Echo/Exchange"
OPTIONS = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _same(data: bytes) -> bytes:
    return data


def _recv_exactly(conn: socket.socket, view: memoryview) -> None:
    got = 0
    while got < len(view):
        n = conn.recv_into(view[got:])
        if n == 0:
            raise ConnectionError("peer closed")
        got += n


def serve(mode: str, certs: str, port_file: str) -> None:
    """The echo server: answers every message with itself until stdin closes; prints its CPU."""
    if mode == "tcp":
        listener = socket.create_server(("127.0.0.1", 0))
        Path(port_file).write_text(str(listener.getsockname()[1]))
        conn, _ = listener.accept()
        base = _cpu()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        header = bytearray(8)
        while True:
            try:
                _recv_exactly(conn, memoryview(header))
            except ConnectionError:
                break
            size = int.from_bytes(header, "little")
            body = bytearray(size)
            _recv_exactly(conn, memoryview(body))
            conn.sendall(header)
            conn.sendall(body)
    else:
        import grpc

        from mutualmind.transport import server_credentials

        server = grpc.server(futures.ThreadPoolExecutor(4), options=OPTIONS)

        def exchange(requests: Iterator[bytes], context: object) -> Iterator[bytes]:
            yield from requests
        handler = grpc.stream_stream_rpc_method_handler(exchange, _same, _same)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("floor.Echo", {"Exchange": handler}),))
        if mode == "grpc_tls":
            port = server.add_secure_port("127.0.0.1:0", server_credentials(Path(certs), "node0", require_client_cert=True))
        else:
            port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        base = _cpu()
        Path(port_file).write_text(str(port))
        sys.stdin.read()
        server.stop(None)
    print(json.dumps({"cpu_s": _cpu() - base}), flush=True)   # serving only, not the start


def measure(mode: str, size: int, count: int, certs: Path, tmp: Path) -> dict[str, float]:
    port_file = tmp / f"port-{mode}-{size}"
    server = subprocess.Popen([sys.executable, __file__, "--serve", mode, "--certs", str(certs), "--port-file", str(port_file)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    while not port_file.exists() or not port_file.read_text():
        time.sleep(0.02)
    port = int(port_file.read_text())
    payload = os.urandom(size)
    if mode == "tcp":
        conn = socket.create_connection(("127.0.0.1", port))
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        header, back = size.to_bytes(8, "little"), bytearray(size)
        start_cpu, start = _cpu(), time.perf_counter()
        for _ in range(count):
            conn.sendall(header)
            conn.sendall(payload)
            _recv_exactly(conn, memoryview(bytearray(8)))
            _recv_exactly(conn, memoryview(back))
        wall, cpu = time.perf_counter() - start, _cpu() - start_cpu
        conn.close()
    else:
        import grpc

        from mutualmind.transport import channel_credentials, open_channel

        if mode == "grpc_tls":   # as the plane dials: its options, node0's name checked
            channel = open_channel(f"127.0.0.1:{port}", channel_credentials(certs, "node1"), server_name="node0",
                                   overrides=[*OPTIONS, ("grpc.enable_retries", 0)])
        else:
            channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=OPTIONS)
        grpc.channel_ready_future(channel).result(timeout=30)
        outgoing: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

        def requests() -> Iterator[bytes]:
            while (item := outgoing.get()) is not None:
                yield item
        responses = channel.stream_stream(METHOD, request_serializer=_same, response_deserializer=_same)(requests())
        outgoing.put(payload)
        next(responses)   # warm: the stream is open
        start_cpu, start = _cpu(), time.perf_counter()
        for _ in range(count):
            outgoing.put(payload)
            next(responses)
        wall, cpu = time.perf_counter() - start, _cpu() - start_cpu
        outgoing.put(None)
        channel.close()
    server_out, _ = server.communicate(timeout=60)
    server_cpu = json.loads(server_out.strip().splitlines()[-1])["cpu_s"]
    moved = 2 * size * count   # each byte sent once and received once
    return {"mode": mode, "kib": size // 1024, "echoes": count, "client_cpu_s": round(cpu, 3),
            "server_cpu_s": round(server_cpu, 3), "wall_s_per_echo": round(wall / count, 6),
            "ns_per_byte": round((cpu + server_cpu) / moved * 1e9, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kib", default="350,2048", help="message sizes in KiB, comma-separated")
    parser.add_argument("--mib-total", type=int, default=600, help="MiB sent each way per size and mode")
    parser.add_argument("--modes", default="tcp,grpc,grpc_tls")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", default="", help=argparse.SUPPRESS)
    parser.add_argument("--certs", default="", help=argparse.SUPPRESS)
    parser.add_argument("--port-file", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.certs, args.port_file)
        return 0
    from mutualmind.transport.pki import create_cluster

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        certs = Path(tmp) / "certs"
        create_cluster(certs, 2)
        for kib in (int(k) for k in args.kib.split(",")):
            size = kib * 1024
            count = max(10, (args.mib_total << 20) // size)
            for mode in args.modes.split(","):
                rows.append(measure(mode, size, count, certs, Path(tmp)))
    print(json.dumps({"echo": rows}) if args.json else "\n".join(map(str, rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
