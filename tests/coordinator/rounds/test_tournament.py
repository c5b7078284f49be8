"""The model market end to end on a real cluster (issue 15): coordinator, dealer and three
nodes as processes, real gRPC with TLS, real SQLite, real CrypTen MPC.

Three models on the breast-cancer scenario's staked datasets: "good" on the two honest
datasets, "noisy" on an honest one and the noisy one (each with the duplicate as its
third: the providers' default terms ask for three datasets a model), and "good-copy",
good's recipe on good's datasets (a copy: it earns nothing). At the deadline the nodes train
both (each with its per-dataset variants) in one job and sign commitments to the weight
shares; the sponsor then commits its held-out rows as the resolution; the nodes reveal
the metamodel's log-loss, each model's contribution and each dataset's within its model;
the coordinator settles both levels in one group commit; `ledger verify` re-checks it.
Every refusal is a typed error with nothing written.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mutualmind.errors import MutualMindError, RuleViolation
from mutualmind.vocabulary.tournament import ModelSubmission, TournamentTerms
from proto import admin_pb2, market_pb2
from tests.coordinator.rounds.conftest import MINT, Market

POOL = 2_000
MODEL_STAKE = 500
RECIPE = {"kind": "logistic", "task": "binary", "metric": "log_loss", "epochs": 5}
JOB_S = 240.0


def _terms(market: Market, tournament_id: str, deadline_ms: int, **overrides: Any) -> TournamentTerms:
    values: dict[str, Any] = dict(
        tournament_id=tournament_id, sponsor="sponsor", label_kind="binary", metric="log_loss",
        pool=POOL, threshold_micro=1_000_000, deadline_ms=deadline_ms, datasets=tuple(market.datasets),
        slash_rate_ppm=200_000, epsilon_micro=1_000)
    values.update(overrides)
    return TournamentTerms(**values)


def _submission(tournament_id: str, model_id: str, modeler: str, datasets: list[str],
                stake: int = MODEL_STAKE) -> ModelSubmission:
    return ModelSubmission(tournament_id=tournament_id, model_id=model_id, modeler=modeler, recipe=RECIPE,
                           datasets=tuple(datasets), stake=stake, kept_share_bps=5_000)


def _size(market: Market) -> int:
    admin = market.session.admin
    return len(admin.call(admin.market, "ListEntries", market_pb2.ListEntriesRequest(start=0, limit=1000)).entries)


def _refused(market: Market, rule: str, action: Any) -> None:
    before = _size(market)
    with pytest.raises(MutualMindError, match=rule):
        action()
    assert _size(market) == before, f"a refused request ({rule}) wrote to the ledger"


def _modeler(market: Market, name: str, mint: int = MINT) -> Any:
    if name not in market.clients:
        market.clients[name] = market.session.enrol(name, mint=mint)
    return market.clients[name]


def _wait_past(deadline_ms: int) -> None:
    time.sleep(max(0.0, deadline_ms / 1000 - time.time()) + 0.3)


def _admin_job(market: Market, method: str, tournament_id: str) -> Any:
    admin = market.session.admin
    return admin.call(admin.admin, method, admin_pb2.TournamentJobRequest(tournament_id=tournament_id,
                                                                        deadline_s=JOB_S), timeout=JOB_S + 30)


def test_refusals_write_nothing(market: Market) -> None:
    sponsor = market.sponsor
    deadline = int(time.time() * 1000) + 3_000
    sponsor.open_tournament(_terms(market, "t-refuse", deadline, datasets=tuple(market.datasets[:3])))
    poor = _modeler(market, "poor-modeler", mint=100)
    rich = _modeler(market, "modeler-a")
    three = market.datasets[:3]
    _refused(market, "insufficient_balance",
             lambda: poor.submit_model(_submission("t-refuse", "m", "poor-modeler", three, stake=101)))
    _refused(market, "not_eligible",   # the duplicate is staked but not among the eligible datasets
             lambda: rich.submit_model(_submission("t-refuse", "m", "modeler-a", [*three[:2], market.datasets[3]])))
    # the providers' terms (the defaults) consent to models on three datasets or more
    _refused(market, "terms_min_datasets",
             lambda: rich.submit_model(_submission("t-refuse", "m", "modeler-a", three[:2])))
    honest = three
    _refused(market, "tournament_state",  # no resolution before the models are frozen
             lambda: sponsor.commit_resolution("t-refuse", "validation"))
    _wait_past(deadline)
    _refused(market, "deadline_passed",
             lambda: rich.submit_model(_submission("t-refuse", "late", "modeler-a", honest)))
    _refused(market, "no_models", lambda: _admin_job(market, "TrainTournament", "t-refuse"))
    with pytest.raises(RuleViolation, match="tournament_state"):
        _admin_job(market, "ResolveTournament", "t-refuse")


def test_an_aborted_tournament_gives_every_token_back(market: Market) -> None:
    admin, modeler = market.session.admin, _modeler(market, "modeler-a")
    sponsor_before = market.session.balance("sponsor").balance
    modeler_before = market.session.balance("modeler-a").balance
    market.sponsor.open_tournament(_terms(market, "t-abort", int(time.time() * 1000) + 60_000))
    modeler.submit_model(_submission("t-abort", "m", "modeler-a", market.datasets[:3]))
    assert market.session.balance("modeler-a").balance == modeler_before - MODEL_STAKE

    def abort() -> Any:
        return admin.call(admin.admin, "AbortTournament",
                          admin_pb2.AbortTournamentRequest(tournament_id="t-abort", reason="withdrawn"))

    assert abort().status == "aborted"
    assert market.session.balance("sponsor").balance == sponsor_before
    assert market.session.balance("modeler-a").balance == modeler_before
    _refused(market, "tournament_state", abort)     # once only


def test_a_tournament_trains_freezes_resolves_and_settles(market: Market) -> None:
    session, sponsor = market.session, market.sponsor
    roles = {f"{p.name}-data": p.role for p in market.scenario.providers}
    honest_a, honest_b = (d for d in market.datasets if roles[d] == "honest")
    noisy, duplicate = (next(d for d in market.datasets if roles[d] == r) for r in ("noisy", "duplicate"))
    good, bad, copier = _modeler(market, "modeler-a"), _modeler(market, "modeler-b"), _modeler(market, "modeler-c")
    parties = sorted({"sponsor", *market.clients})

    def holdings() -> dict[str, int]:
        out = {}
        for name in parties:
            balance = session.balance(name)
            out[name] = balance.balance + sum(dict(balance.stakes).values())
        return out

    before = holdings()
    deadline = int(time.time() * 1000) + 4_000
    sponsor.open_tournament(_terms(market, "t1", deadline))
    # the providers' terms ask for three datasets a model: the duplicate (provider 0's rows
    # again) fills each up
    good.submit_model(_submission("t1", "good", "modeler-a", [honest_a, honest_b, duplicate]))
    bad.submit_model(_submission("t1", "noisy", "modeler-b", [honest_b, noisy, duplicate]))
    # the good model's recipe on the same datasets (listed in another order): a copy
    copier.submit_model(_submission("t1", "good-copy", "modeler-c", [duplicate, honest_a, honest_b]))
    _wait_past(deadline)

    frozen = _admin_job(market, "TrainTournament", "t1")
    assert frozen.status == "frozen"
    commitments = [m["commitment"] for m in json.loads(frozen.view_json)["models"]]
    assert len(set(commitments)) == 3 and all(len(c) == 64 for c in commitments)
    # frozen, not settled: no node hands a model to its modeler yet
    with pytest.raises(RuleViolation, match="tournament_not_closed"):
        _fetch_frozen(market, 0, good.key, "modeler-a", "good", commitments[0])

    _refused(market, "not_publisher", lambda: good.commit_resolution("t1", "validation"))
    sponsor.commit_resolution("t1", "validation")
    closed = _admin_job(market, "ResolveTournament", "t1")
    view = json.loads(closed.view_json)
    assert closed.status == "closed", view
    by_id = {m["model_id"]: m for m in view["models"]}
    # the good model made the metamodel better, the model on noisy data worse; inside it,
    # the noisy dataset is the one that hurt
    assert by_id["good"]["contribution_micro"] > 1_000 > by_id["noisy"]["contribution_micro"]
    noisy_parts = dict(zip(by_id["noisy"]["datasets"], by_id["noisy"]["dataset_contributions_micro"], strict=True))
    assert noisy_parts[noisy] < noisy_parts[honest_b]
    assert view["metamodel_metric_micro"] < 1_000_000 and view["refund_to_sponsor"] == 0  # bounty paid
    hurt = by_id["noisy"]["contribution_micro"] < -1_000
    slash = MODEL_STAKE * 200_000 // 1_000_000 if hurt else 0
    assert by_id["noisy"]["slashed"] + by_id["noisy"]["datasets_slashed"] == slash
    rewarded = [m["rewarded"] for m in view["models"]]
    assert sum(rewarded) == POOL + slash and rewarded[0] > rewarded[1]
    # the copy and its original left the metamodel as one group: one contribution (up to
    # the MPC noise of two evaluations), credited to the original only
    copy = by_id["good-copy"]
    assert copy["copy_of"] == "good" and by_id["good"]["copy_of"] == ""
    assert abs(copy["contribution_micro"] - by_id["good"]["contribution_micro"]) < 5_000
    assert copy["rewarded"] == 0 and copy["payouts"] == [] and copy["stake_returned"] == MODEL_STAKE
    # every token where it was, or moved by a settlement entry: the supply is conserved
    after = holdings()
    assert sum(after.values()) == sum(before.values())
    assert after["sponsor"] == before["sponsor"] - POOL
    assert after["modeler-a"] > before["modeler-a"] and after["modeler-c"] == before["modeler-c"]
    verified = session.verify_ledger()
    assert verified.ok, verified.error


def _fetch_frozen(market: Market, node: int, key: Any, modeler: str, model_id: str, commitment: str) -> Any:
    from provider.client import fetch_model_share

    return fetch_model_share(market.session.node_channels[node], key, modeler, "t1", node,
                             node_public_key=market.session.node_keys[node], job_digest=commitment,
                             model_id=model_id)


def test_a_modeler_collects_its_frozen_model_and_no_one_else_can(market: Market, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """After settlement the modeler of "good" fetches every node's share of its full model
    (`modeler collect`, in this process), checked against the frozen commitment; the
    rebuilt model predicts like the same recipe trained in plaintext on the same rows.
    Another modeler's key, a replayed request and a model of another modeler are refused."""
    import grpc

    from mpcnode.worker.reference import job_scaled, plaintext_batched
    from mutualmind.cli import main
    from mutualmind.errors import PermissionDenied
    from mutualmind.transport import raise_from_rpc_error
    from mutualmind.vocabulary.model_fetch import sign_fetch
    from mutualmind.vocabulary.model_file import predict
    from mutualmind.vocabulary.model_spec import parse_model_spec
    from mutualmind.vocabulary.signed_requests import new_nonce
    from mutualmind.vocabulary.signing_keys import save_private_key
    from proto import node_pb2, node_pb2_grpc

    view = json.loads(market.session.admin.call(market.session.admin.market, "GetTournament",
                                                market_pb2.GetTournamentRequest(tournament_id="t1")).view_json)
    by_id = {m["model_id"]: m for m in view["models"]}
    key = tmp_path / "modeler.pem"
    save_private_key(market.clients["modeler-a"].key, key)
    key.with_name("modeler.pem.id").write_text("modeler-a\n")
    out = tmp_path / "good.json"
    target = ["--data-dir", str(market.cluster.data_dir)]
    assert main(["modeler", "collect", "--key", str(key), "--tournament", "t1", "--model", "good",
                 "--out", str(out), *target]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["commitment"] == by_id["good"]["commitment"] and summary["nodes"] == 3
    document = json.loads(out.read_text())
    assert document["datasets"] == by_id["good"]["datasets"] and out.stat().st_mode & 0o077 == 0
    receipts = [r["receipt"] for r in document["node_receipts"]]
    assert all(r["job_digest"] == by_id["good"]["commitment"] for r in receipts)
    # the full model only: no per-dataset variant left the nodes
    assert all(not str(t["name"]).startswith(("0/", "1/")) for r in receipts for t in r["manifest"])

    tensors = {n: np.asarray(v) for n, v in {**document["weights"], **document["normalisation"]}.items()}
    spec = parse_model_spec(RECIPE)
    tables = {f"{p.name}-data": p.table.values for p in market.scenario.providers}
    rows = [tables[d] for d in by_id["good"]["datasets"]]
    train, validation = np.vstack(rows), market.scenario.validation.values
    collected = predict(tensors, spec, validation[:, :-1])
    plain = plaintext_batched(spec, train[:, :-1], train[:, -1], validation[:, :-1], validation[:, -1],
                              [len(r) for r in rows])
    scaled_validation = job_scaled(spec, train[:, :-1], train[:, -1], validation[:, :-1], validation[:, -1],
                                   [len(r) for r in rows])[2]
    plain_model = {n: t.detach().numpy() for n, t in plain.weights.items()}
    expected = predict(plain_model, spec, scaled_validation)
    agreement = float((collected == expected).mean())
    accuracy = float((collected == validation[:, -1]).mean())
    assert agreement >= 0.95 and accuracy > 0.85, (agreement, accuracy)

    # another modeler's key, for good's model or under good's modeler's name
    with pytest.raises(PermissionDenied, match="only the modeler"):
        _fetch_frozen(market, 0, market.clients["modeler-b"].key, "modeler-b", "good", by_id["good"]["commitment"])
    with pytest.raises(PermissionDenied, match="not signed by modeler"):
        _fetch_frozen(market, 1, market.clients["modeler-b"].key, "modeler-a", "good", by_id["good"]["commitment"])
    # a replay: the same signed request twice
    signed = sign_fetch(market.clients["modeler-a"].key, "t1", "modeler-a", 2, new_nonce(), int(time.time()), "good")
    request = node_pb2.FetchModelShareRequest(round_id="t1", sponsor_id="modeler-a", node_index=2,
                                              nonce=signed.nonce, issued_at=signed.issued_at,
                                              signature=signed.signature, model_id="good")
    stub = node_pb2_grpc.ShareIntakeStub(market.session.node_channels[2])
    assert b"".join(m.data for m in stub.FetchModelShare(request, timeout=30))
    with pytest.raises(PermissionDenied, match="already answered"):
        try:
            b"".join(m.data for m in stub.FetchModelShare(request, timeout=30))
        except grpc.RpcError as err:
            raise_from_rpc_error(err)
    print(f"frozen model collected: agreement with plaintext {agreement:.3f}, accuracy {accuracy:.3f}")


def test_the_commands_show_the_tournament_and_refuse_in_one_line(market: Market, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`admin tournament show|report` and `modeler show` (in this process: the command's
    own `main`) and a refused `modeler submit` as a process of its own (exit code, one line)."""
    from mutualmind.cli import main
    from mutualmind.vocabulary.signing_keys import save_private_key

    target = ["--data-dir", str(market.cluster.data_dir)]
    assert main(["admin", "tournament", "show", "t1", "--json", *target]) == 0
    view = json.loads(capsys.readouterr().out)
    assert view["status"] == "closed" and [m["model_id"] for m in view["models"]] == ["good", "noisy", "good-copy"]
    assert main(["modeler", "show", "t1", *target]) == 0
    text = capsys.readouterr().out
    assert "metamodel" in text and "good" in text and market.datasets[0] in text
    picture = tmp_path / "t1.png"
    assert main(["admin", "tournament", "report", "t1", "--png", str(picture), *target]) == 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 10_000
    key = tmp_path / "modeler.pem"
    save_private_key(market.clients["modeler-a"].key, key)
    key.with_name("modeler.pem.id").write_text("modeler-a\n")
    before = _size(market)
    late = subprocess.run(
        [sys.executable, "-m", "mutualmind", "modeler", "submit", "t1", "--key", str(key), "--model-id", "late",
         "--recipe", json.dumps(RECIPE), "--datasets", ",".join(market.datasets[:3]), "--stake", "10", *target],
        capture_output=True, text=True, timeout=60, check=False)
    assert late.returncode == 6, late                      # a rule violation's exit code
    assert late.stderr.count("\n") == 1 and "tournament_state" in late.stderr
    assert _size(market) == before


def test_verify_reruns_the_resolution_and_agrees(market: Market, capsys: pytest.CaptureFixture[str]) -> None:
    """`admin tournament verify t1`: the nodes resolve the frozen models again and every
    recorded number is matched within the tolerance; the verdict goes on the ledger."""
    from mutualmind.cli import main

    before = _size(market)
    target = ["--data-dir", str(market.cluster.data_dir)]
    code = main(["admin", "tournament", "verify", "t1", "--json", *target])
    out, err = capsys.readouterr()
    assert code == 0, (out, err)
    view = json.loads(out)
    assert view["agrees"] and not view["flipped"]
    labels = [row["number"] for row in view["rows"]]
    assert labels[:4] == ["metamodel", "good", "noisy", "good-copy"] and len(labels) == 4 + 3 * 3
    assert view["max_abs_diff_micro"] <= view["tolerance_micro"]
    assert any(row["recorded_micro"] != 0 for row in view["rows"])
    assert _size(market) == before + 1      # the verdict, recorded as tournament_verified
    # no result to verify yet: a rule violation's exit code and one line
    assert main(["admin", "tournament", "verify", "t-refuse", *target]) == 6
    assert "tournament_state" in capsys.readouterr().err


def test_the_closed_tournaments_metamodel_is_owned_and_sells_predictions(market: Market) -> None:
    """Issue 16 on the tournament above: its settlement issued the metamodel's units to
    those its model payouts paid (modelers and their data providers, never the sponsor);
    owners with a majority set a price; a user buys the metamodel's predictions in one
    inference job (every frozen model on the query shares, combined by the metamodel
    weights), and the fee is paid out to the owners as a dividend."""
    from mutualmind.demo.inference_story import query_table
    from mutualmind.vocabulary.ownership import UNITS_PER_MODEL, inference_fee
    from mutualmind.vocabulary.signed_requests import new_price_proposal, sign_price_proposal
    from provider.client import get_model, pay_dividend, submit_price_change
    from provider.predict import predict, wait_for

    session = market.session
    model = get_model(session.market_channel, "t1")
    holders = {h.account: h.units for h in model.holders}
    assert model.source_kind == "tournament" and model.price_per_1000_rows == 0   # not for sale yet
    assert sum(holders.values()) == UNITS_PER_MODEL and "sponsor" not in holders and "modeler-c" not in holders
    # both levels: the good model's modeler and a provider of the data it used
    assert holders["modeler-a"] > 0 and any(h.startswith("provider-") for h in holders), holders
    _refused(market, "not for sale", lambda: predict(
        session.market_channel, session.node_channels, market.sponsor.key, "sponsor", "t1",
        query_table(market.scenario.validation, 2), session.node_keys))
    proposal, signed = new_price_proposal("t1", 1_000), 0
    for owner in sorted(holders, key=lambda h: -holders[h]):   # owners sign until a majority
        proposal = sign_price_proposal(market.clients[owner].key, owner, proposal)
        signed += holders[owner]
        if 2 * signed > UNITS_PER_MODEL:
            break
    submit_price_change(session.market_channel, proposal)
    price = get_model(session.market_channel, "t1").price_per_1000_rows
    assert price == 1_000

    buyer = session.enrol("meta-user", mint=2_000)
    rows = 8
    queries = query_table(market.scenario.validation, rows)
    started = time.monotonic()
    result = predict(session.market_channel, session.node_channels, buyer.key, "meta-user", "t1", queries,
                     session.node_keys)
    seconds = time.monotonic() - started
    probabilities = result.outputs[:, 0]
    validation = market.scenario.validation
    truth = validation.values[:rows, list(validation.schema.columns).index(validation.schema.label_column)]
    assert result.outputs.shape == (rows, 1) and result.probabilities
    assert np.all((probabilities > -0.01) & (probabilities < 1.01)), probabilities
    assert (result.labels() == truth).mean() >= 0.75, (probabilities, truth)
    assert result.fee == inference_fee(price, rows) > 0 and session.balance("meta-user").balance == 2_000 - result.fee
    delivered = wait_for(session.market_channel, result.order_id, ("delivered", "failed"), timeout_s=60)
    assert delivered.state == "delivered", delivered.message
    paid = pay_dividend(session.market_channel, "t1")
    assert paid.amount == result.fee and {p.account for p in paid.payments} <= set(holders)
    verified = session.verify_ledger()
    assert verified.ok, verified.error
    print(f"metamodel inference: {rows} rows in {seconds:.2f} s, job {result.stats.get('job_s')} s, "
          f"{result.stats.get('rounds')} rounds")
