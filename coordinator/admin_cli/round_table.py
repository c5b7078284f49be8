"""A round for people (a rich table) and for scripts (a JSON object), from a RoundView.

Contributions are the leave-one-out differences (or Banzhaf values, with their standard
errors) in millionths of the metric, shown as signed decimals; stakes, payouts and
slashes are integer token units. Pure: the view comes from the Admin or Market API,
nothing here talks to the network.
"""

from __future__ import annotations

from typing import Any

from coordinator.admin_cli.terminal import micro
from mutualmind.vocabulary.round_json import round_json as round_json  # one JSON for both roles
from mutualmind.vocabulary.round_json import round_parties, round_spec, shows_errors
from proto import market_pb2


def round_table(view: market_pb2.RoundView) -> Any:
    """Provider, dataset, rows, stake, contribution (and its standard error for a Banzhaf
    round), payout, slash; totals in the footer."""
    from rich.table import Table

    spec = round_spec(view)
    caption = [f"status {view.status}", f"sponsor {view.sponsor}", f"pool {view.pool}",
               f"model {spec.get('kind', '?')} ({spec.get('metric', '?')})",
               f"validation {view.validation_dataset}"]
    if view.metrics_micro:
        caption.append(f"full-model {spec.get('metric', 'metric')} "
                       f"{micro(view.metrics_micro[0]).lstrip('+')}")
    if view.refund_to_sponsor:
        caption.append(f"refund to sponsor {view.refund_to_sponsor}")
    if view.message:
        caption.append(f"note: {view.message}")
    parts = list(view.participants)
    table = Table(title=f"round {view.round_id}", caption="  ".join(caption),
                  show_footer=True)
    table.add_column("provider", footer="total", no_wrap=True)
    table.add_column("dataset", no_wrap=True)
    table.add_column("rows", justify="right", footer=str(sum(p.rows for p in parts)))
    table.add_column("stake", justify="right", footer=str(sum(p.stake for p in parts)))
    table.add_column("contribution", justify="right")
    errors = shows_errors(view)
    if errors:  # Banzhaf: payouts and slashes judge value -+ K_SIGMA standard errors
        table.add_column("± error", justify="right")
    table.add_column("payout", justify="right", footer=str(sum(p.payout for p in parts)))
    table.add_column("slash", justify="right", footer=str(sum(p.slashed for p in parts)))
    for p in parts:
        colour = "green" if p.contribution_micro > 0 else "red" if p.contribution_micro < 0 else ""
        contribution = micro(p.contribution_micro) if view.metrics_micro else "-"
        if colour and view.metrics_micro:
            contribution = f"[{colour}]{contribution}[/{colour}]"
        error = [("±" + micro(p.error_micro).lstrip("+") if view.metrics_micro else "-")] if errors else []
        table.add_row(p.provider_id, p.dataset_id, str(p.rows), str(p.stake), contribution, *error,
                      str(p.payout), str(p.slashed))
    communication = communication_table(view)
    if communication is None:
        return table
    from rich.console import Group

    return Group(table, communication)


# (column, stats key, format): what each node measured in its last job of the round
_COMM_COLUMNS = (
    ("rounds/step", "rounds_per_step", "{:.0f}"),
    ("bytes/step", "bytes_per_step", "{:,.0f}"),
    ("offline rounds", "offline_rounds", "{:d}"),
    ("offline bytes", "offline_bytes", "{:,d}"),
    ("eval rounds", "rounds_evaluation", "{:d}"),
    ("rounds", "rounds", "{:d}"),
    ("bytes", "bytes", "{:,d}"),
    ("comm s", "comm_time_s", "{:.2f}"),
    ("compute s", "compute_s", "{:.2f}"),
    ("wall s", "wall_s", "{:.2f}"),
)


def communication_table(view: market_pb2.RoundView) -> Any:
    """Per-party communication of the round's job (rounds, bytes, time), or None."""
    from rich.table import Table

    parties = round_parties(view)
    if not parties:
        return None
    table = Table(title="MPC job: communication per party (online rounds per training step; "
                        "offline = dealer prefetch before training)")
    table.add_column("party", justify="right")
    for column, _, _ in _COMM_COLUMNS:
        table.add_column(column, justify="right")
    for rank, stats in enumerate(parties):
        cells = []
        for _, key, fmt in _COMM_COLUMNS:
            value = stats.get(key)
            try:
                cells.append(fmt.format(value) if value is not None else "-")
            except (TypeError, ValueError):
                cells.append(str(value))
        table.add_row(str(rank), *cells)
    return table


def rounds_table(views: list[market_pb2.RoundView]) -> Any:
    from rich.table import Table

    table = Table(title=f"rounds ({len(views)})")
    for column in ("round", "status", "sponsor", "pool", "datasets", "paid", "slashed"):
        table.add_column(column, no_wrap=True)
    for v in views:
        table.add_row(v.round_id, v.status, v.sponsor, str(v.pool), str(len(v.participants)),
                      str(sum(p.payout for p in v.participants)),
                      str(sum(p.slashed for p in v.participants)))
    return table
