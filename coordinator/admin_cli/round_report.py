"""`admin round report R --png FILE`: a bar chart of a round's contributions and payouts.

Two panels over the same participants: the leave-one-out contribution of each dataset
(in metric units, the ±epsilon dead band shaded) and what it earned or lost (payout up,
slash down, in tokens). Drawn with matplotlib's object API on an Agg canvas, so no
display and no global pyplot state are involved; the file is written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

from mutualmind.errors import InvalidInput
from mutualmind.transport.atomic_file import write_atomic
from proto import market_pb2

DPI = 120


def render_round_png(view: market_pb2.RoundView, *, epsilon_micro: int = 0) -> bytes:
    """The chart as PNG bytes (a round with no participants is refused)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    parts = list(view.participants)
    if not parts:
        raise InvalidInput(f"round {view.round_id!r} has no participants to chart")
    labels = [f"{p.provider_id}\n{p.dataset_id}" for p in parts]
    contributions = [p.contribution_micro / 1e6 for p in parts]
    payouts = [p.payout for p in parts]
    slashes = [-p.slashed for p in parts]
    xs = range(len(parts))

    figure = Figure(figsize=(max(6.0, 1.2 * len(parts) + 2), 6.5), dpi=DPI,
                    layout="constrained")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True)
    colours = ["tab:green" if c > 0 else "tab:red" if c < 0 else "tab:gray"
               for c in contributions]
    top.bar(xs, contributions, color=colours)
    top.axhline(0, color="black", linewidth=0.8)
    if epsilon_micro:
        top.axhspan(-epsilon_micro / 1e6, epsilon_micro / 1e6, color="tab:gray", alpha=0.15,
                    label="±epsilon (no slash)")
        top.legend(loc="best", fontsize="small")
    top.set_ylabel("contribution (metric units)")
    status = view.status if view.metrics_micro else f"{view.status}, no result yet"
    top.set_title(f"round {view.round_id} ({status}) — pool {view.pool} tokens")
    bottom.bar(xs, payouts, color="tab:blue", label="payout")
    bottom.bar(xs, slashes, color="tab:red", label="slash")
    bottom.axhline(0, color="black", linewidth=0.8)
    bottom.set_ylabel("tokens")
    bottom.legend(loc="best", fontsize="small")
    bottom.set_xticks(list(xs), labels, fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write_round_png(view: market_pb2.RoundView, path: Path, *, epsilon_micro: int = 0) -> int:
    """Render and write the chart; returns its size in bytes."""
    if path.suffix.lower() != ".png":
        raise InvalidInput(f"--png {path} should end in .png (the chart is a PNG image)")
    if not path.parent.is_dir():
        raise InvalidInput(f"folder {path.parent} does not exist; create it or choose "
                           "another --png path")
    data = render_round_png(view, epsilon_micro=epsilon_micro)
    write_atomic(path, data)
    return len(data)
