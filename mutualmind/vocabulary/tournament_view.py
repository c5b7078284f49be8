"""A tournament as text: what `admin tournament show` and `modeler show` print.

The input is the coordinator's summary (`TournamentView.view_json`: terms, models with
stakes, contributions and the tokens each moved, the metamodel's metric), so the operator
and a modeler read the same lines.
"""

from __future__ import annotations

from typing import Any


def tournament_text(v: dict[str, Any]) -> str:
    """A tournament as lines of text: terms, then one line per model and its datasets."""
    metric = v["metamodel_metric_micro"]
    result = f"  metamodel {metric / 1e6:.6f}" if metric is not None else "  no result yet"
    if v["refund_to_sponsor"]:
        result += f"; pool refunded to the sponsor: {v['refund_to_sponsor']}"
    lines = [f"tournament {v['tournament_id']} [{v['status']}] sponsor {v['sponsor']}: "
             f"{v['task']['label_kind']} by {v['task']['metric']}, pool {v['pool']}, "
             f"threshold {v['threshold_micro'] / 1e6:g}, slash {v['slash_rate_ppm'] / 1e4:g}%, "
             f"cap {v['weight_cap_ppm'] / 1e4:g}%", result]
    for m in v["models"]:
        contribution = m["contribution_micro"]
        shown = f"{contribution / 1e6:+.6f}" if contribution is not None else "-"
        lines.append(f"  {m['model_id']:16} {m['modeler']:14} {m['kind']:8} stake {m['stake']:>7} "
                     f"contribution {shown:>10} rewarded {m['rewarded']:>7} slashed "
                     f"{m['slashed'] + m['datasets_slashed']:>6}"
                     + (f"  copy of {m['copy_of']}" if m.get("copy_of") else ""))
        parts = m["dataset_contributions_micro"] or [None] * len(m["datasets"])
        for dataset, part in zip(m["datasets"], parts, strict=True):
            lines.append(f"      {dataset:24} {'-' if part is None else f'{part / 1e6:+.6f}'}")
    return "\n".join(lines)


def tournaments_text(views: list[dict[str, Any]]) -> str:
    """One line per tournament: id, status, pool, models and eligible datasets."""
    return "\n".join(f"{v['tournament_id']:24} {v['status']:10} pool {v['pool']:>8}  models {len(v['models'])}  "
                     f"datasets {','.join(v['datasets'])}" for v in views)
