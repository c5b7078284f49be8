"""The provider's Python API: register, register a dataset, upload shares, stake, balance,
and (for a round's sponsor) fetch one node's share of the trained model.

Everything that touches plaintext (loading, encoding, splitting) happened before, in
`provider.sharing`, on this machine; this module only moves shares and signed requests.
Share i goes to node i over that node's public TLS port as one client-streaming call in
1 MiB chunks; the n uploads run concurrently (one thread each). A failed call becomes
the typed error the server sent (`mutualmind.transport.call`). Channels are opened for
node i's member name (`provider.cli`), so a server that is not node i fails the TLS
handshake before any byte of share i leaves: `IdentityMismatch`, naming i.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

import grpc
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mutualmind.errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    IdentityMismatch,
    IntegrityError,
    InvalidInput,
    Unavailable,
)
from mutualmind.transport import DEFAULT_DEADLINE_S, call, typed_rpc_errors
from mutualmind.vocabulary.dataset_terms import DEFAULT_TERMS, DatasetTerms
from mutualmind.vocabulary.deadlines import MODEL_FETCH_S, SHARE_UPLOAD_S
from mutualmind.vocabulary.fixed_point import FRAC_BITS
from mutualmind.vocabulary.model_fetch import check_released_share, sign_fetch
from mutualmind.vocabulary.round_open import RoundTerms, signed_open_round
from mutualmind.vocabulary.share_receipt import ShareReceipt, verify_receipt
from mutualmind.vocabulary.signed_requests import (
    change_price_request,
    new_nonce,
    signed_abort_round,
    signed_dataset_registration,
    signed_register_provider,
    signed_stake,
    signed_terms_update,
    signed_units_transfer,
)
from mutualmind.vocabulary.tournament import (
    ModelSubmission,
    TournamentTerms,
    signed_model_submit,
    signed_request_json,
    signed_resolution,
    signed_tournament_open,
)
from mutualmind.vocabulary.upload import iter_chunks
from proto import common_pb2, market_pb2, market_pb2_grpc, node_pb2, node_pb2_grpc
from provider.sharing import SharedTable

CHUNK_BYTES = 1 << 20  # 1 MiB a message, well under the 8 MiB message limit
MAX_MODEL_SHARE_BYTES = 1 << 30  # far above the largest model a round can train (~32 MiB)

# progress(node_index, bytes_sent_so_far)
Progress = Callable[[int, int], None]
# a TLS channel (`mutualmind.transport.open_channel`), named so that logic modules such as
# `provider.model_collect` can type one without importing grpc
Channel: TypeAlias = grpc.Channel


def _share_messages(
    dataset_id: str, node_index: int, share: np.ndarray, frac_bits: int, chunk_bytes: int, progress: Progress | None
) -> Iterator[node_pb2.ShareChunk]:
    """Header first (with the first chunk), then raw little-endian int64 bytes."""
    array = np.ascontiguousarray(share, dtype="<i8")
    header = node_pb2.ShareHeader(
        dataset_id=dataset_id, node_index=node_index, rows=array.shape[0], cols=array.shape[1], frac_bits=frac_bits
    )
    sent = 0
    for i, chunk in enumerate(iter_chunks(array.data.cast("B"), chunk_bytes)):
        sent += len(chunk)
        yield node_pb2.ShareChunk(header=header, data=bytes(chunk)) if i == 0 else node_pb2.ShareChunk(
            data=bytes(chunk)
        )
        if progress is not None:
            progress(node_index, sent)


def upload_share(
    channel: grpc.Channel,
    dataset_id: str,
    node_index: int,
    share: np.ndarray,
    *,
    frac_bits: int = FRAC_BITS,
    chunk_bytes: int = CHUNK_BYTES,
    progress: Progress | None = None,
    timeout_s: float = SHARE_UPLOAD_S,
) -> ShareReceipt:
    """Stream one share to one node; returns the node's signed receipt."""
    if share.ndim != 2:
        raise InvalidInput(f"a share is a 2-D int64 matrix, got shape {share.shape}")
    stub = node_pb2_grpc.ShareIntakeStub(channel)
    with naming_node(node_index):
        reply = call(stub, "UploadShare",
                     _share_messages(dataset_id, node_index, share, frac_bits, chunk_bytes, progress),
                     timeout=timeout_s)
    return ShareReceipt(
        dataset_id=reply.dataset_id,
        node_index=reply.node_index,
        bytes_received=reply.bytes_received,
        commitment=reply.commitment,
        signature=reply.node_signature,
    )


