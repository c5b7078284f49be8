"""`provider proof`: fetch an inclusion proof of one ledger entry and check it offline.

The coordinator answers GetInclusionProof on its public port with the entry, its Merkle
path and a signed checkpoint that covers it. Nothing in the reply is trusted: the
document is checked with the ledger's pure verifiers (`ledger.proof_file.check_proof`)
against a verifier key the provider got elsewhere (`--vkey`, or the local cluster's
ledger), so a coordinator that rewrote the entry, the path or the head is caught here.
With `--quorum K` the head must also carry valid cosignatures by K distinct nodes
(`ledger.cosignature`): a coordinator showing this provider a log it showed nobody else
would need K nodes to cosign a fork.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ledger.checkpoint import Checkpoint
from ledger.cosignature import Cosigner, valid_cosigners
from ledger.entries import Entry
from ledger.proof_file import PROOF_FORMAT, check_proof
from mutualmind.errors import IntegrityError, InvalidInput
from proto import market_pb2


def proof_document(reply: market_pb2.InclusionProofReply, vkey: str) -> dict[str, Any]:
    """The reply as the proof file `ledger check-proof` reads, naming the key it trusts."""
    try:
        entry = json.loads(reply.entry_json)
    except ValueError:
        raise IntegrityError("the coordinator's reply holds no readable entry") from None
    if not isinstance(entry, dict):
        raise IntegrityError("the coordinator's reply holds no readable entry")
    return {
        "format": PROOF_FORMAT,
        "index": reply.index,
        "tree_size": reply.tree_size,
        "entry": entry,
        "leaf_hash": reply.leaf_hash.hex(),
        "proof": [h.hex() for h in reply.proof],
        "checkpoint": reply.checkpoint_note,
        "verifier_key": vkey,
    }


def check_reply(reply: market_pb2.InclusionProofReply, index: int, vkey: str, *,
                cosigners: Sequence[Cosigner] = (), quorum: int = 0,
                ) -> tuple[dict[str, Any], Checkpoint, Entry, list[Cosigner]]:
    """Check the proof under `vkey`, that it is about entry `index`, and that at least
    `quorum` of `cosigners` (the nodes) cosigned its checkpoint; IntegrityError (one line,
    "proof rejected: ...") otherwise. Also returns the nodes whose cosignature verified."""
    document = proof_document(reply, vkey)
    try:
        head, entry = check_proof(document, vkey, cosigners=cosigners, quorum=quorum)
        cosigned = valid_cosigners(reply.checkpoint_note, cosigners)
    except (IntegrityError, InvalidInput) as err:
        raise IntegrityError(f"proof rejected: {err.message}") from None
    if entry.index != index:
        raise IntegrityError(f"proof rejected: asked for entry {index}, the proof is of entry {entry.index}")
    return document, head, entry, cosigned
