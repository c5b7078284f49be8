"""Accepting one share upload: check the header against the signed registration, store the
bytes all-or-nothing, and sign a receipt. No gRPC here (the servicer feeds it).

Order of checks, cheapest first, all before a byte is written: the header is for this
node, the dataset is registered (signature verified by the registry), the header's shape
and precision match the registration, the share fits the node's and the provider's
quota (`mutualmind.vocabulary.quotas`, on by default), the id is not stored yet.
Then the bytes stream to disk with size and SHA-256 checked against the commitment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mpcnode.registry import DatasetRegistry
from mpcnode.share_store import ShareMeta, ShareSpec, ShareStore
from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.dataset import validate_dataset_id
from mutualmind.vocabulary.quotas import StorageQuota
from mutualmind.vocabulary.share_receipt import (
    ShareReceipt,
    UploadHeader,
    receipt_payload,
)
from mutualmind.vocabulary.signing_keys import sign

_LOG = logging.getLogger(__name__)


class ShareIntake:
    """One node's upload acceptor: its index, store, registry, quota and signing key."""

    def __init__(
        self,
        *,
        node_index: int,
        store: ShareStore,
        registry: DatasetRegistry,
        signing_key: Ed25519PrivateKey,
        quota: StorageQuota | None = None,
    ) -> None:
        self.node_index = node_index
        self.store = store
        self.registry = registry
        self.signing_key = signing_key
        self.quota = quota if quota is not None else StorageQuota()

    def accept(self, header: UploadHeader, chunks: Iterable[bytes | memoryview]) -> ShareReceipt:
        """Store the share described by `header` from `chunks`, or refuse with a typed error
        (and nothing stored). An exception raised by `chunks` propagates unchanged."""
        return self.store_share(self.check(header), chunks)

    def check(self, header: UploadHeader) -> ShareSpec:
        """What the share must be (from the signed registration), or a typed refusal."""
        validate_dataset_id(header.dataset_id)
        if header.node_index != self.node_index:
            raise InvalidInput(
                f"this is node {self.node_index}, the upload header is for node {header.node_index}; "
                f"send share {header.node_index} to node {header.node_index}"
            )
        registered = self.registry.get(header.dataset_id)
        mismatched = [
            f"{name} {got} (registered {want})"
            for name, got, want in (
                ("rows", header.rows, registered.rows),
                ("cols", header.cols, registered.cols),
                ("frac_bits", header.frac_bits, registered.frac_bits),
            )
            if got != want
        ]
        if mismatched:
            raise InvalidInput(
                f"upload header of {header.dataset_id!r} does not match its registration: "
                + ", ".join(mismatched)
            )
        return registered.spec_for(self.node_index)

    def store_share(self, spec: ShareSpec, chunks: Iterable[bytes | memoryview]) -> ShareReceipt:
        """Store a checked share from `chunks` (quota, size, commitment) and sign a receipt."""
        started = time.monotonic()
        meta = self.store.put_stream(spec, chunks, quota=self.quota)
        seconds = time.monotonic() - started
        _LOG.info("stored share of %s from %s: %d bytes in %.2f s (%.0f MB/s)", meta.dataset_id,
                  meta.provider_id, meta.size_bytes, seconds, meta.size_bytes / 1e6 / max(seconds, 1e-9))
        return self._receipt(meta)

    def _receipt(self, meta: ShareMeta) -> ShareReceipt:
        payload = receipt_payload(meta.dataset_id, meta.node_index, meta.size_bytes, meta.commitment)
        return ShareReceipt(
            dataset_id=meta.dataset_id,
            node_index=meta.node_index,
            bytes_received=meta.size_bytes,
            commitment=meta.commitment,
            signature=sign(self.signing_key, canonical_json(payload)),
        )
