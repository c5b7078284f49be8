"""The Market gRPC servicer (public port): protobuf in, plain calls, protobuf out.

Provider requests carry their own Ed25519 signatures; the ledger checks them. Typed
errors become gRPC statuses in `mutualmind.transport`'s interceptor.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc

from coordinator import ownership
from coordinator.inference import InferenceOrders, OrderStatus, order_entry_payload
from coordinator.market import Market
from coordinator.round_view import summarize
from coordinator.rounds import Rounds, RoundSummary
from coordinator.tournament_servicer import TournamentMarketRpcs
from coordinator.tournaments import Tournaments
from coordinator.witnesses import CheckpointWitnesses
from ledger.entries import Entry
from ledger.proof_file import build_proof
from mutualmind.errors import InvalidInput, NotFound, Unavailable
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.payloads import MAX_PAYLOAD_BYTES
from mutualmind.vocabulary.signed_requests import (
    abort_round_payload,
    dataset_registration_payload,
    dataset_registration_proto,
    terms_from_json,
    terms_update_payload,
)
from proto import common_pb2, market_pb2, market_pb2_grpc

MAX_LIST = 1000
# A ListEntries page stops before this many bytes (half the 8 MiB message limit), so a
# page of the largest entries still travels; every page holds at least one entry.
MAX_LIST_BYTES = 4 * 1024 * 1024


class MarketServicer(TournamentMarketRpcs, market_pb2_grpc.MarketServicer):
    def __init__(self, market: Market, rounds: Rounds,
                 witnesses: CheckpointWitnesses | None = None,
                 tournaments: Tournaments | None = None,
                 inference: InferenceOrders | None = None) -> None:
        self._market = market
        self._rounds = rounds
        self._tournaments = tournaments or Tournaments(rounds.ledger, rounds, rounds.state_dir / "tournaments")
        self._witnesses = witnesses  # None: checkpoints are served without node cosignatures
        self._inference = inference

    @property
    def _ledger(self) -> Any:
        return self._market.ledger

    def RegisterProvider(self, request: market_pb2.RegisterProviderRequest,
                         context: grpc.ServicerContext) -> market_pb2.RegisterProviderReply:
        entry = self._market.register_provider(request.name, request.name, bytes(request.public_key),
                                               request.nonce, bytes(request.signature))
        return market_pb2.RegisterProviderReply(provider_id=request.name, ledger_index=entry.index)

    def RegisterDataset(self, request: common_pb2.DatasetRegistration,
                        context: grpc.ServicerContext) -> market_pb2.RegisterDatasetReply:
        entry = self._market.register_dataset(dataset_registration_payload(request), bytes(request.signature))
        return market_pb2.RegisterDatasetReply(ledger_index=entry.index)

    def GetDataset(self, request: market_pb2.GetDatasetRequest,
                   context: grpc.ServicerContext) -> market_pb2.GetDatasetReply:
        view = self._market.get_dataset(request.dataset_id)
        signature = self._ledger.entry(view.ledger_index).provider_signature or b""
        return market_pb2.GetDatasetReply(
            registration=dataset_registration_proto(view.payload, signature),
            provider_public_key=view.provider_public_key,
            ledger_index=view.ledger_index, staked=view.staked)

    def Stake(self, request: market_pb2.StakeRequest,
              context: grpc.ServicerContext) -> market_pb2.StakeReply:
        return self._stake(request, unstake=False)

    def Unstake(self, request: market_pb2.StakeRequest,
                context: grpc.ServicerContext) -> market_pb2.StakeReply:
        return self._stake(request, unstake=True)

    def _stake(self, request: market_pb2.StakeRequest, *, unstake: bool) -> market_pb2.StakeReply:
        auth = request.auth
        entry = self._market.stake(auth.provider_id, request.dataset_id, request.amount,
                                   auth.nonce, bytes(auth.signature), unstake=unstake)
        state = self._ledger.state
        return market_pb2.StakeReply(ledger_index=entry.index,
                                     staked=state.stakes.get(request.dataset_id, 0),
                                     balance=state.balance(auth.provider_id))

    def GetBalance(self, request: market_pb2.BalanceRequest,
                   context: grpc.ServicerContext) -> market_pb2.BalanceReply:
        view = self._market.balance(request.provider_id)
        return market_pb2.BalanceReply(provider_id=view.provider_id, balance=view.balance,
                                       staked=view.staked, stakes=view.stakes)

    def ListEntries(self, request: market_pb2.ListEntriesRequest,
                    context: grpc.ServicerContext) -> market_pb2.ListEntriesReply:
        limit = min(request.limit or 100, MAX_LIST)
        entries = self._ledger.entries(start=request.start, limit=limit,
                                       kind=request.kind or None, party=request.party or None)
        reply = market_pb2.ListEntriesReply()
        size = 0
        for entry in entries:
            proto_entry = entry_proto(entry)
            size += proto_entry.ByteSize() + 16
            if reply.entries and size > MAX_LIST_BYTES:
                break  # the caller asks again from the next index
            reply.entries.append(proto_entry)
        return reply

    def GetCheckpoint(self, request: market_pb2.CheckpointRequest,
                      context: grpc.ServicerContext) -> market_pb2.CheckpointReply:
        witnesses = self._witnesses
        note = witnesses.current_note() if witnesses is not None else self._ledger.checkpoint()
        size = int(note.split("\n")[1])
        return market_pb2.CheckpointReply(note=note, tree_size=size,
                                          root_hash=self._ledger.root_hash(size))

    def GetInclusionProof(self, request: market_pb2.InclusionProofRequest,
                          context: grpc.ServicerContext) -> market_pb2.InclusionProofReply:
        ledger = self._ledger
        if request.tree_size:
            notes = [note for size, note in ledger.checkpoints() if size == request.tree_size]
            if not notes:
                raise NotFound(f"no checkpoint of tree size {request.tree_size} is stored; "
                               "leave tree_size 0 for the newest one")
            note = notes[0]
        else:
            # signs one if none covers it yet, and asks the nodes to cosign it
            note = (self._witnesses.note_covering(request.index) if self._witnesses is not None
                    else ledger.checkpoint_covering(request.index))
        document = build_proof(ledger, request.index, note)
        return market_pb2.InclusionProofReply(
            index=request.index, tree_size=document["tree_size"],
            leaf_hash=bytes.fromhex(document["leaf_hash"]),
            proof=[bytes.fromhex(h) for h in document["proof"]], checkpoint_note=note,
            entry_json=json.dumps(document["entry"], sort_keys=True))

    def GetConsistencyProof(self, request: market_pb2.ConsistencyProofRequest,
                            context: grpc.ServicerContext) -> market_pb2.ConsistencyProofReply:
        size2 = request.size2 or self._ledger.size
        proof = self._ledger.consistency_proof(request.size1, size2)
        return market_pb2.ConsistencyProofReply(size1=request.size1, size2=size2, proof=proof)

    def OpenRound(self, request: market_pb2.OpenRoundRequest,
                  context: grpc.ServicerContext) -> market_pb2.OpenRoundReply:
        if len(request.model_spec_json) > MAX_PAYLOAD_BYTES:
            raise InvalidInput(f"model_spec_json is {len(request.model_spec_json)} characters, above "
                               f"the entry limit of {MAX_PAYLOAD_BYTES}; a model spec is a few fields")
        try:
            spec = json.loads(request.model_spec_json or "{}")
        except json.JSONDecodeError as err:
            raise InvalidInput(f"model_spec_json is not valid JSON ({err})") from None
        except (RecursionError, ValueError):  # nesting too deep, an integer of 4,300+ digits
            raise InvalidInput("model_spec_json nests too deeply or holds a number too large to "
                               "read; a model spec is a flat object of a few fields") from None
        if not isinstance(spec, dict):
            raise InvalidInput("model_spec_json must be a JSON object")
        entry = self._rounds.open_round(
            round_id=request.round_id, sponsor=request.auth.provider_id, pool=request.pool,
            model_spec=spec, validation_dataset=request.validation_dataset,
            datasets=list(request.datasets), slash_rate_ppm=request.slash_rate_ppm,
            epsilon_micro=request.epsilon_micro, nonce=request.auth.nonce,
            signature=bytes(request.auth.signature), expires_at_ms=request.expires_at_ms,
            inference_price_per_1000_rows=request.inference_price_per_1000_rows)
        return market_pb2.OpenRoundReply(ledger_index=entry.index)

    def AbortRound(self, request: market_pb2.AbortRoundRequest,
                   context: grpc.ServicerContext) -> market_pb2.AbortRoundReply:
        """The sponsor withdraws its round; the ledger checks the signature and that the
        signer is the round's sponsor (round_abort_requested), in one commit with the abort."""
        auth = request.auth
        pool = self._ledger.state.pools.get(request.round_id, 0)
        payload = abort_round_payload(auth.provider_id, request.round_id, request.reason, auth.nonce)
        entry = self._rounds.abort(
            request.round_id, f"withdrawn by its sponsor {auth.provider_id}: {request.reason}",
            sponsor_request=(payload, bytes(auth.signature)))
        return market_pb2.AbortRoundReply(ledger_index=entry.index, refund_to_sponsor=pool)

    def UpdateDatasetTerms(self, request: market_pb2.UpdateDatasetTermsRequest,
                           context: grpc.ServicerContext) -> market_pb2.UpdateDatasetTermsReply:
        auth = request.auth
        payload = terms_update_payload(auth.provider_id, request.dataset_id,
                                       terms_from_json(request.terms_json), auth.nonce)
        entry = self._market.update_terms(payload, bytes(auth.signature))
        return market_pb2.UpdateDatasetTermsReply(ledger_index=entry.index)

    def GetRound(self, request: market_pb2.GetRoundRequest,
                 context: grpc.ServicerContext) -> market_pb2.RoundView:
        view = round_view(self._rounds, request.round_id)
        # the sponsor-signed terms, so a node can check them (and the job digest) itself
        opened = self._ledger.round_opened(request.round_id)
        view.opened_payload_json = opened.payload_json.decode()
        view.sponsor_signature = opened.provider_signature or b""
        return view

    def GetProvider(self, request: market_pb2.GetProviderRequest,
                    context: grpc.ServicerContext) -> market_pb2.ProviderView:
        entry = self._market.get_provider(request.provider_id)
        p = entry.payload
        return market_pb2.ProviderView(
            provider_id=p["provider_id"], name=p["name"], public_key=bytes.fromhex(p["public_key"]),
            nonce=p["nonce"], signature=entry.provider_signature or b"", ledger_index=entry.index)

    def ListNodes(self, request: market_pb2.DirectoryNodesRequest,
                  context: grpc.ServicerContext) -> market_pb2.DirectoryNodesReply:
        return market_pb2.DirectoryNodesReply(nodes=[
            market_pb2.NodeListing(index=n.index, name=n.name, public_address=n.public_address,
                                   signing_key=n.signing_key)
            for n in self._market.list_nodes()])

    def ListDatasets(self, request: market_pb2.CatalogRequest,
                     context: grpc.ServicerContext) -> market_pb2.CatalogReply:
        page, next_offset = self._market.catalog(request.provider_id, request.offset)
        reply = market_pb2.CatalogReply()
        reply.next_offset = _fill_page(reply.datasets, (_catalog_item(d) for d in page),
                                       request.offset, next_offset)
        return reply

    def ListRounds(self, request: market_pb2.RoundsRequest,
                   context: grpc.ServicerContext) -> market_pb2.RoundsReply:
        ids, next_offset = self._rounds.round_ids(request.status, request.offset)
        reply = market_pb2.RoundsReply()
        reply.next_offset = _fill_page(reply.rounds, (round_view(self._rounds, r) for r in ids),
                                       request.offset, next_offset)
        return reply

    def GetProviderHistory(self, request: market_pb2.ProviderHistoryRequest,
                           context: grpc.ServicerContext) -> market_pb2.ProviderHistoryReply:
        entries, next_start = self._market.history(request.provider_id, request.limit, request.start)
        return market_pb2.ProviderHistoryReply(entries=[entry_proto(e) for e in entries], next_start=next_start)

    # -- a mutually owned model (logic: coordinator.ownership) ---------------------------

    def GetModel(self, request: market_pb2.GetModelRequest,
                 context: grpc.ServicerContext) -> market_pb2.ModelView:
        m = ownership.model_summary(self._ledger, request.model_id)
        return market_pb2.ModelView(
            model_id=m.model_id, source_kind=m.source_kind, source_id=m.source_id,
            price_per_1000_rows=m.price_per_1000_rows, fee_account=m.fee_account,
            holders=[market_pb2.UnitHolding(model_id=m.model_id, account=a, units=u)
                     for a, u in m.holders.items()])

    def GetAccountUnits(self, request: market_pb2.AccountUnitsRequest,
                        context: grpc.ServicerContext) -> market_pb2.AccountUnitsReply:
        held = ownership.account_units(self._ledger, request.account)
        return market_pb2.AccountUnitsReply(holdings=[
            market_pb2.UnitHolding(model_id=m, account=request.account, units=u)
            for m, u in held.items()])

    def TransferUnits(self, request: market_pb2.TransferUnitsRequest,
                      context: grpc.ServicerContext) -> market_pb2.TransferUnitsReply:
        auth = request.auth
        entry = ownership.transfer_units(self._ledger, request.model_id, auth.provider_id,
                                         request.to, request.units, auth.nonce, bytes(auth.signature))
        left = self._ledger.state.ownership.units(request.model_id).get(auth.provider_id, 0)
        return market_pb2.TransferUnitsReply(ledger_index=entry.index, units_left=left)

    def ChangePrice(self, request: market_pb2.ChangePriceRequest,
                    context: grpc.ServicerContext) -> market_pb2.ChangePriceReply:
        signatures: dict[str, bytes] = {}
        for item in request.signatures:
            if item.owner in signatures:
                raise InvalidInput(f"owner {item.owner!r} signed twice; keep one signature per owner")
            signatures[item.owner] = bytes(item.signature)
        entry, signed = ownership.change_price(self._ledger, request.model_id,
                                               request.price_per_1000_rows, request.nonce, signatures)
        return market_pb2.ChangePriceReply(ledger_index=entry.index, signed_units=signed)

    def OrderInference(self, request: market_pb2.OrderInferenceRequest,
                       context: grpc.ServicerContext) -> market_pb2.InferenceOrderView:
        auth = request.auth
        payload = order_entry_payload(request.order_id, request.model_id, auth.provider_id,
                                      request.rows, request.fee, request.issued_at_ms, auth.nonce)
        return _order_view(self._inference_orders().place(payload, bytes(auth.signature)))

    def GetInferenceOrder(self, request: market_pb2.GetInferenceOrderRequest,
                          context: grpc.ServicerContext) -> market_pb2.InferenceOrderView:
        return _order_view(self._inference_orders().view(request.order_id))

    def _inference_orders(self) -> InferenceOrders:
        if self._inference is None:
            raise Unavailable("this coordinator runs no inference; start it with its nodes")
        return self._inference

    def PayDividend(self, request: market_pb2.PayDividendRequest,
                    context: grpc.ServicerContext) -> market_pb2.PayDividendReply:
        entry = ownership.pay_dividend(self._ledger, request.model_id)
        p = entry.payload
        return market_pb2.PayDividendReply(
            ledger_index=entry.index, amount=p["amount"],
            payments=[market_pb2.Payment(account=item["to"], amount=item["amount"])
                      for item in p["payments"]])



