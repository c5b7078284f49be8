"""The node's gRPC servicers: decode, call the plain logic, encode. Nothing else.

ShareIntake (public port) feeds `mpcnode.share_intake.ShareIntake` and streams model
shares to a round's sponsor (`mpcnode.model_release.ModelRelease`); NodeControl (cluster
port, mutual TLS) reads `mpcnode.share_store.ShareStore` and drives
`mpcnode.jobs.JobRunner`, after `mpcnode.job_check.JobDigestCheck` accepted the job, and
cosigns the coordinator's ledger checkpoints (`mpcnode.witness.Witness`). Typed errors raised here or below become statuses in
`mutualmind.transport`'s interceptor.

The public port takes streams from anyone, so uploads are bounded by
`mpcnode.upload_guard.UploadGuard`: a few at once (per provider and in total, always
fewer than the server's threads, so health checks keep answering), and one slower than
the minimum rate is cancelled by a watchdog: a trickling client cannot hold a thread.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator

import grpc

from mpcnode.inference_jobs import NodeInference
from mpcnode.job_check import JobDigestCheck
from mpcnode.jobs import JobRequest, JobRunner, JobStatus, result_stats
from mpcnode.model_release import ModelRelease
from mpcnode.share_intake import ShareIntake
from mpcnode.share_store import ShareMeta, ShareStore
from mpcnode.upload_guard import StallPolicy, UploadGuard
from mpcnode.witness import CosignRequest, Witness
from mutualmind.errors import Aborted, DeadlineExceeded, InvalidInput, Unavailable
from mutualmind.transport import require_role
from mutualmind.vocabulary.data_plane import DEFAULT_PLANE
from mutualmind.vocabulary.inference import INFERENCE_JOB, TRAINING_JOB, PredictionRequest
from mutualmind.vocabulary.model_fetch import FetchRequest
from mutualmind.vocabulary.share_receipt import UploadHeader
from mutualmind.vocabulary.signed_requests import schema_to_proto
from mutualmind.vocabulary.upload import iter_chunks
from proto import node_pb2, node_pb2_grpc

MODEL_CHUNK_BYTES = 1 << 20  # model shares stream in 1 MiB messages (limit: 8 MiB)
# Roles that may read what a node holds over the cluster port.
READER_ROLES = ("coordinator", "admin", "node")
# Roles that may start, watch and cancel MPC jobs.
JOB_ROLES = ("coordinator", "admin")
# Only the coordinator asks for cosignatures of its checkpoints.
COSIGN_ROLES = ("coordinator",)

_LOG = logging.getLogger(__name__)


class ShareIntakeServicer(node_pb2_grpc.ShareIntakeServicer):
    """Client-streaming share upload: header in the first message, data in every one;
    and the sponsor's model-share download (`mpcnode.model_release.ModelRelease`)."""

    def __init__(self, intake: ShareIntake, guard: UploadGuard | None = None,
                 release: ModelRelease | None = None, inference: NodeInference | None = None) -> None:
        self._intake = intake
        self._guard = guard if guard is not None else UploadGuard()
        self._release = release
        self._inference = inference

    def FetchPredictionShare(
        self, request: node_pb2.FetchPredictionShareRequest, context: grpc.ServicerContext
    ) -> Iterator[node_pb2.ModelShareChunk]:
        if self._inference is None:
            raise Unavailable("this node runs without a coordinator link, so it serves no "
                              "inference; restart it with --coordinator")
        share = self._inference.release(PredictionRequest(
            order_id=request.order_id, user_id=request.user_id, node_index=request.node_index,
            nonce=request.nonce, issued_at=request.issued_at, signature=bytes(request.signature)))
        yield from _share_stream(share.receipt_json, share.signature, share.data)

    def FetchModelShare(
        self, request: node_pb2.FetchModelShareRequest, context: grpc.ServicerContext
    ) -> Iterator[node_pb2.ModelShareChunk]:
        if self._release is None:
            raise Unavailable("this node runs without a coordinator link, so it cannot check who "
                              "sponsored a round; restart it with --coordinator")
        share = self._release.release(FetchRequest(
            round_id=request.round_id, sponsor_id=request.sponsor_id, node_index=request.node_index,
            nonce=request.nonce, issued_at=request.issued_at, signature=bytes(request.signature),
            model_id=request.model_id))
        yield from _share_stream(share.receipt_json, share.signature, share.data)

    def UploadShare(
        self, request_iterator: Iterator[node_pb2.ShareChunk], context: grpc.ServicerContext
    ) -> node_pb2.UploadReceipt:
        ticket = self._guard.admit()  # refused at once, before a byte is read, when full
        stream = _StreamReader(request_iterator, context, self._guard.stall)
        try:
            first = stream.next_message()
            if first is None or not first.HasField("header"):
                raise InvalidInput(
                    "the first message of an upload must carry the ShareHeader "
                    "(dataset_id, node_index, rows, cols, frac_bits)"
                )
            h = first.header
            header = UploadHeader(h.dataset_id, h.node_index, h.rows, h.cols, h.frac_bits)
            spec = self._intake.check(header)
            ticket.for_provider(spec.provider_id)
            receipt = self._intake.store_share(spec, stream.data_chunks(first))
        finally:
            stream.close()
            ticket.release()
        return node_pb2.UploadReceipt(
            dataset_id=receipt.dataset_id,
            node_index=receipt.node_index,
            bytes_received=receipt.bytes_received,
            commitment=receipt.commitment,
            node_signature=receipt.signature,
        )