@contextmanager
def naming_node(node_index: int) -> Iterator[None]:
    """An identity mismatch inside the block names node `node_index` (the server given for
    it presented another member's certificate)."""
    try:
        yield
    except IdentityMismatch as err:
        raise IdentityMismatch(f"the server given for node {node_index} is not node "
                               f"{node_index}: {err.message}") from err


T = TypeVar("T")


def on_every_node(count: int, call: Callable[[int], T], *, name: str) -> list[T]:
    """`call(i)` for every node index at once (one thread each); all finish before the
    first failure, in node order, is raised, so no call is left running behind it."""
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix=name) as pool:
        futures = [pool.submit(call, i) for i in range(count)]
        outcomes = [f.exception() or f.result() for f in futures]
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes  # type: ignore[return-value]


def upload_shares(
    node_channels: Sequence[grpc.Channel],
    dataset_id: str,
    shared: SharedTable,
    *,
    node_public_keys: Sequence[bytes] | None = None,
    progress: Progress | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    attempts: int = 1,
    already_stored_ok: bool = False,
) -> list[ShareReceipt | None]:
    """Upload share i to node i, all nodes at once; check every receipt.

    A receipt must name the commitment the provider registered and, when the nodes'
    public keys are given (from the cluster manifest), carry a valid node signature.
    A node that is unreachable, times out or loses the stream is retried up to
    `attempts` times in all. With `already_stored_ok` (resuming), or on a retry, a node
    that already holds the dataset counts as done - it can only hold the registered
    bytes - and its entry is None. The first failure is raised after every upload has finished or failed.
    """
    if len(node_channels) != len(shared.shares):
        raise InvalidInput(f"{len(shared.shares)} shares need {len(shared.shares)} nodes, got {len(node_channels)}")

    def one(i: int) -> ShareReceipt | None:
        for attempt in range(1, max(attempts, 1) + 1):
            try:
                return upload_share(
                    node_channels[i], dataset_id, i, shared.shares[i],
                    frac_bits=shared.frac_bits, chunk_bytes=chunk_bytes, progress=progress,
                )
            except AlreadyExists:
                # a node can hold only the registered bytes of an id: on a retry this
                # means the previous attempt was stored and only its answer was lost
                if already_stored_ok or attempt > 1:
                    return None
                raise
            except (Unavailable, DeadlineExceeded, Aborted):
                if attempt >= attempts:
                    raise
                time.sleep(min(0.5 * 2 ** (attempt - 1), 5.0))
        raise AssertionError("unreachable")  # the loop returns or raises

    receipts = on_every_node(len(node_channels), one, name="upload")
    for i, receipt in enumerate(receipts):
        if receipt is None:
            continue
        if receipt.commitment != shared.commitments[i] or receipt.node_index != i:
            raise IntegrityError(f"node {i} acknowledged a different share than the one registered")
        if node_public_keys is not None and not verify_receipt(receipt, node_public_keys[i]):
            raise IntegrityError(f"node {i}'s receipt for {dataset_id!r} is not signed by node {i}'s key")
    return receipts


def market_call(channel: Channel, method: str, request: Any, *,
                timeout_s: float = DEFAULT_DEADLINE_S) -> Any:
    """One unsigned Market call (a read: GetRound, GetDataset); typed errors out."""
    return call(market_pb2_grpc.MarketStub(channel), method, request, timeout=timeout_s)


