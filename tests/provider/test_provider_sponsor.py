"""A sponsor's rounds from `mutualmind provider` (real subprocesses) over the public Market
port only: open (its signed round_opened on the real ledger), show, abort; and a key that
is not the sponsor's cannot open a round in the sponsor's name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from mutualmind.errors import InvalidInput
from mutualmind.transport import channel_credentials, open_channel
from mutualmind.vocabulary.payloads import request_message
from mutualmind.vocabulary.round_open import RoundTerms, checked_model_spec, signed_open_round
from mutualmind.vocabulary.signing_keys import (
    generate_signing_key,
    public_key_bytes,
    save_private_key,
    verify_signature,
)
from proto import market_pb2_grpc
from provider.client import MarketClient
from provider.sharing import Table, load_sklearn, share_table

Market = Any  # the `market` fixture in conftest.py
ROOT = Path(__file__).resolve().parents[2]
TRAINING = ("a", "b", "c")
DATASETS = [f"bc-{name}" for name in TRAINING]


def mutualmind(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mutualmind", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


def _key_file(folder: Path, provider_id: str) -> tuple[Any, Path]:
    """A key and `<key>.id`, as `provider keygen` writes them."""
    key = generate_signing_key()
    path = folder / f"{provider_id}-{len(list(folder.iterdir()))}.key"
    save_private_key(key, path)
    path.with_name(path.name + ".id").write_text(provider_id + "\n", encoding="utf-8")
    return key, path


@pytest.fixture
def ready(market: Market, tmp_path: Path) -> Any:
    """Three hospitals' staked training sets (the default terms ask for 3); the sponsor's validation set and 500 tokens."""
    table = load_sklearn("breast_cancer")
    channel = open_channel(market.coordinator_address, channel_credentials(market.certs, None))
    sponsor_key, sponsor_file = _key_file(tmp_path, "sponsor-s")
    try:
        for i, name in enumerate(TRAINING):
            hospital = MarketClient(channel=channel, key=generate_signing_key(),
                                    provider_id=f"hospital-{name}")
            hospital.register()
            rows = Table(table.values[i * 60:(i + 1) * 60], table.schema)
            hospital.register_dataset(f"bc-{name}", share_table(rows, 3))
            market.mint(f"hospital-{name}", 100)
            hospital.stake(f"bc-{name}", 50)
        sponsor = MarketClient(channel=channel, key=sponsor_key, provider_id="sponsor-s")
        sponsor.register()
        sponsor.register_dataset("bc-val", share_table(Table(table.values[200:260], table.schema), 3),
                                 purpose="validation")
        market.mint("sponsor-s", 500)
    finally:
        channel.close()
    return sponsor_key, sponsor_file


def _public(market: Market) -> list[str]:
    return ["--coordinator", market.coordinator_address, "--certs", str(market.certs)]


def _open_flags(round_id: str) -> list[str]:
    return ["--round-id", round_id, "--pool", "300", "--validation-dataset", "bc-val",
            "--ttl-hours", "2", *(f for d in DATASETS for f in ("--dataset", d))]


def test_sponsor_opens_shows_and_aborts_its_round_over_the_public_port(
        market: Market, ready: Any, tmp_path: Path) -> None:
    sponsor_key, sponsor_file = ready
    opened = mutualmind("provider", "open-round", "--key", str(sponsor_file), *_public(market),
                        *_open_flags("r-sponsor"))
    assert opened.returncode == 0, opened.stderr
    summary = json.loads(opened.stdout)
    assert (summary["round_id"], summary["sponsor"], summary["pool"]) == ("r-sponsor", "sponsor-s", 300)

    ledger = market.coordinator.ledger
    entry = ledger.round_opened("r-sponsor")
    assert entry.index == summary["ledger_index"]
    assert entry.payload["sponsor"] == "sponsor-s" and entry.payload["datasets"] == DATASETS
    assert verify_signature(public_key_bytes(sponsor_key),
                            request_message("round_opened", entry.payload), entry.provider_signature)
    assert ledger.state.balances["sponsor-s"] == 200   # the pool is locked

    shown = mutualmind("provider", "round-show", "r-sponsor", "--json", *_public(market))
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert (view["status"], view["sponsor"], view["pool"]) == ("open", "sponsor-s", 300)
    assert [p["dataset_id"] for p in view["participants"]] == DATASETS
    assert view["model_spec"]["kind"] == "logistic"
    text = mutualmind("provider", "round-show", "r-sponsor", *_public(market))
    assert text.returncode == 0 and "round r-sponsor: open, sponsor sponsor-s" in text.stdout

    # the public directory lists it: every round, and filtered by status
    listed = mutualmind("provider", "rounds", "--json", *_public(market))
    assert listed.returncode == 0, listed.stderr
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["round_id"], row["status"], row["sponsor"], row["pool"], row["datasets"]) == (
        "r-sponsor", "open", "sponsor-s", 300, DATASETS)
    closed = mutualmind("provider", "rounds", "--status", "closed", "--json", *_public(market))
    assert closed.returncode == 0 and closed.stdout.strip() == ""
    table = mutualmind("provider", "rounds", *_public(market))
    assert table.returncode == 0 and "r-sponsor" in table.stdout and "open" in table.stdout

    aborted = mutualmind("provider", "abort-round", "--key", str(sponsor_file), *_public(market),
                         "--round-id", "r-sponsor", "--reason", "changed my mind")
    assert aborted.returncode == 0, aborted.stderr
    assert json.loads(aborted.stdout)["refund_to_sponsor"] == 300
    after = json.loads(mutualmind("provider", "round-show", "r-sponsor", "--json",
                                  *_public(market)).stdout)
    assert after["status"] == "aborted" and ledger.state.balances["sponsor-s"] == 500
    aborted_rows = mutualmind("provider", "rounds", "--status", "aborted", "--json", *_public(market))
    assert [json.loads(line)["round_id"] for line in aborted_rows.stdout.splitlines()] == ["r-sponsor"]

    # the report, as `admin round report` draws it, over the public port
    out = tmp_path / "report"
    out.mkdir()
    png = out / "r-sponsor.png"
    report = mutualmind("provider", "round-report", "r-sponsor", "--png", str(png), "--json",
                        *_public(market))
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout) == {"round_id": "r-sponsor", "png": str(png),
                                         "bytes": png.stat().st_size, "datasets": len(DATASETS),
                                         "status": "aborted"}
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    wrong = mutualmind("provider", "round-report", "r-sponsor", "--png", str(out / "r.jpg"),
                       *_public(market))
    assert wrong.returncode != 0 and wrong.stderr.count("\n") == 1 and ".png" in wrong.stderr
    assert sorted(p.name for p in out.iterdir()) == ["r-sponsor.png"]


def test_another_key_cannot_open_a_round_in_the_sponsors_name(
        market: Market, ready: Any, tmp_path: Path) -> None:
    ledger = market.coordinator.ledger
    size = ledger.size
    # a key file claiming the sponsor's id: the CLI signs, the ledger refuses the signature
    _, impostor_file = _key_file(tmp_path, "sponsor-s")
    refused = mutualmind("provider", "open-round", "--key", str(impostor_file), *_public(market),
                         *_open_flags("r-stolen"))
    assert refused.returncode != 0
    assert len(refused.stderr.strip().splitlines()) == 1 and "sponsor-s" in refused.stderr
    # the same over the wire: terms naming sponsor-s, signed by someone else's key
    terms = RoundTerms(round_id="r-stolen", sponsor="sponsor-s", pool=300,
                       model_spec=checked_model_spec('{"kind": "logistic"}'),
                       validation_dataset="bc-val", datasets=tuple(DATASETS))
    channel = open_channel(market.coordinator_address, channel_credentials(market.certs, None))
    try:
        with pytest.raises(grpc.RpcError) as raised:
            market_pb2_grpc.MarketStub(channel).OpenRound(
                signed_open_round(generate_signing_key(), terms), timeout=10)
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
        mallory = MarketClient(channel=channel, key=generate_signing_key(), provider_id="mallory")
        with pytest.raises(InvalidInput, match="only in its own name"):
            mallory.open_round(terms)     # refused before anything is signed or sent
    finally:
        channel.close()
    assert ledger.size == size and ledger.state.balances["sponsor-s"] == 500
