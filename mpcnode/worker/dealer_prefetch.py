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
2. *Prefetch*: replay the traced requests once per step through the provider with party
   0's dealer call deferred: every party draws its PRG-derived parts locally in the
   same order as the dealer does, and party 0 collects all of its dealer-made parts in
   ONE request to the dealer (`batch`, served by `mpcnode.worker.ttp`). A run whose
   material exceeds MATERIAL_BUDGET_BYTES is fetched in chunks, one batch each, just
   before the chunk's first step (3 rounds on party 0 per later chunk).
3. *Train*: CrypTen's tuple cache serves every request from memory (a request the
   rehearsal did not predict still works: it falls back to the dealer, and shows up
   in the online round count).

The rehearsal and the first batch are the job's *offline* phase; their rounds are
reported apart from the online rounds per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

# the dealer functions a batched request may name (CrypTen's TTP server methods)
DEALER_FUNCTIONS = ("additive", "square", "binary", "wraps", "B2A")
OPS = ("mul", "matmul")   # the products the dealer makes Beaver triples for
BATCH_FUNCTION = "batch"


@dataclass(frozen=True)
class OfflineStats:
    """What the offline phase cost this party (CrypTen's communicator counters)."""

    rounds: int
    bytes: int
    comm_time_s: float
    wall_s: float
    requests: int  # dealer requests fetched before the first step


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


def warm_shapes() -> None:
    """Compute one answer size of each kind on tiny shapes, as a ready process's last
    preload step. The first `dealer_result_size` of a process runs torch's meta-tensor
    path for the first time, which imports and registers lazily: measured 1.9 s of CPU
    (0.7 s matmul, 1.3 s mul) in a dealer that had imported everything else, paid on a
    warm model's first dealer request of every job. No job data is involved."""
    small = torch.Size([2, 2])
    for op in OPS:
        dealer_result_size("additive", (small, small, op))
    dealer_result_size("binary", (small, small))


# material kept in memory at once per party; a longer run is fetched in chunks, each
# chunk one batched request (3 rounds on party 0) just before its first step
MATERIAL_BUDGET_BYTES = 256 << 20


def material_bytes(requests: Sequence[tuple[str, tuple, dict]]) -> int:
    """Memory one party holds for these requests once fetched (int64 tensors)."""
    total = 0
    for name, args, _ in requests:
        if name == "generate_additive_triple":
            sizes = [torch.Size(args[0]), torch.Size(args[1]), dealer_result_size("additive", args)]
        elif name == "generate_binary_triple":
            sizes = [torch.Size(args[0]), torch.Size(args[1]), dealer_result_size("binary", args)]
        else:
            sizes = [torch.Size(args[0])] * 2
        total += 8 * sum(size.numel() for size in sizes)
    return total


class DealerPrefetch:
    """Rehearse each step shape once; fetch the run's material in as few batches as
    memory allows. Every party must create it with the same arguments at the same
    point, and call `before_step(i)` before every step i."""

    def __init__(
        self,
        rehearsals: Mapping[int, Callable[[], object]],
        step_shapes: Sequence[int],
        budget_bytes: int | None = None,
    ) -> None:
        import crypten
        import crypten.communicator as comm

        communicator = comm.get()
        before = dict(communicator.get_communication_stats())
        started = time.monotonic()
        self._provider = crypten.mpc.get_default_provider()
        self._requests: dict[int, list[tuple[str, tuple, dict]]] = {}
        for shape in sorted(set(step_shapes)):
            self._provider.request_cache = []
            self._provider.trace(True)
            try:
                rehearsals[shape]()
            finally:
                self._provider.trace(False)
            self._requests[shape] = list(self._provider.request_cache)
            self._provider.request_cache = []
        self._shapes = list(step_shapes)
        self._chunks = _chunk_starts(
            [material_bytes(self._requests[shape]) for shape in self._shapes],
            MATERIAL_BUDGET_BYTES if budget_bytes is None else budget_bytes,
        )
        first = self.before_step(0)
        after = dict(communicator.get_communication_stats())
        self.offline = OfflineStats(
            rounds=int(after["rounds"] - before["rounds"]),
            bytes=int(after["bytes"] - before["bytes"]),
            comm_time_s=float(after["time"] - before["time"]),
            wall_s=time.monotonic() - started,
            requests=first,
        )

    @property
    def chunks(self) -> int:
        return len(self._chunks)

    def before_step(self, index: int) -> int:
        """Fetch the chunk starting at step `index`, if one does; returns its requests."""
        if index not in self._chunks:
            return 0
        end = self._chunks[self._chunks.index(index) + 1] if index != self._chunks[-1] else len(self._shapes)
        requests = [request for shape in self._shapes[index:end] for request in self._requests[shape]]
        fill_cache_batched(self._provider, requests)
        return len(requests)


def _chunk_starts(step_bytes: Sequence[int], budget: int) -> list[int]:
    """Indices where a new chunk of steps starts, each chunk within `budget` (at least
    one step per chunk)."""
    starts: list[int] = []
    held = budget + 1
    for index, size in enumerate(step_bytes):
        if held + size > budget:
            starts.append(index)
            held = 0
        held += size
    return starts


class MaterialCache(dict):  # type: ignore[type-arg]
    """CrypTen's tuple cache, without the requests whose material is used up.

    CrypTen serves a request from the cache when its key is in `tuple_cache.keys()` and
    pops the list, but never deletes a list it emptied: a later request of the same
    function and shape that was not prefetched (the validation table's exp when it has as
    many rows as the training table, the newton solver's steps having used up theirs)
    then pops an empty list and the job fails (IndexError). Listing only the keys that
    still hold material sends such a request to the dealer, as an unprefetched one is.
    """

    def keys(self) -> set:  # type: ignore[override]
        return {key for key, material in self.items() if material}


def fill_cache_batched(provider: Any, requests: list[tuple[str, tuple, dict]]) -> None:
    """CrypTen's `fill_cache`, with party 0's dealer calls gathered into one request."""
    import crypten.communicator as comm
    from crypten.mpc.provider.ttp_provider import TTPClient

    if not requests:
        return
    if not isinstance(provider.tuple_cache, MaterialCache):
        provider.tuple_cache = MaterialCache(provider.tuple_cache)
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
