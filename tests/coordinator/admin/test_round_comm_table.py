"""`admin round show` lists what every node measured of the round's MPC job."""

from __future__ import annotations

import json

from rich.console import Console

from coordinator.admin_cli.round_table import round_json, round_table
from proto import market_pb2

PARTY = {"rounds_per_step": 16.0, "bytes_per_step": 230318.0, "offline_rounds": 131, "offline_bytes": 2620480,
         "rounds_evaluation": 14, "rounds": 958, "bytes": 12345678, "comm_time_s": 1.25, "compute_s": 3.5, "wall_s": 6.75}


def _render(view: market_pb2.RoundView) -> str:
    console = Console(record=True, width=200)
    console.print(round_table(view))
    return console.export_text()


def test_round_show_has_a_row_of_communication_figures_per_party() -> None:
    parties = [PARTY, dict(PARTY, offline_rounds=43), dict(PARTY, offline_rounds=43, wall_s=7.0)]
    view = market_pb2.RoundView(round_id="r9", status="closed",
                                stats_json=json.dumps({"job_id": "j", "parties": parties}))
    text = _render(view)
    assert "rounds/step" in text and "offline rounds" in text
    rows = [line for line in text.splitlines() if "230,318" in line]
    assert len(rows) == 3
    assert "131" in rows[0] and "43" in rows[1] and "7.00" in rows[2]
    assert round_json(view)["communication"] == parties


def test_round_show_without_or_with_broken_stats_shows_no_communication_table() -> None:
    for stats in ("", "not json", json.dumps({"parties": "x"})):
        view = market_pb2.RoundView(round_id="r9", status="open", stats_json=stats)
        assert "rounds/step" not in _render(view)
        assert round_json(view)["communication"] == []