# -- conversions ---------------------------------------------------------------------


def _order_view(s: OrderStatus) -> market_pb2.InferenceOrderView:
    return market_pb2.InferenceOrderView(
        order_id=s.order_id, model_id=s.model_id, user=s.user, rows=s.rows, fee=s.fee, state=s.state,
        message=s.message, progress=s.progress, ledger_index=s.ledger_index,
        stats_json=json.dumps(s.stats, sort_keys=True))


def _fill_page(field: Any, items: Iterator[Any], offset: int, next_offset: int) -> int:
    """Append `items` (a page that started at `offset`) to the repeated `field` until the
    reply would pass MAX_LIST_BYTES (at least one item); returns the offset to ask from
    next: where this reply stopped, else the page's own `next_offset`."""
    size = 0
    for i, item in enumerate(items):
        size += item.ByteSize() + 16
        if len(field) and size > MAX_LIST_BYTES:
            return offset + i  # the caller asks again from here
        field.append(item)
    return next_offset


def _catalog_item(d: Any) -> market_pb2.CatalogDataset:
    return market_pb2.CatalogDataset(
        dataset_id=d.payload["dataset_id"], provider_id=d.payload["provider_id"],
        purpose=d.payload["purpose"], rows=d.payload["rows"], cols=d.payload["cols"],
        schema_json=canonical_json(d.payload["schema"]).decode(),
        terms_json=canonical_json(d.terms).decode(), staked=d.staked)