def fetch_inclusion_proof(channel: Channel, index: int, *,
                          timeout_s: float = DEFAULT_DEADLINE_S) -> market_pb2.InclusionProofReply:
    """The coordinator's inclusion proof of entry `index` (unsigned read; check it with
    `provider.proof.check_reply` before believing any of it)."""
    if index < 0:
        raise InvalidInput(f"--entry must be a ledger index (0 or more), got {index}")
    return market_call(channel, "GetInclusionProof", market_pb2.InclusionProofRequest(index=index),
                       timeout_s=timeout_s)


def list_nodes(channel: Channel) -> list[market_pb2.NodeListing]:
    """The coordinator's node directory, in index order (share i goes to node i)."""
    reply = market_call(channel, "ListNodes", market_pb2.DirectoryNodesRequest())
    nodes = list(reply.nodes)
    if not nodes or [n.index for n in nodes] != list(range(len(nodes))):
        raise IntegrityError("the coordinator's node directory is empty or out of order; "
                             "give --node addresses in index order instead")
    return nodes


def list_datasets(channel: Channel, provider_id: str = "") -> list[market_pb2.CatalogDataset]:
    """The dataset catalog (one provider's datasets when given), every page of it."""
    datasets: list[market_pb2.CatalogDataset] = []
    offset = 0
    while True:
        reply = market_call(channel, "ListDatasets",
                            market_pb2.CatalogRequest(provider_id=provider_id, offset=offset))
        datasets.extend(reply.datasets)
        if not reply.next_offset or reply.next_offset <= offset:
            return datasets
        offset = reply.next_offset


def list_rounds(channel: Channel, status: str = "") -> list[market_pb2.RoundView]:
    """The market's rounds (one status's when given), oldest first, every page of them."""
    rounds: list[market_pb2.RoundView] = []
    offset = 0
    while True:
        reply = market_call(channel, "ListRounds", market_pb2.RoundsRequest(status=status, offset=offset))
        rounds.extend(reply.rounds)
        if not reply.next_offset or reply.next_offset <= offset:
            return rounds
        offset = reply.next_offset


def provider_history(channel: Channel, provider_id: str, limit: int = 0) -> list[market_pb2.LedgerEntry]:
    """A provider's stakes, unstakes, payouts and slashes as ledger entries, oldest first:
    every page of them, or the first `limit` when given."""
    entries: list[market_pb2.LedgerEntry] = []
    start = 0
    while True:
        want = limit - len(entries) if limit else 0
        reply = market_call(channel, "GetProviderHistory",
                            market_pb2.ProviderHistoryRequest(provider_id=provider_id, limit=want, start=start))
        entries.extend(reply.entries)
        if not reply.next_start or reply.next_start <= start or (limit and len(entries) >= limit):
            return entries[:limit] if limit else entries
        start = reply.next_start


def get_model(channel: Channel, model_id: str) -> market_pb2.ModelView:
    """A model's holders, price and fee account (unsigned read)."""
    return market_call(channel, "GetModel", market_pb2.GetModelRequest(model_id=model_id))


def account_units(channel: Channel, account: str) -> list[market_pb2.UnitHolding]:
    """The units `account` holds across models, by model id (unsigned read)."""
    return list(market_call(channel, "GetAccountUnits",
                            market_pb2.AccountUnitsRequest(account=account)).holdings)


def pay_dividend(channel: Channel, model_id: str) -> market_pb2.PayDividendReply:
    """Pay `model_id`'s fee account to its owners now (anyone may ask; the money goes
    only to the holders, split by the ledger's rule)."""
    return market_call(channel, "PayDividend", market_pb2.PayDividendRequest(model_id=model_id))


def submit_price_change(channel: Channel, proposal: dict[str, Any]) -> market_pb2.ChangePriceReply:
    """Submit a price proposal with the owners' signatures gathered offline."""
    return market_call(channel, "ChangePrice", change_price_request(proposal))


