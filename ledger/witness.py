"""The rule a witness keeps before it cosigns a checkpoint: the log only ever grew.

Pure (no I/O, no clock): `check_next_head` takes what the witness last cosigned (a
`WitnessHead`, or None for a witness that has cosigned nothing yet) and the log's new
signed checkpoint with a consistency proof from the old size, and returns the new head
to store, or raises `WitnessRefusal` (a RuleViolation, so FAILED_PRECONDITION on the
wire) saying why:

- `checkpoint_signature`: the note is not signed by the log's key, or is not a checkpoint
  of this log (another origin);
- `checkpoint_shrank`: the new head is smaller than the last cosigned one;
- `checkpoint_fork`: same size with another root, or a consistency proof that does not
  link the last cosigned root to the new one;
- `witness_size_mismatch`: the proof starts at another size than the witness's last.

A refused head changes nothing: the caller stores only what this returns. The node
(`mpcnode.witness`) adds persistence, the signing key and the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.merkle import ProofError, verify_consistency
from ledger.signed_note import NoteError, NoteVerifier
from mutualmind.errors import RuleViolation


class WitnessRefusal(RuleViolation):
    """A witness refuses to cosign a checkpoint; `rule` says which check failed."""


@dataclass(frozen=True)
class WitnessHead:
    """The last checkpoint a witness cosigned: which log, its key, size and root."""

    verifier_key: str
    checkpoint: Checkpoint


def check_next_head(last: WitnessHead | None, note: str, verifier: NoteVerifier, vkey: str,
                    old_size: int, proof: Sequence[bytes]) -> Checkpoint:
    """The checkpoint of `note` if a witness at `last` may cosign it; WitnessRefusal if not.

    `vkey` is the log's verifier key string the note must be signed by (pinned in `last`
    once the witness has cosigned anything; `verifier` is it parsed). `old_size` is the
    size the caller believes the witness is at, and `proof` a consistency proof from
    that size to the note's.
    """
    if last is not None and vkey != last.verifier_key:
        raise WitnessRefusal("checkpoint_signature",
                             f"this witness follows the log signed by {last.verifier_key}, "
                             f"not {vkey}; it cosigns only that log")
    try:
        origin = last.checkpoint.origin if last is not None else verifier.name
        new = open_checkpoint(note, verifier, origin=origin)
    except NoteError as err:
        raise WitnessRefusal("checkpoint_signature",
                             f"the checkpoint is not signed by the log's key: {err.message}") from None
    old = last.checkpoint if last is not None else None
    old_size_held = old.size if old is not None else 0
    if new.size < old_size_held:
        raise WitnessRefusal("checkpoint_shrank",
                             f"the checkpoint has {new.size} entries but this witness already "
                             f"cosigned {old_size_held}: a log never shrinks")
    if old is None or old.size == 0:
        return new  # the first head a witness sees: nothing to be consistent with yet
    if new.size == old.size:
        if new.root != old.root:
            raise WitnessRefusal("checkpoint_fork",
                                 f"the checkpoint at size {new.size} has another root than the one "
                                 "this witness cosigned at that size: the log forked")
        return new
    if old_size != old.size:
        raise WitnessRefusal("witness_size_mismatch",
                             f"the consistency proof starts at size {old_size} but this witness "
                             f"last cosigned size {old.size}; send a proof from {old.size}")
    try:
        verify_consistency(old.size, new.size, list(proof), old.root, new.root)
    except ProofError as err:
        raise WitnessRefusal("checkpoint_fork",
                             f"the checkpoint at size {new.size} is not consistent with the one "
                             f"this witness cosigned at size {old.size}: {err.message}") from None
    return new
