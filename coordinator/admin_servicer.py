"""The Admin gRPC servicer (cluster port, mutual TLS, admin certificates only).

Thin: checks the caller's role, translates protobuf to plain calls on the market,
rounds and ledger, and back. Progress of a running round streams as RoundProgress.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import grpc

from coordinator.cluster_link import ClusterLink
from coordinator.market import Market
from coordinator.market_servicer import round_view
from coordinator.round_verify import verify_round
from coordinator.rounds import Rounds
from coordinator.tournament_servicer import TournamentAdminRpcs
from coordinator.tournaments import Tournaments
from ledger import verify_ledger
from mutualmind.errors import InvalidInput
from mutualmind.transport import require_role
from mutualmind.vocabulary.deadlines import round_deadline
from mutualmind.vocabulary.states import EntryKind
from proto import admin_pb2, admin_pb2_grpc, market_pb2

ADMIN_ROLES = ("admin",)


@dataclass(frozen=True)
class _Done:
    error: BaseException | None


class AdminServicer(TournamentAdminRpcs, admin_pb2_grpc.AdminServicer):
    def __init__(self, market: Market, rounds: Rounds, link: ClusterLink,
                 tournaments: Tournaments | None = None) -> None:
        self._market = market
        self._rounds = rounds
        self._link = link
        self._tournaments = tournaments or Tournaments(rounds.ledger, rounds, rounds.state_dir / "tournaments")

    def Mint(self, request: admin_pb2.MintRequest,
             context: grpc.ServicerContext) -> admin_pb2.MintReply:
        require_role(context, *ADMIN_ROLES)
        entry = self._market.ledger.append(
            EntryKind.MINT, {"to": request.provider_id, "amount": request.amount, "memo": request.memo})
        return admin_pb2.MintReply(ledger_index=entry.index,
                                   balance=self._market.ledger.state.balance(request.provider_id))

    def ListNodes(self, request: admin_pb2.ListNodesRequest,
                  context: grpc.ServicerContext) -> admin_pb2.ListNodesReply:
        require_role(context, *ADMIN_ROLES)
        keys = self._market.ledger.state.nodes
        return admin_pb2.ListNodesReply(nodes=[
            admin_pb2.NodeInfo(index=n.index, name=n.name, public_address=n.public_address,
                               cluster_address=n.cluster_address,
                               signing_public_key=keys.get(n.index, b""),
                               health=self._link.node_health(n.index))
            for n in self._link.nodes])

    def ListProviders(self, request: admin_pb2.ListProvidersRequest,
                      context: grpc.ServicerContext) -> admin_pb2.ListProvidersReply:
        require_role(context, *ADMIN_ROLES)
        state = self._market.ledger.state
        providers = []
        for provider_id, key in sorted(state.providers.items()):
            view = self._market.balance(provider_id)
            name = self._market.get_provider(provider_id).payload["name"]
            providers.append(admin_pb2.ProviderInfo(
                provider_id=provider_id, name=name, public_key=key,
                balance=view.balance, staked=view.staked))
        return admin_pb2.ListProvidersReply(providers=providers)

    def VerifyLedger(self, request: admin_pb2.VerifyLedgerRequest,
                     context: grpc.ServicerContext) -> admin_pb2.VerifyLedgerReply:
        require_role(context, *ADMIN_ROLES)
        report = verify_ledger(self._market.ledger.path)
        return admin_pb2.VerifyLedgerReply(
            ok=report.ok, entries=report.entries, root_hash=report.root,
            total_supply=report.total_supply, error=report.error or report.problem or "",
            first_bad_index=-1 if report.first_bad_index is None else report.first_bad_index)

    def RunRound(self, request: admin_pb2.RunRoundRequest,
                 context: grpc.ServicerContext) -> Iterator[admin_pb2.RoundProgress]:
        """Run in a thread; stream its progress; the last message carries the round view."""
        require_role(context, *ADMIN_ROLES)
        if not request.round_id:
            raise InvalidInput("round_id is required")
        events: queue.Queue[admin_pb2.RoundProgress | _Done] = queue.Queue()

        def progress(stage: str, fraction: float, message: str) -> None:
            if stage != "done":   # the final message below carries "done" and the round
                events.put(admin_pb2.RoundProgress(stage=stage, fraction=round(fraction, 4),
                                                   message=message))

        def run() -> None:
            try:
                self._rounds.run(request.round_id, deadline_s=round_deadline(request.deadline_s),
                                 progress=progress)
                events.put(_Done(None))
            except BaseException as err:  # re-raised in the RPC thread below
                events.put(_Done(err))

        threading.Thread(target=run, name=f"round-{request.round_id}", daemon=True).start()
        while True:
            event = events.get()
            if isinstance(event, _Done):
                if event.error is not None:
                    raise event.error
                break
            yield event
        view = self._view(request.round_id)
        yield admin_pb2.RoundProgress(stage="done", fraction=1.0,
                                      message=f"round {view.round_id} {view.status}", round=view)

    def GetRound(self, request: market_pb2.GetRoundRequest,
                 context: grpc.ServicerContext) -> market_pb2.RoundView:
        require_role(context, *ADMIN_ROLES)
        return self._view(request.round_id)

    def ListRounds(self, request: admin_pb2.ListRoundsRequest,
                   context: grpc.ServicerContext) -> admin_pb2.ListRoundsReply:
        require_role(context, *ADMIN_ROLES)
        return admin_pb2.ListRoundsReply(
            rounds=[self._view(r) for r in self._market.ledger.state.rounds])

    def VerifyRound(self, request: admin_pb2.VerifyRoundRequest,
                    context: grpc.ServicerContext) -> admin_pb2.VerifyRoundReply:
        require_role(context, *ADMIN_ROLES)
        result = verify_round(self._rounds, request.round_id,
                              tolerance=request.tolerance or None,   # 0: the default (round_verify)
                              deadline_s=round_deadline(request.deadline_s))
        return admin_pb2.VerifyRoundReply(
            agrees=result.agrees, recorded_micro=result.recorded_micro,
            recomputed_micro=result.recomputed_micro,
            max_abs_diff_micro=result.max_abs_diff_micro, tolerance_micro=result.tolerance_micro)

    def AbortRound(self, request: admin_pb2.AdminAbortRoundRequest,
                   context: grpc.ServicerContext) -> market_pb2.RoundView:
        """Abort an open round that is not running: pool back to the sponsor, stakes unlock."""
        require_role(context, *ADMIN_ROLES)
        if not request.reason.strip():
            raise InvalidInput("say why the round is aborted (--reason); it goes on the ledger")
        self._rounds.abort(request.round_id, f"aborted by the admin: {request.reason}")
        return self._view(request.round_id)

    def _view(self, round_id: str) -> market_pb2.RoundView:
        return round_view(self._rounds, round_id)