@dataclass
class MarketClient:
    """Signed provider requests to the coordinator's Market API."""

    channel: grpc.Channel
    key: Ed25519PrivateKey
    provider_id: str  # the name the provider registers under
    timeout_s: float = DEFAULT_DEADLINE_S

    def __post_init__(self) -> None:
        self._stub = market_pb2_grpc.MarketStub(self.channel)
        if not self.provider_id:
            raise InvalidInput("a provider id (the name registered with the coordinator) is required")

    def _call(self, method: str, request: Any) -> Any:
        return call(self._stub, method, request, timeout=self.timeout_s)


    def register(self) -> market_pb2.RegisterProviderReply:
        """Register this key under the provider id (a self-signed ledger entry)."""
        reply = self._call("RegisterProvider", signed_register_provider(self.key, self.provider_id))
        if reply.provider_id != self.provider_id:
            raise IntegrityError(
                f"the coordinator registered provider id {reply.provider_id!r}, asked for {self.provider_id!r}"
            )
        return reply

    def register_dataset(
        self, dataset_id: str, shared: SharedTable, *, purpose: str = "training",
        terms: DatasetTerms = DEFAULT_TERMS,
    ) -> tuple[common_pb2.DatasetRegistration, market_pb2.RegisterDatasetReply]:
        """Sign the registration (with every share commitment and the dataset's terms)
        and record it on the ledger."""
        registration = signed_dataset_registration(
            self.key,
            dataset_id=dataset_id,
            provider_id=self.provider_id,
            rows=shared.rows,
            cols=shared.cols,
            frac_bits=shared.frac_bits,
            schema=shared.schema,
            share_commitments=list(shared.commitments),
            purpose=purpose,
            column_exponents=shared.column_exponents or None,
            label_classes=shared.label_classes,
            terms=terms.to_payload(),
        )
        return registration, self._call("RegisterDataset", registration)

    def update_terms(self, dataset_id: str, terms: DatasetTerms) -> market_pb2.UpdateDatasetTermsReply:
        """Sign new terms for one of this provider's datasets (binding later rounds)."""
        return self._call("UpdateDatasetTerms",
                          signed_terms_update(self.key, self.provider_id, dataset_id, terms.to_payload()))

    def open_round(self, terms: RoundTerms) -> market_pb2.OpenRoundReply:
        """Open a round this provider sponsors: the terms signed here lock its pool."""
        if terms.sponsor != self.provider_id:
            raise InvalidInput(f"the terms name sponsor {terms.sponsor!r}, this key is "
                               f"{self.provider_id!r}; a provider opens rounds only in its own name")
        return self._call("OpenRound", signed_open_round(self.key, terms))

    def abort_round(self, round_id: str, reason: str) -> market_pb2.AbortRoundReply:
        """Withdraw a round this provider sponsors (open, not running): the pool comes back."""
        return self._call("AbortRound", signed_abort_round(self.key, self.provider_id, round_id, reason))

    # -- the model market (issue 15) ---------------------------------------------------

    def _signed_tournament(self, method: str, signed: tuple[dict[str, Any], bytes]) -> market_pb2.TournamentView:
        payload_json, signature = signed_request_json(signed)
        return self._call(method, market_pb2.SignedTournamentRequest(payload_json=payload_json, signature=signature))

    def open_tournament(self, terms: TournamentTerms) -> market_pb2.TournamentView:
        """Open a tournament this provider sponsors: the terms signed here lock its pool."""
        if terms.sponsor != self.provider_id:
            raise InvalidInput(f"the terms name sponsor {terms.sponsor!r}, this key is {self.provider_id!r}")
        return self._signed_tournament("OpenTournament", signed_tournament_open(self.key, terms))

    def submit_model(self, submission: ModelSubmission) -> market_pb2.TournamentView:
        """Submit a model as its modeler: the stake signed here is locked until the close."""
        if submission.modeler != self.provider_id:
            raise InvalidInput(f"the submission names modeler {submission.modeler!r}, this key is {self.provider_id!r}")
        return self._signed_tournament("SubmitModel", signed_model_submit(self.key, submission))

    def commit_resolution(self, tournament_id: str, dataset_id: str) -> market_pb2.TournamentView:
        """Name the (registered, shared) validation set that resolves the tournament."""
        return self._signed_tournament("CommitResolution",
                                       signed_resolution(self.key, tournament_id, self.provider_id, dataset_id))

    def tournament(self, tournament_id: str) -> market_pb2.TournamentView:
        return self._call("GetTournament", market_pb2.GetTournamentRequest(tournament_id=tournament_id))

    def stake(self, dataset_id: str, amount: int) -> market_pb2.StakeReply:
        return self._call("Stake", signed_stake(self.key, self.provider_id, dataset_id, amount))

    def unstake(self, dataset_id: str, amount: int) -> market_pb2.StakeReply:
        return self._call("Unstake", signed_stake(self.key, self.provider_id, dataset_id, amount, unstake=True))

    def balance(self) -> market_pb2.BalanceReply:
        return self._call("GetBalance", market_pb2.BalanceRequest(provider_id=self.provider_id))

    def transfer_units(self, model_id: str, to: str, units: int) -> market_pb2.TransferUnitsReply:
        """Move `units` of `model_id` from this provider to `to` (signed here)."""
        return self._call("TransferUnits", signed_units_transfer(self.key, self.provider_id,
                                                                 model_id, to, units))


