"""One marketplace session against a running cluster: enrol, share, stake, open, run.

The demo and the end-to-end tests drive a cluster through this class, which only
composes the public clients (provider `MarketClient` + `upload_shares`, the admin
`CoordinatorClient`, the sponsor's `signed_open_round`): every step is a real gRPC call
over (m)TLS.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mutualmind.cluster.local import LocalCluster
from mutualmind.vocabulary.deadlines import ROUND_S, ROUND_SLACK_S

Say = Callable[[str], None]


class MarketSession:
    """Channels to a cluster's coordinator and nodes, for the length of a `with` block."""

    def __init__(self, cluster: LocalCluster) -> None:
        from coordinator.admin_cli.coordinator_client import CoordinatorClient
        from coordinator.admin_cli.target import AdminTarget
        from mutualmind.transport import channel_credentials, open_channel
        from mutualmind.transport.pki import load_manifest

        self.certs: Path = cluster.certs_dir
        self.node_keys = [m.signing_public_key or b"" for m in load_manifest(self.certs).nodes]
        public = channel_credentials(self.certs, None)
        self.market_channel = open_channel(cluster.market_address, public,
                                           server_name="coordinator")
        self.node_channels = [open_channel(a, public, server_name=f"node{i}")
                              for i, a in enumerate(cluster.node_public_addresses)]
        self.admin = CoordinatorClient(
            AdminTarget(cluster.admin_address, cluster.market_address, self.certs))

    def __enter__(self) -> MarketSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.admin.close()
        for channel in (self.market_channel, *self.node_channels):
            channel.close()

    def enrol(self, name: str, *, mint: int) -> Any:
        """Register a fresh provider key under `name` and mint it `mint` tokens."""
        from mutualmind.vocabulary.signing_keys import generate_signing_key
        from proto import admin_pb2
        from provider.client import MarketClient

        client = MarketClient(self.market_channel, generate_signing_key(), name)
        client.register()
        if mint:
            self.admin.call(self.admin.admin, "Mint",
                            admin_pb2.MintRequest(provider_id=name, amount=mint, memo="demo"))
        return client

    def share(self, client: Any, dataset_id: str, table: Any, *, purpose: str,
              expected_schema: Any = None) -> None:
        """Validate, secret-share (locally), register and upload a table to every node."""
        from provider.client import upload_shares
        from provider.sharing import share_table, validate_table

        validate_table(table, expected_schema=expected_schema)
        shared = share_table(table, len(self.node_channels))
        client.register_dataset(dataset_id, shared, purpose=purpose)
        upload_shares(self.node_channels, dataset_id, shared, node_public_keys=self.node_keys)

    def open_round(self, sponsor: Any, terms: Any) -> Any:
        from mutualmind.vocabulary.round_open import signed_open_round

        return self.admin.call(self.admin.market, "OpenRound", signed_open_round(sponsor.key, terms))

    def run_round(self, round_id: str, *, deadline_s: float = ROUND_S,
                  say: Say | None = None) -> Any:
        """Run the round (Admin.RunRound), relaying new progress lines; the final view."""
        from proto import admin_pb2

        view, last = None, ""
        request = admin_pb2.RunRoundRequest(round_id=round_id, deadline_s=deadline_s)
        for event in self.admin.stream(self.admin.admin, "RunRound", request,
                                       timeout=deadline_s + ROUND_SLACK_S):
            line = f"  [{event.stage} {event.fraction:4.0%}] {event.message}"
            if say is not None and event.message and event.stage != "done" and line != last:
                say(line)
                last = line
            if event.HasField("round"):
                view = event.round
        return view if view is not None else self.get_round(round_id)

    def get_round(self, round_id: str) -> Any:
        from proto import market_pb2

        return self.admin.call(self.admin.admin, "GetRound",
                               market_pb2.GetRoundRequest(round_id=round_id))

    def verify_ledger(self) -> Any:
        from proto import admin_pb2

        return self.admin.call(self.admin.admin, "VerifyLedger", admin_pb2.VerifyLedgerRequest())

    def collect_model(self, sponsor: Any, round_id: str) -> Any:
        """The sponsor fetches every node's model share and reconstructs the model."""
        from provider.model_collect import collect_model

        return collect_model(self.market_channel, self.node_channels, sponsor.key,
                             sponsor.provider_id, round_id, self.node_keys)

    def balance(self, provider_id: str) -> Any:
        from proto import market_pb2

        return self.admin.call(self.admin.market, "GetBalance",
                               market_pb2.BalanceRequest(provider_id=provider_id))