def _share_stream(receipt_json: bytes, signature: bytes, data: bytes) -> Iterator[node_pb2.ModelShareChunk]:
    """A signed receipt, then the share's bytes in 1 MiB messages."""
    receipt = node_pb2.ModelShareReceipt(receipt_json=receipt_json.decode("utf-8"), node_signature=signature)
    yield node_pb2.ModelShareChunk(receipt=receipt)
    for chunk in iter_chunks(memoryview(data), MODEL_CHUNK_BYTES):
        yield node_pb2.ModelShareChunk(data=bytes(chunk))


class _StreamReader:
    """Reads an upload stream, turning a broken stream into a typed Aborted, and cancels
    it from a watchdog thread when it stalls (until the last message has arrived)."""

    def __init__(
        self, messages: Iterator[node_pb2.ShareChunk], context: grpc.ServicerContext, stall: StallPolicy
    ) -> None:
        self._messages = messages
        self._context = context
        self._stall = stall
        self._bytes = 0
        self._stalled = False
        self._finished = threading.Event()
        threading.Thread(target=self._watch, name="upload-watchdog", daemon=True).start()

    def _watch(self) -> None:
        if self._finished.wait(self._stall.grace_s):
            return
        seen = self._bytes
        while not self._finished.wait(self._stall.window_s):
            if self._bytes - seen < self._stall.min_bytes_per_window:
                self._stalled = True
                _LOG.warning("cancelling an upload slower than %d bytes/s after %d bytes",
                             self._stall.min_rate, self._bytes)
                self._context.cancel()
                return
            seen = self._bytes

    def close(self) -> None:
        self._finished.set()

    def next_message(self) -> node_pb2.ShareChunk | None:
        try:
            message = next(self._messages, None)
        except grpc.RpcError as err:  # client cancelled, connection dropped, or stalled
            if self._stalled:
                raise DeadlineExceeded(
                    f"the upload stalled after {self._bytes} bytes (under {self._stall.min_rate} bytes/s "
                    f"over {self._stall.window_s:g} s) and was cancelled; nothing was stored"
                ) from err
            raise Aborted(
                f"the upload stream broke after {self._bytes} bytes (the client cancelled or "
                "the connection dropped); nothing was stored - upload the share again"
            ) from err
        if message is None and self._stalled:  # the cancel may end the stream without an error
            raise DeadlineExceeded(
                f"the upload stalled after {self._bytes} bytes (under {self._stall.min_rate} bytes/s "
                f"over {self._stall.window_s:g} s) and was cancelled; nothing was stored")
        if message is None:
            self.close()  # all bytes are in: storing them may take a while, that is no stall
        return message

    def data_chunks(self, first: node_pb2.ShareChunk) -> Iterator[bytes]:
        if first.data:
            self._bytes += len(first.data)
            yield first.data
        while (message := self.next_message()) is not None:
            if message.HasField("header"):
                raise InvalidInput("only the first message of an upload may carry a header")
            self._bytes += len(message.data)
            yield message.data


def stored_dataset(meta: ShareMeta) -> node_pb2.StoredDataset:
    return node_pb2.StoredDataset(
        dataset_id=meta.dataset_id,
        provider_id=meta.provider_id,
        rows=meta.rows,
        cols=meta.cols,
        frac_bits=meta.frac_bits,
        schema=schema_to_proto(meta.schema),
        commitment=meta.commitment,
        size_bytes=meta.size_bytes,
        stored_at=meta.stored_at,
    )


