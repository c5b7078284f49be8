"""An upload's header and the node's signed receipt for a stored share.

The node signs the receipt (canonical JSON); the provider checks it against the node's key
from the cluster manifest before it counts the upload as done.
"""

from __future__ import annotations

from dataclasses import dataclass

from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.signing_keys import verify_signature

KIND_SHARE_RECEIPT = "share_receipt"

@dataclass(frozen=True)
class UploadHeader:
    """What the first message of an upload says."""

    dataset_id: str
    node_index: int
    rows: int
    cols: int
    frac_bits: int


@dataclass(frozen=True)
class ShareReceipt:
    """The node's signed statement that it stored a share with this commitment."""

    dataset_id: str
    node_index: int
    bytes_received: int
    commitment: bytes
    signature: bytes


def receipt_payload(dataset_id: str, node_index: int, bytes_received: int, commitment: bytes) -> dict[str, object]:
    return {
        "kind": KIND_SHARE_RECEIPT,
        "dataset_id": dataset_id,
        "node_index": node_index,
        "bytes_received": bytes_received,
        "commitment": commitment.hex(),
    }


def verify_receipt(receipt: ShareReceipt, node_public_key: bytes) -> bool:
    """True when the node holding `node_public_key` signed this receipt."""
    message = canonical_json(
        receipt_payload(receipt.dataset_id, receipt.node_index, receipt.bytes_received, receipt.commitment)
    )
    return verify_signature(node_public_key, message, receipt.signature)
