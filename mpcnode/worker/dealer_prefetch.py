"""Dealer material for a whole training run, fetched in one batched exchange before it.

With CrypTen's TTP provider, party 0 asks the dealer for its share of every Beaver
triple, square pair, wrap count and B2A bit the moment an operation needs it: three
messages per request (request, size, broadcast of the result) on the critical path of
every multiplication, truncation and comparison. That is why party 0 used to pay about
four times the rounds of the others per training step.

Training is oblivious: which dealer requests a step makes depends only on tensor
shapes, never on data. So:

1. *Rehearse*: run one step on public zeros of the real batch shape while CrypTen's
   provider traces its requests (`TupleProvider.trace`). This touches no data.
2. *Prefetch*: replay the traced requests `count` times through the provider with party
   0's dealer call deferred: every party draws its PRG-derived parts locally in the
   same order as the dealer does, and party 0 collects all of its dealer-made parts in
   ONE request to the dealer (`batch`, served by `mpcnode.worker.ttp`).
3. *Train*: CrypTen's tuple cache serves every request from memory (a request the
   rehearsal did not predict still works: it falls back to the dealer, and shows up
   in the online round count).

Both the rehearsal and the prefetch are the job's *offline* phase; their rounds are
reported apart from the online rounds per step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

# the dealer functions a batched request may name (CrypTen's TTP server methods)
DEALER_FUNCTIONS = ("additive", "square", "binary", "wraps", "B2A")
BATCH_FUNCTION = "batch"


@dataclass(frozen=True)
class OfflineStats:
    """What the offline phase cost this party (CrypTen's communicator counters)."""

    rounds: int
    bytes: int
    comm_time_s: float
    wall_s: float
    requests: int  # dealer requests served from the prefetched cache


def dealer_result_size(function: str, args: Sequence[Any]) -> torch.Size:
    """Shape of the dealer's answer to one request, computed without computing it."""
    if function == "additive":
        size0, size1, op = args[0], args[1], args[2]
        left = torch.empty(size0, device="meta")
        right = torch.empty(size1, device="meta")
        return getattr(torch, op)(left, right, *args[3:]).size()
    if function == "binary":
        return torch.broadcast_shapes(tuple(args[0]), tuple(args[1]))
    if function in ("square", "wraps", "B2A"):
        return torch.Size(args[0])
    raise ValueError(f"unknown dealer function {function!r}")


def prefetch(rehearsals: Sequence[tuple[Callable[[], object], int]]) -> OfflineStats:
    """Rehearse each step shape once, then fetch `count` steps' material in one exchange.

    `rehearsals` lists (run one step on public zeros, number of real steps of that
    shape). Every party must call this with the same arguments at the same point.
    """
    import time

    import crypten
    import crypten.communicator as comm

    communicator = comm.get()
    before = dict(communicator.get_communication_stats())
    started = time.monotonic()
    provider = crypten.mpc.get_default_provider()
    requests: list[tuple[str, tuple, dict]] = []
    for rehearse, count in rehearsals:
        provider.request_cache = []
        provider.trace(True)
        try:
            rehearse()
        finally:
            provider.trace(False)
        requests.extend(list(provider.request_cache) * count)
        provider.request_cache = []
    _fill_cache_batched(provider, requests)
    after = dict(communicator.get_communication_stats())
    return OfflineStats(
        rounds=int(after["rounds"] - before["rounds"]),
        bytes=int(after["bytes"] - before["bytes"]),
        comm_time_s=float(after["time"] - before["time"]),
        wall_s=time.monotonic() - started,
        requests=len(requests),
    )


def _fill_cache_batched(provider: Any, requests: list[tuple[str, tuple, dict]]) -> None:
    """CrypTen's `fill_cache`, with party 0's dealer calls gathered into one request."""
    import crypten.communicator as comm
    from crypten.mpc.provider.ttp_provider import TTPClient

    if not requests:
        return
    client = TTPClient.get()
    pending: list[tuple[tuple[str, tuple, dict], torch.Tensor]] = []
    is_party_zero = comm.get().get_rank() == 0

    def deferred(function: str, device: object, *args: Any, **kwargs: Any) -> torch.Tensor:
        # the tensor is filled in place once the batched answer arrives; CrypTen's
        # from_shares keeps this very tensor as the share (no copy)
        placeholder = torch.empty(dealer_result_size(function, args), dtype=torch.long)
        pending.append(((function, tuple(args), dict(kwargs)), placeholder))
        return placeholder

    if is_party_zero:
        client.ttp_request = deferred  # instance attribute shadows the method
    try:
        for name, args, kwargs in requests:
            result = object.__getattribute__(provider, name)(*args, **kwargs)
            key = (name, args, frozenset(kwargs.items()))
            provider.tuple_cache.setdefault(key, []).append(result)
    finally:
        if is_party_zero:
            del client.ttp_request
    if is_party_zero and pending:
        flat = client.ttp_request(BATCH_FUNCTION, None, [request for request, _ in pending])
        offset = 0
        for _, placeholder in pending:
            size = placeholder.numel()
            placeholder.copy_(flat[offset : offset + size].reshape(placeholder.shape))
            offset += size
        if offset != flat.numel():
            raise RuntimeError(f"dealer answered {flat.numel()} values, expected {offset}")


def serve_batch(server: Any, requests: object) -> torch.Tensor:
    """The dealer side of a batched request: every answer, flattened, in request order.

    `requests` came from party 0 over the wire (CrypTen's restricted unpickler), so its
    shape is checked before anything is computed.
    """
    if not isinstance(requests, list) or not requests:
        raise ValueError("a batched dealer request must be a non-empty list")
    parts = []
    for request in requests:
        if not (isinstance(request, tuple) and len(request) == 3):
            raise ValueError("each batched dealer request must be (function, args, kwargs)")
        function, args, kwargs = request
        if function not in DEALER_FUNCTIONS or not isinstance(args, tuple) or not isinstance(kwargs, dict):
            raise ValueError(f"unknown dealer request {function!r}")
        parts.append(getattr(server, function)(*args, **kwargs).reshape(-1))
    return torch.cat(parts)