class NodeControlServicer(node_pb2_grpc.NodeControlServicer):
    """Cluster-port API: what the node holds, and its MPC jobs (`mpcnode.jobs.JobRunner`)."""

    def __init__(self, store: ShareStore, jobs: JobRunner | None = None,
                 job_check: JobDigestCheck | None = None, witness: Witness | None = None,
                 inference: NodeInference | None = None) -> None:
        self._store = store
        self._jobs = jobs
        self._job_check = job_check  # None only for nodes without a coordinator (tests, bench)
        self._witness = witness
        self._inference = inference

    def ListDatasets(
        self, request: node_pb2.ListDatasetsRequest, context: grpc.ServicerContext
    ) -> node_pb2.ListDatasetsReply:
        require_role(context, *READER_ROLES)
        return node_pb2.ListDatasetsReply(datasets=[stored_dataset(m) for m in self._store.list()])

    def DescribeDataset(
        self, request: node_pb2.DescribeDatasetRequest, context: grpc.ServicerContext
    ) -> node_pb2.StoredDataset:
        require_role(context, *READER_ROLES)
        return stored_dataset(self._store.describe(request.dataset_id))

    def StartJob(self, request: node_pb2.JobSpec, context: grpc.ServicerContext) -> node_pb2.JobAccepted:
        require_role(context, *JOB_ROLES)
        job = job_request(request)
        runner = self._runner()
        if job.kind == INFERENCE_JOB:
            if self._inference is None:
                raise Unavailable("this node runs without a coordinator link, so it runs no "
                                  "inference jobs; restart it with --coordinator")
            job = self._inference.check(job)  # fills in the model's folder on this node
        elif self._job_check is not None:
            self._job_check.check(job)  # refuses before anything is written or started
        job_id = runner.start(job)
        return node_pb2.JobAccepted(job_id=job_id)

    def GetJob(self, request: node_pb2.JobStatusRequest, context: grpc.ServicerContext) -> node_pb2.JobStatusReply:
        require_role(context, *JOB_ROLES)
        return job_status_reply(self._runner().status(request.job_id))

    def CancelJob(self, request: node_pb2.CancelJobRequest, context: grpc.ServicerContext) -> node_pb2.CancelJobReply:
        require_role(context, *JOB_ROLES)
        return node_pb2.CancelJobReply(state=self._runner().cancel(request.job_id).state)

    def CosignCheckpoint(self, request: node_pb2.CosignRequest,
                         context: grpc.ServicerContext) -> node_pb2.CosignReply:
        require_role(context, *COSIGN_ROLES)
        cosignature = self._witness_or_refuse().cosign(CosignRequest(
            note=request.checkpoint_note, verifier_key=request.verifier_key,
            old_size=request.old_size, proof=tuple(bytes(p) for p in request.consistency_proof)))
        return node_pb2.CosignReply(cosignature_line=cosignature.line().line())

    def GetWitnessHead(self, request: node_pb2.WitnessHeadRequest,
                       context: grpc.ServicerContext) -> node_pb2.WitnessHeadReply:
        require_role(context, *READER_ROLES)
        head = self._witness_or_refuse().head()
        if head is None:
            return node_pb2.WitnessHeadReply()
        cp = head.checkpoint
        return node_pb2.WitnessHeadReply(origin=cp.origin, size=cp.size, root_hash=cp.root,
                                         verifier_key=head.verifier_key)

    def _witness_or_refuse(self) -> Witness:
        if self._witness is None:
            raise Unavailable("this node was started without a witness; restart it with one")
        return self._witness

    def _runner(self) -> JobRunner:
        if self._jobs is None:
            raise Unavailable("this node was started without an MPC job runner; restart it with one")
        return self._jobs


def job_request(spec: node_pb2.JobSpec) -> JobRequest:
    return JobRequest(
        job_id=spec.job_id,
        round_id=spec.round_id,
        world_size=spec.world_size,
        rank=spec.rank,
        master_addr=spec.master_addr,
        master_port=spec.master_port,
        dataset_ids=tuple(spec.dataset_ids),
        validation_dataset_id=spec.validation_dataset_id,
        model_spec_json=spec.model_spec_json,
        job_digest=bytes(spec.job_digest),
        deadline_s=spec.deadline_s,
        dealer_addr=spec.dealer_addr,
        plane=spec.plane or DEFAULT_PLANE,
        plane_addresses=tuple(spec.plane_addresses),
        plane_members=tuple(spec.plane_members),
        tournament_json=spec.tournament_json,
        kind=spec.kind or TRAINING_JOB,
        beacon=bytes(spec.beacon),
    )


def job_status_reply(status: JobStatus) -> node_pb2.JobStatusReply:
    reply = node_pb2.JobStatusReply(
        job_id=status.job_id, state=status.state, message=status.message, progress=status.progress
    )
    if status.result is not None:
        result = status.result
        reply.result.CopyFrom(
            node_pb2.JobResult(
                metrics=result.metrics,
                attestation=result.attestation,
                attestation_payload_json=result.attestation_payload.decode("utf-8"),
                stats_json=json.dumps(result_stats(result), sort_keys=True),
            )
        )
    return reply
