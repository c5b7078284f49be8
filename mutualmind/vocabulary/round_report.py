"""A round's report: a bar chart of its contributions and payouts (`admin round report R
--png FILE` for the operator, `provider round-report R --png FILE` for a sponsor or
provider over the public port; each writes the PNG atomically).

Two panels over the same participants: the leave-one-out contribution of each dataset
(in metric units, the ±epsilon dead band shaded) and what it earned or lost (payout up,
slash down, in tokens), each bar labelled with its value; the metric is named on the
axis; a round that paid nothing says where the pool went (refunded to the sponsor), and
a failed or aborted round shows its failure reason instead of empty bars. Drawn with matplotlib's object API on an Agg canvas, so no
display and no global pyplot state are involved.
"""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.states import RoundStatus
from proto import market_pb2

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 120


def render_round_png(view: market_pb2.RoundView, *, epsilon_micro: int = 0) -> bytes:
    """The chart as PNG bytes (a round with no participants is refused)."""
    figure = round_figure(view, epsilon_micro=epsilon_micro)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def failure_reason(view: market_pb2.RoundView) -> str | None:
    """Why the round has no result to chart: aborted, or its last run failed; else None."""
    if view.status == RoundStatus.ABORTED:
        return view.message or "aborted (no reason recorded)"
    if not view.metrics_micro and view.failed_runs and view.message:
        return f"{view.failed_runs} failed run(s); last: {view.message}"
    return None


def round_figure(view: market_pb2.RoundView, *, epsilon_micro: int = 0) -> Figure:
    """The chart as a matplotlib Figure on an Agg canvas (tests read its texts).

    Bars carry their values; the contribution axis names the metric; when nothing was
    paid the refund to the sponsor is written on the payout panel; a failed or aborted
    round shows its failure reason in place of bars that would all be empty.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    parts = list(view.participants)
    if not parts:
        raise InvalidInput(f"round {view.round_id!r} has no participants to chart")
    metric = _metric(view)
    figure = Figure(figsize=(max(6.0, 1.2 * len(parts) + 2), 6.5), dpi=DPI,
                    layout="constrained")
    FigureCanvasAgg(figure)
    reason = failure_reason(view)
    if reason is not None:
        axes = figure.subplots()
        axes.set_axis_off()
        axes.set_title(f"round {view.round_id} ({view.status}) — pool {view.pool} tokens")
        refund = (f"\n{view.refund_to_sponsor} tokens back to {view.sponsor}"
                  if view.refund_to_sponsor else "")
        axes.text(0.5, 0.5, "\n".join(textwrap.wrap(f"no result: {reason}", 60)) + refund,
                  ha="center", va="center", fontsize="large", transform=axes.transAxes)
        return figure
    labels = [f"{p.provider_id}\n{p.dataset_id}" for p in parts]
    contributions = [p.contribution_micro / 1e6 for p in parts]
    payouts = [p.payout for p in parts]
    slashes = [-p.slashed for p in parts]
    xs = range(len(parts))
    top, bottom = figure.subplots(2, 1, sharex=True)
    colours = ["tab:green" if c > 0 else "tab:red" if c < 0 else "tab:gray"
               for c in contributions]
    bars = top.bar(xs, contributions, color=colours)
    if view.metrics_micro:
        top.bar_label(bars, labels=[f"{c:+.4f}" for c in contributions], fontsize="small")
    top.axhline(0, color="black", linewidth=0.8)
    if epsilon_micro:
        top.axhspan(-epsilon_micro / 1e6, epsilon_micro / 1e6, color="tab:gray", alpha=0.15,
                    label="±epsilon (no slash)")
        top.legend(loc="best", fontsize="small")
    top.set_ylabel(f"contribution ({metric}, leave-one-out)")
    status = view.status if view.metrics_micro else f"{view.status}, no result yet"
    top.set_title(f"round {view.round_id} ({status}) — pool {view.pool} tokens")
    paid = bottom.bar(xs, payouts, color="tab:blue", label="payout")
    slashed = bottom.bar(xs, slashes, color="tab:red", label="slash")
    bottom.bar_label(paid, labels=[str(v) if v else "" for v in payouts], fontsize="small")
    bottom.bar_label(slashed, labels=[str(-v) if v else "" for v in slashes],
                     fontsize="small")
    bottom.axhline(0, color="black", linewidth=0.8)
    bottom.set_ylabel("tokens")
    bottom.legend(loc="best", fontsize="small")
    if view.metrics_micro and not any(payouts):
        bottom.text(0.5, 0.5, f"nothing paid: {view.refund_to_sponsor} tokens refunded "
                              f"to {view.sponsor}",
                    ha="center", va="center", transform=bottom.transAxes)
    bottom.set_xticks(list(xs), labels, fontsize="small")
    return figure


def _metric(view: market_pb2.RoundView) -> str:
    try:
        spec = json.loads(view.model_spec_json or "{}")
    except json.JSONDecodeError:
        spec = {}
    metric = spec.get("metric") if isinstance(spec, dict) else None
    return str(metric) if metric else "log_loss"


def check_png_path(path: Path) -> None:
    """Refuse, before anything is fetched or drawn, a path the chart cannot go to."""
    if path.suffix.lower() != ".png":
        raise InvalidInput(f"--png {path} should end in .png (the chart is a PNG image)")
    if not path.parent.is_dir():
        raise InvalidInput(f"folder {path.parent} does not exist; create it or choose "
                           "another --png path")


def opened_epsilon_micro(view: market_pb2.RoundView) -> int:
    """The round's dead band from its sponsor-signed terms (the Market's GetRound carries
    them); 0 when the view has none."""
    try:
        payload = json.loads(view.opened_payload_json or "{}")
    except json.JSONDecodeError:
        return 0
    return int(payload.get("epsilon_micro", 0)) if isinstance(payload, dict) else 0
