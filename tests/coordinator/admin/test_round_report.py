"""The round table, the round chart and the sponsor's signature, on a real settled round.

`settled_round.py` builds a real ledger and settles a round with the coordinator's own
`Rounds` code (only the MPC job is stood in for); these tests read it back the way
`admin round show/report` do and check what an operator would rely on.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest
from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))

from settled_round import EPSILON_MICRO, settled_round_view  # noqa: E402

from coordinator.admin_cli.round_report import write_round_png  # noqa: E402
from coordinator.admin_cli.round_table import round_json, round_table  # noqa: E402
from coordinator.round_verify import max_abs_diff_micro, rerun_noise_micro  # noqa: E402
from mutualmind.errors import IntegrityError, InvalidInput  # noqa: E402
from mutualmind.vocabulary.payloads import request_message  # noqa: E402
from mutualmind.vocabulary.round_open import (  # noqa: E402
    RoundTerms,
    checked_model_spec,
    round_opened_payload,
    signed_open_round,
)
from mutualmind.vocabulary.round_report import render_round_png, round_figure  # noqa: E402
from mutualmind.vocabulary.sign_flips import flip_band, sign_flips  # noqa: E402
from mutualmind.vocabulary.signing_keys import (
    generate_signing_key,
    public_key_bytes,
    verify_signature,
)  # noqa: E402
from proto import market_pb2  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def view(tmp_path_factory: pytest.TempPathFactory) -> market_pb2.RoundView:
    return settled_round_view(tmp_path_factory.mktemp("settled"))


def test_settled_round_pays_the_pool_plus_slashes(view: market_pb2.RoundView) -> None:
    data = round_json(view)
    assert data["status"] == "closed"
    by_dataset = {p["dataset_id"]: p for p in data["participants"]}
    assert by_dataset["a-1"]["contribution_micro"] == 50_000
    assert by_dataset["c-1"]["contribution_micro"] == -40_000
    assert by_dataset["c-1"]["slashed"] == 100           # 25% of its 400 stake
    assert by_dataset["c-1"]["payout"] == 0
    paid = sum(p["payout"] for p in data["participants"])
    assert paid == data["pool"] + by_dataset["c-1"]["slashed"]
    assert by_dataset["a-1"]["payout"] > by_dataset["b-1"]["payout"] > 0


def test_round_table_shows_contributions_payouts_and_totals(view: market_pb2.RoundView) -> None:
    console = Console(record=True, width=160)
    console.print(round_table(view))
    text = console.export_text()
    for expected in ("round r1", "hospital-a", "+0.050000", "+0.020000", "-0.040000",
                     "status closed", "full-model log_loss 0.300000"):
        assert expected in text, expected
    total_line = next(line for line in text.splitlines() if "total" in line)
    assert "400" in total_line and "100" in total_line and "700" in total_line


def test_report_png_is_a_real_png_of_the_expected_size(view: market_pb2.RoundView,
                                                       tmp_path: Path) -> None:
    path = tmp_path / "r1.png"
    size = write_round_png(view, path, epsilon_micro=EPSILON_MICRO)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) == size > 10_000
    width, height = struct.unpack(">II", data[16:24])     # IHDR
    assert (width, height) == (720, 780)                 # 6 x 6.5 inches at 120 dpi
    assert [p.name for p in tmp_path.iterdir()] == ["r1.png"]   # no temp file left


def _texts(view: market_pb2.RoundView) -> list[str]:
    """Every text artist of the rendered chart (titles, labels, bar labels, notes)."""
    from matplotlib.text import Text

    figure = round_figure(view, epsilon_micro=EPSILON_MICRO)
    figure.canvas.draw()
    return [t.get_text() for t in figure.findobj(Text) if t.get_text()]


def test_report_chart_labels_bars_and_names_the_metric(view: market_pb2.RoundView) -> None:
    texts = _texts(view)
    for value in ("+0.0500", "+0.0200", "-0.0400"):      # contribution bar labels
        assert value in texts, (value, texts)
    payouts = [str(p.payout) for p in view.participants if p.payout]
    assert payouts and all(p in texts for p in payouts)
    assert "100" in texts                                 # c-1's slash
    assert any("log_loss" in t for t in texts), texts     # the contribution axis


def test_report_chart_shows_the_refund_when_nothing_was_paid(
        view: market_pb2.RoundView) -> None:
    unpaid = market_pb2.RoundView()
    unpaid.CopyFrom(view)
    for p in unpaid.participants:
        p.payout = 0
    unpaid.refund_to_sponsor = 300
    texts = _texts(unpaid)
    assert any("nothing paid" in t and "300" in t and "sponsor" in t for t in texts), texts


def test_report_chart_of_an_aborted_round_shows_the_reason(view: market_pb2.RoundView) -> None:
    aborted = market_pb2.RoundView()
    aborted.CopyFrom(view)
    aborted.status = "aborted"
    aborted.message = "aborted by the admin: node1 lost its shares"
    del aborted.metrics_micro[:]
    for p in aborted.participants:
        p.payout, p.slashed, p.contribution_micro = 0, 0, 0
    aborted.refund_to_sponsor = 300
    texts = " ".join(_texts(aborted))
    assert "node1 lost its shares" in texts and "300 tokens back to sponsor" in texts
    assert "contribution" not in texts                    # no empty bar chart


def test_verify_refuses_contribution_lists_of_different_lengths() -> None:
    assert max_abs_diff_micro("r1", ["a", "b"], [10, -20], [12, -25]) == 5
    with pytest.raises(IntegrityError, match="2 contributions.*computed 1"):
        max_abs_diff_micro("r1", ["a", "b"], [10, -20], [10])
    with pytest.raises(IntegrityError, match="3 datasets"):
        max_abs_diff_micro("r1", ["a", "b", "c"], [10, -20], [10, -20])


def test_a_sign_flip_across_the_band_never_agrees() -> None:
    """Paid in one run, slashed in the other, beyond the band each way: a disagreement;
    moves inside the band, or on one side of it, are not flips. The band is epsilon, or
    half the re-run noise when larger, so honest noise near zero makes no flip."""
    datasets = ["a", "b", "c", "d"]
    recorded = [1_500, -1_200, 800, 40_000]
    assert sign_flips(datasets, recorded, [-1_100, 1_300, -900, 38_000], 1_000) == ["a", "b"]
    assert sign_flips(datasets, recorded, recorded, 1_000) == []
    assert sign_flips(datasets, recorded, [1_001, -1_001, -1_000, 1_001], 1_000) == []
    band = flip_band(1_000, rerun_noise_micro("log_loss", 100))
    assert band == 2_500
    assert sign_flips(datasets, recorded, [-1_100, 1_300, -900, 38_000], 1_000, band) == []
    assert sign_flips(datasets, [3_000, -2_600, 800, 40_000], [-2_501, 2_700, -900, 38_000], 1_000, band) == ["a", "b"]


def test_rerun_noise_is_two_validation_rows_on_accuracy() -> None:
    assert rerun_noise_micro("log_loss", 100) == 5_000
    assert rerun_noise_micro("accuracy", 100) == 20_000          # 2 of 100 rows
    assert rerun_noise_micro("accuracy", 1_000_000) == 5_000     # never below the noise floor
    assert rerun_noise_micro("accuracy", 0) == 5_000


def test_round_json_model_spec_reals_are_numbers(view: market_pb2.RoundView) -> None:
    spec = round_json(view)["model_spec"]
    assert spec["lr"] == 0.5 and isinstance(spec["lr"], float)
    assert spec["epochs"] == 20 and spec["metric"] == "log_loss"


def test_report_refuses_bad_paths_and_empty_rounds_leaving_nothing(
        view: market_pb2.RoundView, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"\.png"):
        write_round_png(view, tmp_path / "r1.jpg")
    with pytest.raises(InvalidInput, match="does not exist"):
        write_round_png(view, tmp_path / "missing" / "r1.png")
    with pytest.raises(InvalidInput, match="no participants"):
        render_round_png(market_pb2.RoundView(round_id="empty"))
    assert list(tmp_path.iterdir()) == []


def _terms(**changes: object) -> RoundTerms:
    base = dict(round_id="r9", sponsor="sponsor", pool=100,
                model_spec=checked_model_spec({"kind": "logistic", "lr": 0.25}),
                validation_dataset="val", datasets=("a", "b"), slash_rate_ppm=100_000,
                epsilon_micro=1_000)
    base.update(changes)
    return RoundTerms(**base)  # type: ignore[arg-type]


def test_open_round_signature_covers_the_ledger_payload() -> None:
    key = generate_signing_key()
    request = signed_open_round(key, _terms())
    spec = json.loads(request.model_spec_json)
    assert spec["lr"] == 0.25 and spec["epochs"] == 20     # defaults filled in
    payload = round_opened_payload(_terms(model_spec=spec), request.auth.nonce)
    assert payload["model_spec"]["lr"] == "0.25"          # decimal text on the ledger
    message = request_message("round_opened", payload)
    assert verify_signature(public_key_bytes(key), message, request.auth.signature)
    tampered = round_opened_payload(_terms(model_spec=spec, pool=101), request.auth.nonce)
    assert not verify_signature(public_key_bytes(key), request_message("round_opened", tampered),
                                request.auth.signature)
    assert request.auth.nonce != signed_open_round(key, _terms()).auth.nonce


@pytest.mark.parametrize("changes, message", [
    ({"datasets": ()}, "at least one training dataset"),
    ({"datasets": ("a", "a")}, "listed twice"),
    ({"datasets": ("a", "val")}, "both the validation set"),
    ({"slash_rate_ppm": 1_000_001}, "slash rate"),
    ({"round_id": "bad id!"}, "round_id"),
    ({"pool": 0}, "pool"),
])
def test_open_round_refuses_bad_terms_before_signing(changes: dict[str, object],
                                                     message: str) -> None:
    with pytest.raises(Exception, match=message) as info:
        signed_open_round(generate_signing_key(), _terms(**changes))
    assert info.type.__name__ in ("InvalidInput", "RuleViolation")


def test_model_spec_is_checked_with_the_workers_parser() -> None:
    with pytest.raises(InvalidInput, match="kind"):
        checked_model_spec({"kind": "forest"})
    with pytest.raises(InvalidInput):
        checked_model_spec('{"kind": "logistic", "unknown": 1}')
    with pytest.raises(InvalidInput):
        checked_model_spec("not json")


def test_the_public_reports_dead_band_comes_from_the_signed_terms() -> None:
    from mutualmind.vocabulary.round_report import opened_epsilon_micro

    assert opened_epsilon_micro(market_pb2.RoundView(opened_payload_json='{"epsilon_micro": 2500}')) == 2500
    assert opened_epsilon_micro(market_pb2.RoundView()) == 0          # the admin view has none
    assert opened_epsilon_micro(market_pb2.RoundView(opened_payload_json="not json")) == 0
