"""The WAN benchmark's delaying relay (bench/latency_relay.py; netem is absent here).

The plane's WAN figures are only as good as the relay: a round trip through it must
take at least the RTT asked for, and bytes must arrive whole and in order, both ways.
"""

from __future__ import annotations

import socket
import threading
import time

from bench.latency_relay import relays


def _echo_server() -> tuple[socket.socket, str]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while data := conn.recv(1 << 16):
                conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return server, f"127.0.0.1:{server.getsockname()[1]}"


def test_the_relay_adds_the_round_trip_and_keeps_bytes_in_order() -> None:
    server, address = _echo_server()
    payload = bytes(range(256)) * 12_000                      # 3 MB, many reads and writes
    with server, relays([address], rtt_ms=40.0) as (relayed,):
        assert relayed != address
        host, port = relayed.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            trips = []
            for _ in range(3):
                started = time.perf_counter()
                sock.sendall(b"x")
                assert sock.recv(1) == b"x"
                trips.append(time.perf_counter() - started)
            assert min(trips) >= 0.040                         # 20 ms each way, at least
            sender = threading.Thread(target=sock.sendall, args=(payload,))
            sender.start()
            received = bytearray()
            while len(received) < len(payload):
                chunk = sock.recv(1 << 20)
                assert chunk, "the relay closed the connection early"
                received += chunk
            sender.join()
            assert bytes(received) == payload


def test_no_latency_means_no_relay() -> None:
    with relays(["127.0.0.1:1"], rtt_ms=0.0) as addresses:
        assert addresses == ["127.0.0.1:1"]