@dataclass(frozen=True)
class ModelShare:
    """One node's share of a round's model, its receipt checked (see `fetch_model_share`)."""

    node_index: int
    data: bytes
    manifest: list[dict[str, Any]]
    receipt_json: bytes
    signature: bytes


def fetch_model_share(
    channel: grpc.Channel,
    key: Ed25519PrivateKey,
    sponsor_id: str,
    round_id: str,
    node_index: int,
    *,
    node_public_key: bytes,
    job_digest: str,
    timeout_s: float = MODEL_FETCH_S,
    model_id: str = "",
) -> ModelShare:
    """Ask node `node_index` for its share of `round_id`'s model with a freshly signed
    request; stream it in and check the node's signed receipt against the request, the
    round's accepted job digest and the bytes (IntegrityError if anything differs).
    With `model_id`: tournament `round_id`'s frozen model, `sponsor_id` its modeler and
    `job_digest` the model's frozen commitment (`provider.frozen_collect`)."""
    request = sign_fetch(key, round_id, sponsor_id, node_index, new_nonce(), int(time.time()), model_id)
    stub = node_pb2_grpc.ShareIntakeStub(channel)
    with naming_node(node_index), typed_rpc_errors():
        stream = stub.FetchModelShare(
            node_pb2.FetchModelShareRequest(
                round_id=round_id, sponsor_id=sponsor_id, node_index=node_index,
                nonce=request.nonce, issued_at=request.issued_at, signature=request.signature,
                model_id=model_id),
            timeout=timeout_s,
        )
        receipt_json, signature, shares = receive_signed_share(stream, node_index, MAX_MODEL_SHARE_BYTES,
                                                               "model share")
    manifest = check_released_share(
        shares, receipt_json, signature, node_public_key, round_id=round_id, job_digest=job_digest,
        node_index=node_index, sponsor_id=sponsor_id, nonce=request.nonce, model_id=model_id)
    return ModelShare(node_index, shares, manifest, receipt_json, signature)


def receive_signed_share(stream: Any, node_index: int, limit: int, what: str) -> tuple[bytes, bytes, bytes]:
    """(receipt JSON, node signature, bytes) of a node's streamed share: the receipt in the
    first message, data in every one, at most `limit` bytes (IntegrityError otherwise)."""
    first = next(stream, None)
    if first is None or not first.HasField("receipt"):
        raise IntegrityError(f"node {node_index} sent no receipt before its {what}")
    receipt_json = first.receipt.receipt_json.encode("utf-8")
    signature = bytes(first.receipt.node_signature)
    data = bytearray(first.data)
    for message in stream:
        if message.HasField("receipt"):
            raise IntegrityError(f"node {node_index} sent a second receipt in one {what}")
        data += message.data
        if len(data) > limit:
            stream.cancel()
            raise IntegrityError(f"node {node_index} sent more than {limit} bytes of {what}")
    return receipt_json, signature, bytes(data)
