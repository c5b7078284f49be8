"""`mutualmind demo --tournament`: the model market's story, through the public APIs.

Providers share and stake their tables (the scenario: honest ones, a noisy one, a
duplicate); the sponsor shares held-out rows and opens a tournament; four modelers submit
signed models: a good logistic model and an MLP on honest data, a model that chooses the
noisy data, and a copy of the good model's submission. At the deadline the nodes train
and freeze every model in MPC; the sponsor commits its held-out rows as the resolution;
the nodes reveal the metamodel's metric and the contributions; the coordinator settles
both levels. The copy submits the good model's recipe on the same datasets: it and its
original form one group that the metamodel weighs and leaves as a unit, so the copy earns
nothing (the group's contribution is the original's). The noisy provider misses most of its positive cases
(`MISSED_FRACTION`, the scenario's `noise="missed"`), and the modeler that chose it stakes
twice as much as the others, so its model hurts the metamodel beyond epsilon: it is
slashed and passes part of the slash to the noisy provider. The bounty is paid or
refunded by the threshold.
"""

from __future__ import annotations

import json
import time
from typing import Any

from mutualmind.cluster.local import LocalCluster
from mutualmind.demo.scenario import Scenario
from mutualmind.demo.session import MarketSession, Say
from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.deadlines import ROUND_S, ROUND_SLACK_S
from mutualmind.vocabulary.metamodel_weights import metamodel_weights
from mutualmind.vocabulary.model_spec import LOWER_IS_BETTER

MINT = 10_000
STAKE = 1_000
MODEL_STAKE = 500
NOISY_STAKE = 1_000           # the noisy-data modeler believes in its data: twice the stake
MISSED_FRACTION = 0.8         # the noisy provider records 80% of its positive cases as negative
POOL = 4_000
SLASH_RATE_PPM = 200_000
THRESHOLD_MICRO = 400_000     # the metamodel's log-loss must fall below 0.4
SUBMISSION_S = 20.0           # submissions close this long after the open


def run_tournament_story(cluster: LocalCluster, scenario: Scenario, *, say: Say, epochs: int = 20,
                         tournament_id: str = "tournament-1", deadline_s: float = ROUND_S) -> dict[str, Any]:
    """Run the story on a started cluster; the demo's JSON object."""
    from mutualmind.vocabulary.tournament import ModelSubmission, TournamentTerms
    from proto import admin_pb2

    if scenario.classes != 2:
        raise InvalidInput("the tournament demo needs a binary label (breast_cancer)")
    with MarketSession(cluster) as session:
        roles: dict[str, str] = {}
        for part in scenario.providers:
            client = session.enrol(part.name, mint=MINT)
            dataset_id = f"{part.name}-data"
            session.share(client, dataset_id, part.table, purpose="training", expected_schema=scenario.schema)
            client.stake(dataset_id, STAKE)
            roles[dataset_id] = part.role
            say(f"{part.name} ({part.role}): {part.rows} rows secret-shared, {STAKE} tokens staked")
        sponsor = session.enrol("sponsor", mint=MINT)
        session.share(sponsor, "held-out", scenario.validation, purpose="validation", expected_schema=scenario.schema)
        honest = [d for d, r in roles.items() if r == "honest"]
        noisy = next(d for d, r in roles.items() if r == "noisy")
        duplicate = next(d for d, r in roles.items() if r == "duplicate")
        if len(honest) < 3:
            raise InvalidInput("the tournament demo needs 5 providers or more (three honest)")
        deadline = int((time.time() + SUBMISSION_S) * 1000)
        sponsor.open_tournament(TournamentTerms(
            tournament_id=tournament_id, sponsor="sponsor", label_kind="binary", metric="log_loss", pool=POOL,
            threshold_micro=THRESHOLD_MICRO, deadline_ms=deadline, datasets=tuple(roles),
            slash_rate_ppm=SLASH_RATE_PPM))
        say(f"sponsor opened {tournament_id}: pool {POOL}, metamodel log-loss must beat "
            f"{THRESHOLD_MICRO / 1e6:g}, submissions for {SUBMISSION_S:g} s")
        logistic = {"kind": "logistic", "epochs": epochs}
        entries = [  # (model, role, recipe, datasets); terms ask for three datasets a model
            ("ann-logistic", "good", logistic, honest[:3]),
            ("bo-mlp", "mlp", {"kind": "mlp", "hidden": 8, "epochs": epochs}, honest[:3]),
            ("cy-noisy", "noisy_data", logistic, [honest[0], noisy, duplicate]),
            ("dee-copy", "copy", logistic, honest[:3][::-1]),  # the same set, listed in another order
        ]
        for model_id, role, recipe, datasets in entries:
            modeler = session.enrol(model_id.split("-")[0], mint=MINT)
            stake = NOISY_STAKE if role == "noisy_data" else MODEL_STAKE
            modeler.submit_model(ModelSubmission(tournament_id, model_id, modeler.provider_id, recipe,
                                                 tuple(datasets), stake, 5_000))
            say(f"{modeler.provider_id} submitted {model_id} ({role}): {recipe['kind']} on {', '.join(datasets)}")
        time.sleep(max(0.0, deadline / 1000 - time.time()) + 0.5)
        admin = session.admin
        job = admin_pb2.TournamentJobRequest(tournament_id=tournament_id, deadline_s=deadline_s)
        say("the nodes train and freeze every model in MPC ...")
        admin.call(admin.admin, "TrainTournament", job, timeout=deadline_s + ROUND_SLACK_S)
        sponsor.commit_resolution(tournament_id, "held-out")
        say("sponsor committed its held-out rows; the nodes resolve the metamodel in MPC ...")
        view = json.loads(admin.call(admin.admin, "ResolveTournament", job,
                                     timeout=deadline_s + ROUND_SLACK_S).view_json)
        owners = metamodel_owners(session, tournament_id)
        if owners:
            held = ", ".join(f"{o['name']} {o['units']:,}" for o in owners)
            say(f"the metamodel {tournament_id} is owned by {len(owners)} accounts, pro rata to what they "
                f"earned: {held} units")
        verified = session.verify_ledger()
    return tournament_json(view, {m: r for m, r, _, _ in entries}, roles, verified, owners)


