"""The job's torch.distributed rendezvous, listening only on the address the job was given.

Rank 0 hosts the rendezvous store (a c10d TCPStore) that every party and the dealer's TTP
process meet at; whoever can read it learns the job's peers and can write into it.
torch's own `tcp://` handler binds that store to every interface (`[::]`), whatever host
the URL names. This module registers a `boundtcp://` scheme whose handler, on rank 0,
binds a listening socket to exactly `master_addr:master_port` (the node's own address
on the job's network, loopback in a local cluster) and hands it to the TCPStore
(`master_listen_fd`); every other rank connects as a plain client, as with `tcp://`.
Phase 1 of the data plane only: the gRPC data plane replaces this store entirely.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

from mutualmind.errors import InvalidInput

SCHEME = "boundtcp"
LISTEN_BACKLOG = 128
_lock = threading.Lock()


def rendezvous_url(host: str, port: int) -> str:
    """The init method URL for a job whose rank 0 listens on `host:port` only."""
    return f"{SCHEME}://{f'[{host}]' if ':' in host else host}:{port}"


def register() -> None:
    """Teach torch.distributed the `boundtcp://` scheme (idempotent)."""
    from torch.distributed import register_rendezvous_handler

    with _lock:
        try:
            register_rendezvous_handler(SCHEME, _handler)
        except RuntimeError:  # already registered in this process
            pass


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket bound to `host:port` exactly (host resolved once)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise InvalidInput(f"the job's master_addr {host!r} does not resolve ({err})") from None
    family, _, _, _, address = infos[0]
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(LISTEN_BACKLOG)
    except OSError:
        listener.close()
        raise
    return listener


def _handler(url: str, timeout: timedelta = timedelta(minutes=30),
             **_: Any) -> Iterator[tuple[Any, int, int]]:
    from torch.distributed import TCPStore

    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    if parsed.hostname is None or parsed.port is None:
        raise InvalidInput(f"rendezvous {url!r} needs host and port")
    rank, world_size = int(query["rank"][0]), int(query["world_size"][0])
    if rank == 0:
        listener = bind_listener(parsed.hostname, parsed.port)
        # the store owns the descriptor from here on (detach: Python must not close it)
        store = TCPStore(parsed.hostname, parsed.port, world_size, True, timeout,
                         master_listen_fd=listener.detach())
    else:
        store = TCPStore(parsed.hostname, parsed.port, world_size, False, timeout)
    yield store, rank, world_size
    raise RuntimeError(f"{SCHEME}:// cannot re-rendezvous; the job fails and is re-run")
