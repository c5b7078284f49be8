"""The coordinator's side of node witnessing: ask every node to cosign each new checkpoint.

After the coordinator signs a checkpoint (the periodic signer, a round close, a proof
request) it sends it to every node with a consistency proof from the size that node last
cosigned (`mpcnode.witness`), checks each cosignature it gets back with the node's key
from the cluster manifest, and stores the lines on the checkpoint note
(`Ledger.add_checkpoint_signatures`), so every place that serves checkpoints serves the
cosigned note. Nodes are asked in parallel within a short deadline (`COSIGN_S`): a node
that is down or slow costs at most that long and never blocks a checkpoint or a round;
the nodes still missing are asked again at a later tick (after a failure, with a
backoff of 5 s doubling to 60 s, so a dead node does not cost every tick and every
proof request its deadline). A node's refusal (it saw
another log: a fork) is logged loudly - that is what witnesses are for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Protocol, runtime_checkable

from ledger import Ledger
from ledger.cosignature import Cosignature, Cosigner, verify_cosignature
from ledger.signed_note import parse_signature_line, split_note
from mutualmind.errors import MutualMindError, RuleViolation
from mutualmind.vocabulary.deadlines import COSIGN_S

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 5.0   # a node that failed is asked again after this long...
MAX_BACKOFF_S = 60.0    # ...doubling up to this, so a dead node costs a deadline rarely


@runtime_checkable
class WitnessLink(Protocol):
    """The two node calls witnessing needs (`GrpcClusterLink` implements them)."""

    def cosign_checkpoint(self, node_index: int, note: str, verifier_key: str, old_size: int,
                          proof: list[bytes], *, timeout: float) -> str: ...

    def witness_size(self, node_index: int, *, timeout: float) -> int: ...


class CheckpointWitnesses:
    """Collects node cosignatures on the ledger's newest checkpoint; see the module docstring.

    `cosigners[i]` is node i's name and public key (the manifest's, checked against the
    ledger at start). Thread-safe: one cosigning round runs at a time.
    """

    def __init__(self, ledger: Ledger, link: WitnessLink, cosigners: Sequence[Cosigner], *,
                 deadline_s: float = COSIGN_S) -> None:
        self._ledger = ledger
        self._link = link
        self._cosigners = tuple(cosigners)
        self._deadline_s = deadline_s
        self._sizes: dict[int, int] = {}       # node -> size it last cosigned, as far as known
        self._done: dict[int, int] = {}        # node -> checkpoint size it cosigned for us
        self._refusals: dict[int, str] = {}    # node -> last refusal logged (logged once)
        self._backoff: dict[int, tuple[float, float]] = {}  # node -> (retry at, backoff)
        self._round = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self._cosigners)),
                                        thread_name_prefix="cosign")
        self._closed = False

    def close(self) -> None:
        """No more rounds; calls in flight end within their deadline."""
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)

    def cosign_newest(self) -> int:
        """Ask the nodes missing from the newest checkpoint for their cosignature; how many
        were added."""
        if self._closed:
            return 0
        with self._round:
            latest = self._ledger.latest_checkpoint()
            if latest is None:
                return 0
            size, note = latest
            now = time.monotonic()
            missing = [i for i in range(len(self._cosigners)) if self._done.get(i, -1) < size
                       and self._backoff.get(i, (0.0, 0.0))[0] <= now]
            if not missing:
                return 0
            text, _ = split_note(note)
            until = time.monotonic() + self._deadline_s  # both calls to a node share it
            futures = {self._pool.submit(self._ask, i, size, note, text, until): i for i in missing}
            finished, _ = wait(futures, timeout=self._deadline_s + 0.5)
            found: list[Cosignature] = []
            for future, node in futures.items():
                cosignature = future.result() if future in finished else None
                if cosignature is None:
                    _, last = self._backoff.get(node, (0.0, FIRST_BACKOFF_S / 2))
                    wait_s = min(MAX_BACKOFF_S, last * 2)
                    self._backoff[node] = (time.monotonic() + wait_s, wait_s)
                    continue
                self._backoff.pop(node, None)
                found.append(cosignature)
                self._done[node] = size
            if found:
                self._ledger.add_checkpoint_signatures(size, [c.line() for c in found])
            return len(found)

    def note_covering(self, index: int) -> str:
        """The newest checkpoint covering entry `index` (signed now if none does), with
        the cosignatures the nodes give within the deadline."""
        note = self._ledger.checkpoint_covering(index)
        return self._cosigned(note)

    def current_note(self) -> str:
        """A checkpoint at the ledger's current size, with the nodes' cosignatures."""
        return self._cosigned(self._ledger.checkpoint())

    def _cosigned(self, note: str) -> str:
        latest = self._ledger.latest_checkpoint()
        if latest is None or latest[1] != note:
            return note  # an older stored head: served as stored
        self.cosign_newest()
        newest = self._ledger.latest_checkpoint()
        return newest[1] if newest is not None and newest[0] == latest[0] else note

    def _request(self, node: int, size: int, note: str, left: Callable[[], float]) -> str | None:
        """Send the cosign request with a proof from the node's size; None if it is ahead."""
        old = self._sizes.get(node)
        if old is None:
            old = self._link.witness_size(node, timeout=left())
        if old > size:
            return None
        proof = self._ledger.consistency_proof(old, size) if 0 < old < size else []
        line = self._link.cosign_checkpoint(node, note, self._ledger.verifier_key(), old, proof,
                                            timeout=left())
        self._sizes[node] = size
        return line

    def _ask(self, node: int, size: int, note: str, text: str, until: float) -> Cosignature | None:
        """One node's checked cosignature of the checkpoint at `size`, or None (logged)."""
        cosigner = self._cosigners[node]

        def left() -> float:
            return max(0.05, until - time.monotonic())

        try:
            try:
                line = self._request(node, size, note, left)
            except RuleViolation as err:
                if err.rule != "witness_size_mismatch" or node not in self._sizes:
                    raise
                del self._sizes[node]  # a stale idea of its size: ask it, then once more
                line = self._request(node, size, note, left)
            if line is None:
                return None  # it cosigned a newer head already; that one will carry it
            cosignature = Cosignature.from_line(parse_signature_line(line))
        except RuleViolation as err:
            self._sizes.pop(node, None)
            if self._refusals.get(node) != err.message:
                self._refusals[node] = err.message
                log.error("%s refused to cosign the checkpoint at size %d: %s",
                          cosigner.name, size, err.message)
            return None
        except (MutualMindError, ValueError) as err:  # down, slow, closed channel, bad line
            self._sizes.pop(node, None)
            log.info("no cosignature from %s for size %d: %s", cosigner.name, size, err)
            return None
        if not verify_cosignature(text, cosignature, cosigner):
            log.error("%s sent a cosignature that does not verify under its manifest key",
                      cosigner.name)
            return None
        self._refusals.pop(node, None)
        return cosignature

