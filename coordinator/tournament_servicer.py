"""The tournament RPCs of the Market and Admin services (issue 15): thin translations.

Signed requests arrive as the payload's JSON and the signer's signature; the ledger's
rules check both (`ledger.tournament_rules`), so a refusal is a typed error with nothing
written. The servicers mix these methods in; `Tournaments` does the work.
"""

from __future__ import annotations

import json
from typing import Any

import grpc

from coordinator.tournament_verify import verify_tournament
from coordinator.tournaments import Tournaments, canonical
from mutualmind.errors import InvalidInput
from mutualmind.transport import require_role
from mutualmind.vocabulary.deadlines import round_deadline
from mutualmind.vocabulary.payloads import MAX_PAYLOAD_BYTES
from proto import admin_pb2, market_pb2

ADMIN_ROLES = ("admin",)


def signed_payload(request: market_pb2.SignedTournamentRequest) -> tuple[dict[str, Any], bytes]:
    """The payload object and signature of a signed request; InvalidInput if unreadable."""
    if len(request.payload_json) > MAX_PAYLOAD_BYTES:
        raise InvalidInput(f"payload_json is {len(request.payload_json)} characters, above the "
                           f"entry limit of {MAX_PAYLOAD_BYTES}")
    try:
        payload = json.loads(request.payload_json)
    except (ValueError, RecursionError):
        raise InvalidInput("payload_json is not valid JSON; send the payload you signed") from None
    if not isinstance(payload, dict):
        raise InvalidInput("payload_json must be a JSON object (the ledger payload you signed)")
    return payload, bytes(request.signature)


def tournament_view(tournaments: Tournaments, tournament_id: str, ledger_index: int = 0) -> market_pb2.TournamentView:
    summary = tournaments.summary(tournament_id)
    return market_pb2.TournamentView(tournament_id=tournament_id, status=summary["status"],
                                     view_json=canonical(summary), ledger_index=ledger_index)


class TournamentMarketRpcs:
    """Market: open, submit, commit the resolution, read."""

    _tournaments: Tournaments

    def OpenTournament(self, request: market_pb2.SignedTournamentRequest,
                       context: grpc.ServicerContext) -> market_pb2.TournamentView:
        entry = self._tournaments.open(*signed_payload(request))
        return tournament_view(self._tournaments, entry.payload["tournament_id"], entry.index)

    def SubmitModel(self, request: market_pb2.SignedTournamentRequest,
                    context: grpc.ServicerContext) -> market_pb2.TournamentView:
        entry = self._tournaments.submit(*signed_payload(request))
        return tournament_view(self._tournaments, entry.payload["tournament_id"], entry.index)

    def CommitResolution(self, request: market_pb2.SignedTournamentRequest,
                         context: grpc.ServicerContext) -> market_pb2.TournamentView:
        entry = self._tournaments.commit_resolution(*signed_payload(request))
        return tournament_view(self._tournaments, entry.payload["tournament_id"], entry.index)

    def GetTournament(self, request: market_pb2.GetTournamentRequest,
                      context: grpc.ServicerContext) -> market_pb2.TournamentView:
        return tournament_view(self._tournaments, request.tournament_id)

    def ListTournaments(self, request: market_pb2.ListTournamentsRequest,
                        context: grpc.ServicerContext) -> market_pb2.ListTournamentsReply:
        return market_pb2.ListTournamentsReply(tournaments=[
            tournament_view(self._tournaments, t) for t in self._tournaments.tournament_ids()])


class TournamentAdminRpcs:
    """Admin: the two MPC jobs, an abort before the result, a re-run to verify."""

    _tournaments: Tournaments

    def TrainTournament(self, request: admin_pb2.TournamentJobRequest,
                        context: grpc.ServicerContext) -> market_pb2.TournamentView:
        require_role(context, *ADMIN_ROLES)
        entry = self._tournaments.train(request.tournament_id, deadline_s=round_deadline(request.deadline_s))
        return tournament_view(self._tournaments, request.tournament_id, entry.index)

    def ResolveTournament(self, request: admin_pb2.TournamentJobRequest,
                          context: grpc.ServicerContext) -> market_pb2.TournamentView:
        require_role(context, *ADMIN_ROLES)
        entries = self._tournaments.resolve(request.tournament_id, deadline_s=round_deadline(request.deadline_s))
        return tournament_view(self._tournaments, request.tournament_id, entries[-1].index)

    def AbortTournament(self, request: admin_pb2.AbortTournamentRequest,
                        context: grpc.ServicerContext) -> market_pb2.TournamentView:
        require_role(context, *ADMIN_ROLES)
        entries = self._tournaments.abort(request.tournament_id, request.reason)
        return tournament_view(self._tournaments, request.tournament_id, entries[-1].index)

    def VerifyTournament(self, request: admin_pb2.VerifyTournamentRequest,
                         context: grpc.ServicerContext) -> admin_pb2.VerifyTournamentReply:
        require_role(context, *ADMIN_ROLES)
        result = verify_tournament(self._tournaments, request.tournament_id,
                                   tolerance_micro=request.tolerance_micro or None,   # 0: the default
                                   deadline_s=round_deadline(request.deadline_s))
        return admin_pb2.VerifyTournamentReply(agrees=result.agrees, view_json=canonical(result.to_json()))
