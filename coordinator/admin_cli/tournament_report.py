"""`admin tournament report T --png FILE`: a tournament's outcome in one picture.

Three panels over the models, in submission order: each model's weight in the
metamodel (public: the stake-weighted capped rule, `metamodel_weights`), each model's
contribution and each of its datasets' contributions within it (metric units), and the
two-level flow of tokens (the model's reward split into what its modeler kept and what
its datasets were paid, downwards what was slashed from its stake and from its
datasets). Drawn with matplotlib's object API on an Agg canvas; written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from mutualmind.errors import InvalidInput
from mutualmind.transport.atomic_file import write_atomic
from mutualmind.vocabulary.metamodel_weights import metamodel_weights

DPI = 120


def render_tournament_png(view: dict[str, Any]) -> bytes:
    """The picture as PNG bytes; a tournament without models is refused."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    models = view["models"]
    if not models:
        raise InvalidInput(f"tournament {view['tournament_id']!r} has no models to chart")
    names = [m["model_id"] for m in models]
    weights = metamodel_weights([m["stake"] for m in models], view["weight_cap_ppm"])
    figure = Figure(figsize=(max(7.0, 1.6 * len(models) + 3), 9), dpi=DPI)
    FigureCanvasAgg(figure)
    top, middle, bottom = figure.subplots(3, 1)
    metric = view["metamodel_metric_micro"]
    figure.suptitle(f"tournament {view['tournament_id']} ({view['status']}): "
                    + (f"metamodel {view['task']['metric']} {metric / 1e6:.4f}, threshold "
                       f"{view['threshold_micro'] / 1e6:g}" if metric is not None else "no result yet")
                    + (f"; pool refunded ({view['refund_to_sponsor']})" if view["refund_to_sponsor"] else ""))
    positions = list(range(len(models)))
    top.bar(positions, [w / 1e4 for w in weights], color="#4c72b0")
    top.set_ylabel("weight in metamodel (%)")
    top.set_xticks(positions, names)
    for position, m in enumerate(models):
        parts = m["dataset_contributions_micro"] or []
        width = 0.8 / (len(parts) + 1)
        contribution = (m["contribution_micro"] or 0) / 1e6
        middle.bar(position - 0.4 + width / 2, contribution, width, color="#55a868" if contribution >= 0 else "#c44e52")
        for j, (dataset, part) in enumerate(zip(m["datasets"], parts, strict=False)):
            middle.bar(position - 0.4 + width * (j + 1.5), part / 1e6, width, color="#8c8c8c")
            middle.annotate(dataset, (position - 0.4 + width * (j + 1.5), part / 1e6), fontsize=6, rotation=90,
                            ha="center", va="bottom" if part >= 0 else "top")
    middle.axhline(0, color="black", linewidth=0.6)
    middle.set_ylabel(f"contribution ({view['task']['metric']})")
    middle.set_xticks(positions, names)
    kept = [sum(p["amount"] for p in m["payouts"] if not p["dataset_id"]) for m in models]
    to_data = [sum(p["amount"] for p in m["payouts"] if p["dataset_id"]) for m in models]
    bottom.bar(positions, kept, color="#4c72b0", label="kept by the modeler")
    bottom.bar(positions, to_data, bottom=kept, color="#55a868", label="paid to its datasets")
    bottom.bar(positions, [-m["slashed"] for m in models], color="#c44e52", label="slashed from its stake")
    bottom.bar(positions, [-m["datasets_slashed"] for m in models], bottom=[-m["slashed"] for m in models],
               color="#dd8452", label="slashed from its datasets")
    bottom.axhline(0, color="black", linewidth=0.6)
    bottom.set_ylabel("tokens")
    bottom.set_xticks(positions, names)
    bottom.legend(fontsize=7, loc="best")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write_tournament_png(view: dict[str, Any], path: Path) -> None:
    write_atomic(path, render_tournament_png(view))
