"""The demo's story, step by step, through the same APIs every real user calls.

Providers register, get tokens, share their tables from "their own machine" to the
nodes and stake; the sponsor shares a validation set and opens a round; the admin runs
it; the result is read back from the ledger and the ledger is verified. Nothing here
reaches into a process: every step is a real gRPC call over (m)TLS to a real cluster.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mutualmind.cluster.local import LocalCluster
from mutualmind.demo.scenario import Scenario, plaintext_accuracy

Say = Callable[[str], None]

MINT = 10_000
STAKE = 1_000
POOL = 5_000
SLASH_RATE_PPM = 500_000     # half the stake of data that made the model worse
EPSILON_MICRO = 1_000        # contributions within ±0.001 of the metric pay nothing


@dataclass
class DemoResult:
    round_id: str
    metric: str
    metric_full: float
    accuracy_mpc: float | None
    plaintext_metric_full: float
    pool: int
    providers: list[dict[str, Any]]
    ledger: dict[str, Any]
    data_dir: str
    view: Any = field(repr=False, default=None)

    def to_json(self) -> dict[str, Any]:
        return {"round": self.round_id, "metric": self.metric, "metric_full": self.metric_full,
                "accuracy_mpc": self.accuracy_mpc,
                "plaintext_metric_full": self.plaintext_metric_full, "pool": self.pool,
                "providers": self.providers, "ledger": self.ledger, "data_dir": self.data_dir}


def model_spec_for(scenario: Scenario, epochs: int) -> dict[str, Any]:
    if scenario.classes > 2:
        return {"kind": "softmax", "task": "multiclass", "classes": scenario.classes,
                "metric": "log_loss", "epochs": epochs}
    return {"kind": "logistic", "task": "binary", "metric": "log_loss", "epochs": epochs}


def run_story(cluster: LocalCluster, scenario: Scenario, *, say: Say, epochs: int = 20,
              round_id: str = "round-1", deadline_s: float = 600.0) -> DemoResult:
    import grpc  # noqa: F401  (grpc is needed from here on)

    from coordinator.admin_cli.round_open import RoundTerms, signed_open_round
    from coordinator.admin_cli.target import AdminTarget, CoordinatorClient
    from ledger.keys import generate_signing_key
    from mutualmind.cluster.certs import load_manifest
    from mutualmind.transport import channel_credentials, open_channel
    from proto import admin_pb2, market_pb2
    from provider.client import MarketClient, upload_shares
    from provider.sharing import share_table, validate_table

    certs = cluster.certs_dir
    n_nodes = len(cluster.node_public_addresses)
    node_keys = [m.signing_public_key or b"" for m in load_manifest(certs).nodes]
    public = channel_credentials(certs, None)
    market_channel = open_channel(cluster.market_address, public, server_name="coordinator")
    node_channels = [open_channel(a, public, server_name=f"node{i}")
                     for i, a in enumerate(cluster.node_public_addresses)]
    admin = CoordinatorClient(AdminTarget(cluster.admin_address, cluster.market_address, certs))
    try:
        def provider_client(name: str) -> MarketClient:
            client = MarketClient(market_channel, generate_signing_key(), name)
            client.register()
            admin.call(admin.admin, "Mint", admin_pb2.MintRequest(
                provider_id=name, amount=MINT, memo="demo tokens"))
            return client

        def share(client: MarketClient, dataset_id: str, table: Any, purpose: str) -> None:
            validate_table(table, expected_schema=scenario.schema)
            shared = share_table(table, n_nodes)      # on the provider's machine
            client.register_dataset(dataset_id, shared, purpose=purpose)
            upload_shares(node_channels, dataset_id, shared, node_public_keys=node_keys)

        datasets = []
        for part in scenario.providers:
            client = provider_client(part.name)
            dataset_id = f"{part.name}-data"
            share(client, dataset_id, part.table, "training")
            client.stake(dataset_id, STAKE)
            datasets.append(dataset_id)
            say(f"{part.name} ({part.role}): {part.rows} rows secret-shared over {n_nodes} "
                f"nodes, {STAKE} tokens staked")
        sponsor = provider_client("sponsor")
        share(sponsor, "sponsor-validation", scenario.validation, "validation")
        say(f"sponsor: {scenario.validation.rows} validation rows shared")
        spec = model_spec_for(scenario, epochs)
        terms = RoundTerms(round_id=round_id, sponsor="sponsor", pool=POOL, model_spec=spec,
                           validation_dataset="sponsor-validation", datasets=tuple(datasets),
                           slash_rate_ppm=SLASH_RATE_PPM, epsilon_micro=EPSILON_MICRO)
        admin.call(admin.market, "OpenRound", signed_open_round(sponsor.key, terms))
        say(f"sponsor opened {round_id}: pool {POOL} tokens, model {spec['kind']}, "
            f"metric {spec['metric']}")
        view = None
        last = ""
        for event in admin.stream(admin.admin, "RunRound",
                                  admin_pb2.RunRoundRequest(round_id=round_id, deadline_s=deadline_s),
                                  timeout=deadline_s + 60):
            line = f"  [{event.stage} {event.fraction:4.0%}] {event.message}"
            if event.message and event.stage != "done" and line != last:
                say(line)
                last = line
            if event.HasField("round"):
                view = event.round
        if view is None:
            view = admin.call(admin.admin, "GetRound", market_pb2.GetRoundRequest(round_id=round_id))
        verified = admin.call(admin.admin, "VerifyLedger", admin_pb2.VerifyLedgerRequest())
    finally:
        admin.close()
        for channel in (market_channel, *node_channels):
            channel.close()

    roles = {f"{p.name}-data": p for p in scenario.providers}
    providers = [{
        "name": roles[p.dataset_id].name, "role": roles[p.dataset_id].role, "rows": p.rows,
        "stake": p.stake, "contribution": p.contribution_micro / 1e6, "payout": p.payout,
        "slashed": p.slashed} for p in view.participants]
    stats = json.loads(view.stats_json or "{}")
    parties = stats.get("parties") or [{}]
    accuracy = parties[0].get("accuracy_full")
    return DemoResult(
        round_id=round_id, metric=spec["metric"],
        metric_full=view.metrics_micro[0] / 1e6 if view.metrics_micro else float("nan"),
        accuracy_mpc=accuracy, plaintext_metric_full=plaintext_accuracy(scenario), pool=POOL,
        providers=providers,
        ledger={"ok": verified.ok, "entries": verified.entries,
                "root": bytes(verified.root_hash).hex(), "error": verified.error},
        data_dir=str(Path(cluster.data_dir)), view=view)
