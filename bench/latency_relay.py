"""A delaying TCP relay on loopback: the WAN mode of `bench/train.py` (issue 12).

Issue 12 asks for the WAN benchmark with `tc netem` latency inside network namespaces;
this machine's kernel has no netem qdisc (`tc qdisc add dev lo root netem delay 10ms`
answers "Specified qdisc kind is unknown"; only tbf and the like exist). A relay gives
the same thing a fixed netem delay does, for the traffic that matters: each relay
listens on loopback and forwards every connection to one party's real MPC address,
holding each direction's bytes for RTT/2 before passing them on - order kept, nothing
throttled (it reads as fast as the sender writes and queues without bound), Nagle off
on both sides (asyncio sets TCP_NODELAY) so it adds no delay of its own beyond the
event loop's millisecond. TLS runs end to end through it, untouched.

A connection's handshake crosses the relay too, so the TCP and TLS set-up pay the
latency as they would on a WAN; the benchmark measures only after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

READ_BYTES = 1 << 20


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    """Copy reader -> writer, each chunk held until `delay_s` after it arrived."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.ensure_future(deliver())
    loop = asyncio.get_running_loop()
    try:
        while True:
            data = await reader.read(READ_BYTES)
            queue.put_nowait((loop.time() + delay_s, data))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()
        writer.close()


class LatencyRelay:
    """Relays `127.0.0.1:<port>` -> each target, `rtt_ms` round trip added, in a thread."""

    def __init__(self, targets: list[str], rtt_ms: float) -> None:
        self.targets = targets
        self.delay_s = rtt_ms / 2000.0
        self.addresses: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="latency-relay")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        servers = self._loop.run_until_complete(self._listen())
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            for server in servers:
                server.close()
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    async def _listen(self) -> list[asyncio.base_events.Server]:
        servers = []
        for target in self.targets:
            host, port = target.rsplit(":", 1)

            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                             host: str = host, port: int = int(port)) -> None:
                try:
                    up_reader, up_writer = await asyncio.open_connection(host, port)
                except OSError:
                    writer.close()
                    return
                await asyncio.gather(_pump(reader, up_writer, self.delay_s),
                                     _pump(up_reader, writer, self.delay_s), return_exceptions=True)
                up_writer.close()
                writer.close()

            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            servers.append(server)
            self.addresses.append(f"127.0.0.1:{server.sockets[0].getsockname()[1]}")
        return servers

    def start(self) -> LatencyRelay:
        self._thread.start()
        self._ready.wait(10.0)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)


@contextlib.contextmanager
def relays(targets: list[str], rtt_ms: float) -> Iterator[list[str]]:
    """The relay addresses standing for `targets` (the targets themselves at 0 ms)."""
    if rtt_ms <= 0:
        yield list(targets)
        return
    relay = LatencyRelay(targets, rtt_ms).start()
    try:
        yield relay.addresses
    finally:
        relay.stop()

