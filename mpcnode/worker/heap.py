"""The worker's heap policy on the gRPC data plane (`fix_mmap_threshold`, `freeze_imports`)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys

# glibc's M_MMAP_THRESHOLD (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 4 << 20
TRIM_THRESHOLD_BYTES = 64 << 20


# A party's environment (set by whoever starts it: torch reads it once, at its first
# allocation). torch then puts allocations of 2 MiB and more on transparent huge pages
# (aligned, madvise): a fresh 32 MB tensor faults 16 pages instead of 8,192 - clone/add
# of 32 MB measured 16-18 ms -> 5-7 ms here. CrypTen makes a fresh tensor per operation.
HUGE_PAGES_ENV = {"THP_MEM_ALLOC_ENABLE": "1"}


def fix_mmap_threshold() -> None:
    """Keep the plane's buffers from swelling the heap (glibc only; elsewhere a no-op).

    The plane moves every message through short-lived 2 MiB frames on several threads.
    glibc raises its mmap threshold each time a large block is freed, after which
    blocks that size come from per-thread heaps that it rarely gives back: measured on a
    2^19-row job, +250 MB peak RSS per party over gloo. A fixed 4 MiB threshold keeps
    frames in the heap (reused at once) and returns every larger block to the system
    when freed: the peak is then gloo's (bench/train.py's peak_rss_mb).

    A fixed threshold also fixes glibc's trim threshold at its 128 KiB default, so each
    freed frame at the top of a heap went back to the system and the next one faulted
    its pages in again: a third of a party's CPU on large messages (perf,
    bench/plane_throughput.py: 0.40 -> 0.30 CPU s per 32 MiB all_reduce). Up to 64 MiB
    of free heap is kept for reuse instead.
    """
    if not sys.platform.startswith("linux"):
        return
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    except (OSError, AttributeError):   # not glibc (musl has no mallopt): nothing to tune
        return


def freeze_imports() -> None:
    """Hide every object alive now - the imports of torch, CrypTen and grpc, about a
    million objects that live as long as the process - from the garbage collector
    (`gc.freeze`). The plane allocates a few objects per frame, enough to trigger
    collections, and every full one walked them all: ~10% of a party's CPU on large
    messages (perf, bench/plane_throughput.py). Call it once the party is set up."""
    gc.freeze()
