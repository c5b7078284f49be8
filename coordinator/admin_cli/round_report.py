"""`admin round report R --png FILE`: the chart (`mutualmind.vocabulary.round_report`)
written atomically."""

from __future__ import annotations

from pathlib import Path

from mutualmind.transport.atomic_file import write_atomic
from mutualmind.vocabulary.round_report import check_png_path, render_round_png
from proto import market_pb2


def write_round_png(view: market_pb2.RoundView, path: Path, *, epsilon_micro: int = 0) -> int:
    """Render and write the chart; returns its size in bytes."""
    check_png_path(path)
    data = render_round_png(view, epsilon_micro=epsilon_micro)
    write_atomic(path, data)
    return len(data)