def entry_proto(entry: Entry) -> market_pb2.LedgerEntry:
    return market_pb2.LedgerEntry(index=entry.index, time=str(entry.time_ms), kind=entry.kind,
                                  payload_json=entry.payload_json.decode(),
                                  prev_hash=entry.prev_hash, entry_hash=entry.hash,
                                  signature=entry.signature)


def round_view(rounds: Rounds, round_id: str) -> market_pb2.RoundView:
    """A round as both APIs show it: ledger facts, runtime notes, expiry, failed runs."""
    runtime = rounds.runtime(round_id)
    view = round_view_proto(summarize(rounds.ledger, round_id, runtime))
    view.expires_at_ms = rounds.expires_at_ms(round_id)
    view.failed_runs = runtime.failures
    opened = rounds.ledger.round_opened(round_id).payload  # the price the sponsor signed
    view.inference_price_per_1000_rows = opened.get("inference_price_per_1000_rows", 0)
    return view


def round_view_proto(s: RoundSummary) -> market_pb2.RoundView:
    return market_pb2.RoundView(
        round_id=s.round_id, status=s.status, sponsor=s.sponsor, pool=s.pool,
        model_spec_json=json.dumps(s.model_spec, sort_keys=True),
        validation_dataset=s.validation_dataset,
        participants=[market_pb2.RoundParticipant(**p) for p in s.participants],
        metrics_micro=s.metrics_micro, job_digest=s.job_digest, message=s.message,
        refund_to_sponsor=s.refund_to_sponsor, stats_json=json.dumps(s.stats, sort_keys=True))
