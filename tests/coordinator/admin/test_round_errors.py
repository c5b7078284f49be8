"""A Banzhaf round's standard errors, recorded on the ledger, reach `admin round show`
and `provider round-show` (table, text and --json); leave-one-out rounds print as before.

The round is read back from a real signed ledger (`round_view.summarize`), through the
RoundView message as it travels (serialised and parsed), to both roles' outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from coordinator.admin_cli.round_table import round_json, round_table
from coordinator.market_servicer import round_view_proto
from coordinator.round_view import summarize
from coordinator.rounds import RoundRuntime
from ledger import Ledger
from ledger.workload import Market
from mutualmind.vocabulary.signing_keys import generate_signing_key
from proto import market_pb2
from provider.sponsor_cli import _text

DATASETS = ["ds-a", "ds-b", "ds-c"]
# Banzhaf: full log-loss, mean_in - mean_out per dataset, then the standard errors
BANZHAF_SIGNED = [300_000, -20_000, 3_000, 9_000, 4_000, 2_000, 2_500]
LOO_SIGNED = [300_000, 320_000, 297_000, 291_000]


def _view(tmp_path: Path, model_spec: dict[str, Any], metrics: list[int]) -> market_pb2.RoundView:
    """A round with a result on a real ledger, as the Market/Admin API sends it."""
    ledger = Ledger.create(tmp_path / "ledger.db", generate_signing_key(), params={"nodes": 2})
    try:
        market = Market()
        ledger.append_many([market.register_node(0), market.register_node(1)])
        for name in ("alice", "bob", "carol", "dave"):
            ledger.append(*market.register_provider(name))
            ledger.append(*market.mint(name, 10_000))
        for dataset, owner in zip(DATASETS, ("alice", "bob", "dave"), strict=True):
            ledger.append_many([market.register_dataset(dataset, owner), market.stake(owner, dataset, 1000)])
        ledger.append_many([market.register_dataset("val", "carol", "validation"),
                            market.open_round("r1", "carol", 3000, "val", DATASETS, model_spec=model_spec)])
        ledger.append(*market.round_result("r1", metrics))
        view = round_view_proto(summarize(ledger, "r1", RoundRuntime()))
    finally:
        ledger.close()
    return market_pb2.RoundView.FromString(view.SerializeToString())


def _table(view: market_pb2.RoundView) -> str:
    console = Console(record=True, width=200)
    console.print(round_table(view))
    return console.export_text()


def test_a_banzhaf_rounds_errors_are_in_the_table_the_text_and_the_json(tmp_path: Path) -> None:
    view = _view(tmp_path, {"kind": "logistic", "epochs": 3, "valuation": "banzhaf"}, BANZHAF_SIGNED)
    shown = round_json(view)
    assert [p["error_micro"] for p in shown["participants"]] == [4_000, 2_000, 2_500]
    assert [p["contribution_micro"] for p in shown["participants"]] == [20_000, -3_000, -9_000]
    table = _table(view)
    assert "± error" in table
    (row,) = [line for line in table.splitlines() if "ds-c" in line]
    assert "-0.009000" in row and "±0.002500" in row
    text = _text(shown)
    (line,) = [line for line in text.splitlines() if "ds-a" in line]
    assert "contribution +0.020000 ± 0.004000" in line


def test_a_leave_one_out_round_prints_as_before_with_a_zero_error_in_json(tmp_path: Path) -> None:
    view = _view(tmp_path, {"kind": "logistic", "epochs": 3}, LOO_SIGNED)
    shown = round_json(view)
    assert [p["error_micro"] for p in shown["participants"]] == [0, 0, 0]
    assert [p["contribution_micro"] for p in shown["participants"]] == [-20_000, 3_000, 9_000]
    assert "error" not in _table(view) and "±" not in _text(shown)
