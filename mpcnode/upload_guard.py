"""How much of a node one uploader may hold: concurrent streams and a minimum rate.

The public port takes uploads from anyone, and each upload stream holds one of the
server's threads while it runs. Without bounds, a few clients trickling bytes (8 streams
of 70 kB every 10 s did it) hold every thread, and the node stops answering health
checks and honest uploads. So:

  * at most `StreamLimits.total` uploads run at once, always fewer than the server's
    threads (`reserved_threads` stay free for health checks and model downloads);
  * at most `StreamLimits.per_provider` of them upload datasets of one provider;
  * an upload slower than `StallPolicy.min_rate` bytes/s, averaged over every
    `window_s` after a `grace_s` start-up, is cancelled (the servicer's watchdog).

A refused stream gets QuotaExceeded (RESOURCE_EXHAUSTED) at once, before it is read.
No gRPC here: the servicer (`mpcnode.servicer`) applies these.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from mutualmind.errors import InvalidInput, QuotaExceeded


@dataclass(frozen=True)
class StallPolicy:
    """An upload must average at least `min_rate` bytes/s over every `window_s` seconds
    after its first `grace_s` seconds (TLS set-up, the provider's first chunk)."""

    grace_s: float = 10.0
    window_s: float = 10.0
    min_rate: int = 64 * 1024

    def __post_init__(self) -> None:
        if self.grace_s < 0 or self.window_s <= 0 or self.min_rate < 0:
            raise InvalidInput(f"stall policy {self} needs grace >= 0, window > 0, rate >= 0")

    @property
    def min_bytes_per_window(self) -> int:
        return int(self.min_rate * self.window_s)


@dataclass(frozen=True)
class StreamLimits:
    """Concurrent upload streams: per provider, and in total (None: the server's threads
    minus `reserved_threads`)."""

    per_provider: int = 2
    total: int | None = None
    reserved_threads: int = 2

    def for_pool(self, max_workers: int) -> StreamLimits:
        """These limits for a server of `max_workers` threads (total resolved and checked)."""
        room = max_workers - self.reserved_threads
        total = room if self.total is None else self.total
        if self.per_provider < 1 or total < 1 or total > room:
            raise InvalidInput(
                f"upload limits per provider {self.per_provider}, total {total} do not fit a server "
                f"of {max_workers} threads with {self.reserved_threads} kept for health checks: "
                "use at least 1 per provider and a total below the thread count")
        return replace(self, total=total)


class UploadTicket:
    """One admitted upload; `for_provider` takes the provider's slot, `release` frees both."""

    def __init__(self, guard: UploadGuard) -> None:
        self._guard = guard
        self._provider: str | None = None
        self._released = False

    def for_provider(self, provider_id: str) -> None:
        self._guard._claim_provider(provider_id)
        self._provider = provider_id

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._guard._release(self._provider)


class UploadGuard:
    """The node's upload slots (thread-safe) and the stall policy every upload obeys."""

    def __init__(self, stall: StallPolicy = StallPolicy(),
                 limits: StreamLimits = StreamLimits(total=6)) -> None:
        if limits.total is None:
            raise InvalidInput("resolve the total with StreamLimits.for_pool(max_workers) first")
        self.stall = stall
        self.limits = limits
        self._lock = threading.Lock()
        self._running = 0
        self._per_provider: dict[str, int] = {}

    def admit(self) -> UploadTicket:
        """A ticket for one more upload, or QuotaExceeded when `total` already run."""
        with self._lock:
            if self._running >= (self.limits.total or 0):
                raise QuotaExceeded(
                    f"this node already receives {self._running} uploads (its limit); "
                    "retry in a minute")
            self._running += 1
        return UploadTicket(self)

    def _claim_provider(self, provider_id: str) -> None:
        with self._lock:
            held = self._per_provider.get(provider_id, 0)
            if held >= self.limits.per_provider:
                raise QuotaExceeded(
                    f"this node already receives {held} uploads of {provider_id!r}'s datasets "
                    f"(at most {self.limits.per_provider} at once); wait for them to finish, then retry")
            self._per_provider[provider_id] = held + 1

    def _release(self, provider_id: str | None) -> None:
        with self._lock:
            self._running -= 1
            if provider_id is not None:
                left = self._per_provider[provider_id] - 1
                if left:
                    self._per_provider[provider_id] = left
                else:
                    del self._per_provider[provider_id]
