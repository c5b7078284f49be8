"""How a share travels to a node: the size of one upload message and the slicing into it."""

from __future__ import annotations

from collections.abc import Iterator

CHUNK_BYTES = 1 << 20  # 1 MiB a message, well under the 8 MiB message limit


def iter_chunks(data: memoryview | bytes, chunk_bytes: int = CHUNK_BYTES) -> Iterator[memoryview]:
    """Slices of `data` of at most `chunk_bytes` without copying."""
    view = memoryview(data).cast("B")
    for start in range(0, len(view), chunk_bytes):
        yield view[start : start + chunk_bytes]
