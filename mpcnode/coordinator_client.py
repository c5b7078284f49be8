"""The node's clients of the coordinator's Market API (a TLS channel to its market port).

`CoordinatorMarket` implements `mpcnode.market_view.MarketView` (rounds and provider keys)
and `CoordinatorRegistry` implements `mpcnode.registry.DatasetRegistry` (dataset
registrations). Both check what they receive with the pure functions of those modules, so
the node trusts signatures, not the coordinator; an unreachable coordinator becomes
Unavailable naming the lookup, any other failure the typed error the coordinator sent.
"""

from __future__ import annotations

import json
from typing import Any

from mpcnode.market_view import (
    RoundFacts,
    TournamentFacts,
    check_provider_registration,
    check_round,
)
from mpcnode.registry import RegisteredDataset
from mutualmind.errors import IntegrityError, Unavailable
from mutualmind.vocabulary.deadlines import COORDINATOR_LOOKUP_S
from proto import market_pb2


class CoordinatorMarket:
    """`MarketView` over the coordinator's Market API (a TLS channel to its market port)."""

    def __init__(self, channel: Any, *, timeout_s: float = COORDINATOR_LOOKUP_S) -> None:
        from proto import market_pb2_grpc

        self._stub = market_pb2_grpc.MarketStub(channel)
        self._timeout_s = timeout_s

    def round(self, round_id: str) -> RoundFacts:
        view = self._call("GetRound", market_pb2.GetRoundRequest(round_id=round_id), round_id)
        if view.round_id != round_id:
            raise IntegrityError(f"the coordinator answered for round {view.round_id!r} "
                                 f"when asked for {round_id!r}")
        try:
            sponsor = json.loads(view.opened_payload_json)["sponsor"]
        except (ValueError, KeyError, TypeError):
            sponsor = view.sponsor
        return check_round(round_id, view.opened_payload_json, bytes(view.sponsor_signature),
                           self.provider_key(str(sponsor)), status=view.status,
                           job_digest=view.job_digest, metrics_micro=list(view.metrics_micro))

    def tournament_status(self, tournament_id: str) -> str:
        return self._tournament_view(tournament_id).status

    def tournament(self, tournament_id: str) -> TournamentFacts:
        view = self._tournament_view(tournament_id)
        try:
            models = json.loads(view.view_json)["models"]
            commitments = {str(m["model_id"]): str(m["commitment"]) for m in models}
        except (ValueError, KeyError, TypeError):
            raise IntegrityError(f"the coordinator sent an unreadable view of tournament {tournament_id!r}; "
                                 "check that coordinator and node run the same version") from None
        return TournamentFacts(tournament_id, str(view.status), commitments)

    def _tournament_view(self, tournament_id: str) -> Any:
        view = self._call("GetTournament", market_pb2.GetTournamentRequest(tournament_id=tournament_id),
                          tournament_id)
        if view.tournament_id != tournament_id:
            raise IntegrityError(f"the coordinator answered for tournament {view.tournament_id!r} "
                                 f"when asked for {tournament_id!r}")
        return view

    def provider_key(self, provider_id: str) -> bytes:
        reply = self._call("GetProvider", market_pb2.GetProviderRequest(provider_id=provider_id),
                           provider_id)
        if reply.provider_id != provider_id:
            raise IntegrityError(f"the coordinator answered for provider {reply.provider_id!r} "
                                 f"when asked for {provider_id!r}")
        return check_provider_registration(provider_id, reply.name, bytes(reply.public_key),
                                           reply.nonce, bytes(reply.signature))

    def _call(self, method: str, request: Any, what: str) -> Any:
        from mutualmind.transport import call

        return call(self._stub, method, request, timeout=self._timeout_s, unreachable=lambda code: Unavailable(
            f"this node cannot reach the coordinator to look up {what!r} ({code}); retry later"))


class CoordinatorRegistry:
    """Looks registrations up with Market.GetDataset and verifies them locally.

    `channel` is a TLS channel to the coordinator's market port (see
    `mutualmind.transport.open_channel`). Lookups are not cached: an upload happens once
    per dataset and node, and a fresh answer cannot be stale.
    """

    def __init__(self, channel: Any, *, timeout_s: float = COORDINATOR_LOOKUP_S) -> None:
        from proto import market_pb2_grpc

        self._stub = market_pb2_grpc.MarketStub(channel)
        self._timeout_s = timeout_s

    def get(self, dataset_id: str) -> RegisteredDataset:
        from mutualmind.transport import call

        # say whose link is down: the uploader would otherwise blame the node
        reply = call(
            self._stub, "GetDataset", market_pb2.GetDatasetRequest(dataset_id=dataset_id),
            timeout=self._timeout_s, unreachable=lambda code: Unavailable(
                f"this node cannot reach the coordinator to look up dataset {dataset_id!r} "
                f"({code}); nothing was stored - retry the upload later"))
        if reply.registration.dataset_id != dataset_id:
            raise IntegrityError(
                f"the coordinator answered for dataset {reply.registration.dataset_id!r} "
                f"when asked for {dataset_id!r}"
            )
        return RegisteredDataset.from_registration(reply.registration, reply.provider_public_key)
