"""The demo's story, step by step, through the same APIs every real user calls.

Providers register, get tokens, share their tables from "their own machine" to the
nodes and stake; the sponsor shares a validation set and opens a round; the admin runs
it; a user buys predictions from the round's model and its owners are paid a dividend
(`inference_story`); the result is read back from the ledger and the ledger is verified. Nothing here
reaches into a process: every step is a real gRPC call over (m)TLS to a real cluster.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mutualmind.cluster.local import LocalCluster
from mutualmind.demo.inference_story import query_table, run_inference
from mutualmind.demo.scenario import Scenario, plaintext_metrics
from mutualmind.demo.session import MarketSession, Say
from mutualmind.vocabulary.deadlines import ROUND_S

MINT = 10_000
STAKE = 1_000
POOL = 5_000
SLASH_RATE_PPM = 500_000     # half the stake of data that made the model worse
EPSILON_MICRO = 1_000        # contributions within ±0.001 of the metric pay nothing
INFERENCE_PRICE = 10         # tokens per started 1,000 rows of the round's model's predictions


@dataclass
class DemoResult:
    round_id: str
    metric: str
    metric_full: float
    accuracy_mpc: float | None
    accuracy_collected: float
    plaintext_metric_full: float
    plaintext_accuracy: float
    pool: int
    providers: list[dict[str, Any]]
    ledger: dict[str, Any]
    data_dir: str
    # after the round: {rows, fee, predictions_match, owners[{name, units, dividend}]}
    inference: dict[str, Any] | None = None
    view: Any = field(repr=False, default=None)

    def to_json(self) -> dict[str, Any]:
        return {"round": self.round_id, "metric": self.metric, "metric_full": self.metric_full,
                "accuracy_mpc": self.accuracy_mpc, "accuracy_collected": self.accuracy_collected,
                "plaintext_metric_full": self.plaintext_metric_full,
                "plaintext_accuracy": self.plaintext_accuracy, "pool": self.pool,
                "providers": self.providers, "ledger": self.ledger, "data_dir": self.data_dir,
                "inference": self.inference}


def model_spec_for(scenario: Scenario, epochs: int) -> dict[str, Any]:
    if scenario.classes > 2:
        return {"kind": "softmax", "task": "multiclass", "classes": scenario.classes,
                "metric": "log_loss", "epochs": epochs}
    return {"kind": "logistic", "task": "binary", "metric": "log_loss", "epochs": epochs}


def run_story(cluster: LocalCluster, scenario: Scenario, *, say: Say, epochs: int = 20,
              round_id: str = "round-1", deadline_s: float = ROUND_S) -> DemoResult:
    from mutualmind.vocabulary.round_open import RoundTerms
    from provider.model_collect import evaluate

    with MarketSession(cluster) as session:
        datasets = []
        for part in scenario.providers:
            client = session.enrol(part.name, mint=MINT)
            dataset_id = f"{part.name}-data"
            session.share(client, dataset_id, part.table, purpose="training",
                          expected_schema=scenario.schema)
            client.stake(dataset_id, STAKE)
            datasets.append(dataset_id)
            say(f"{part.name} ({part.role}): {part.rows} rows secret-shared over "
                f"{len(session.node_channels)} nodes, {STAKE} tokens staked")
        sponsor = session.enrol("sponsor", mint=MINT)
        session.share(sponsor, "sponsor-validation", scenario.validation, purpose="validation",
                      expected_schema=scenario.schema)
        say(f"sponsor: {scenario.validation.rows} validation rows shared")
        spec = model_spec_for(scenario, epochs)
        session.open_round(sponsor, RoundTerms(
            round_id=round_id, sponsor="sponsor", pool=POOL, model_spec=spec,
            validation_dataset="sponsor-validation", datasets=tuple(datasets),
            slash_rate_ppm=SLASH_RATE_PPM, epsilon_micro=EPSILON_MICRO,
            inference_price_per_1000_rows=INFERENCE_PRICE))
        say(f"sponsor opened {round_id}: pool {POOL} tokens, model {spec['kind']}, "
            f"metric {spec['metric']}, predictions {INFERENCE_PRICE} tokens per 1,000 rows")
        view = session.run_round(round_id, deadline_s=deadline_s, say=say)
        model = session.collect_model(sponsor, round_id)
        val = scenario.validation.values
        _, collected_accuracy = evaluate(model, val[:, :-1], val[:, -1])
        say(f"sponsor collected the model from the {len(session.node_channels)} nodes' shares: "
            f"validation accuracy {collected_accuracy:.4f}")
        inference = run_inference(session, round_id, model, query_table(scenario.validation), say=say)
        verified = session.verify_ledger()

    roles = {f"{p.name}-data": p for p in scenario.providers}
    providers = [{
        "name": roles[p.dataset_id].name, "role": roles[p.dataset_id].role, "rows": p.rows,
        "stake": p.stake, "contribution": p.contribution_micro / 1e6, "payout": p.payout,
        "slashed": p.slashed} for p in view.participants]
    stats = json.loads(view.stats_json or "{}")
    parties = stats.get("parties") or [{}]
    plain = plaintext_metrics(scenario)
    return DemoResult(
        round_id=round_id, metric=spec["metric"],
        metric_full=view.metrics_micro[0] / 1e6 if view.metrics_micro else float("nan"),
        accuracy_mpc=parties[0].get("accuracy_full"), accuracy_collected=collected_accuracy,
        plaintext_metric_full=plain["log_loss"], plaintext_accuracy=plain["accuracy"],
        pool=POOL, providers=providers,
        ledger={"ok": verified.ok, "entries": verified.entries,
                "root": bytes(verified.root_hash).hex(), "error": verified.error},
        data_dir=str(Path(cluster.data_dir)), inference=inference, view=view)