def metamodel_owners(session: MarketSession, tournament_id: str) -> list[dict[str, Any]]:
    """The metamodel's holders (issue 16), most units first; none when nobody earned."""
    from mutualmind.errors import NotFound
    from provider.client import get_model

    try:
        holders = get_model(session.market_channel, tournament_id).holders
    except NotFound:
        return []
    return [{"name": h.account, "units": h.units} for h in sorted(holders, key=lambda h: (-h.units, h.account))]


def bounty_paid(view: dict[str, Any]) -> bool:
    """Whether the metamodel beat the threshold (strictly, in the metric's direction)."""
    metric, threshold = view["metamodel_metric_micro"], view["threshold_micro"]
    if metric is None:
        return False
    return metric < threshold if view["task"]["metric"] in LOWER_IS_BETTER else metric > threshold


def tournament_json(view: dict[str, Any], model_roles: dict[str, str], dataset_roles: dict[str, str],
                    verified: Any, owners: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The demo's JSON object from the coordinator's summary."""
    weights = metamodel_weights([m["stake"] for m in view["models"]], view["weight_cap_ppm"])
    models = []
    for m, weight in zip(view["models"], weights, strict=True):
        paid = {p["dataset_id"]: p["amount"] for p in m["payouts"] if p["dataset_id"]}
        slashed: dict[str, int] = m["dataset_slashes"]
        parts = m["dataset_contributions_micro"] or [0] * len(m["datasets"])
        models.append({
            "name": m["model_id"], "role": model_roles[m["model_id"]], "copy_of": m["copy_of"],
            "stake": m["stake"], "weight": weight / 1e6,
            "contribution": (m["contribution_micro"] or 0) / 1e6,
            "payout": sum(p["amount"] for p in m["payouts"] if not p["dataset_id"]),
            "slashed": m["slashed"] + m["datasets_slashed"],
            "datasets": [{"name": d, "role": dataset_roles[d], "contribution": c / 1e6, "payout": paid.get(d, 0),
                          "slashed": slashed.get(d, 0)} for d, c in zip(m["datasets"], parts, strict=True)]})
    metric = view["metamodel_metric_micro"]
    return {"tournament": view["tournament_id"], "metric": view["task"]["metric"],
            "metamodel_metric": metric / 1e6 if metric is not None else None,
            "threshold": view["threshold_micro"] / 1e6, "bounty_paid": bounty_paid(view),
            "pool": view["pool"], "models": models, "metamodel_owners": owners or [],
            "ledger": {"ok": verified.ok, "entries": verified.entries, "root": bytes(verified.root_hash).hex()}}
