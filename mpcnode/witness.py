"""A node as a witness of the coordinator's ledger: it cosigns only a log that grew.

The coordinator asks every node to cosign each checkpoint it signs (C2SP
tlog-cosignature, `ledger.cosignature`), sending the note, the log's verifier key and a
consistency proof from the size this node last cosigned. The node checks all that with
`ledger.witness.check_next_head`, writes the new head to `witness.json` (atomically: a
crash leaves the old head or the new one), and only then returns its cosignature. A
refused checkpoint (badly signed, smaller, a fork) leaves the file as it was.

The log's key is pinned on first use: the node cosigns only checkpoints signed by the
key of the first one it accepted (or the key given at start, `pinned_vkey`), so a
coordinator cannot switch keys to start a second log. The node signs with its cluster
signing key under its member name ("node0"); verifiers know both from the cluster
manifest or the market directory. Cosigned messages start with "cosignature/v1\\n",
which no receipt or attestation (canonical JSON objects) can, so the one key serves both.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoint import Checkpoint
from ledger.cosignature import Cosignature, cosign
from ledger.signed_note import NoteError, parse_verifier_key, split_note
from ledger.witness import WitnessHead, WitnessRefusal, check_next_head
from mutualmind.errors import IntegrityError, InvalidInput
from mutualmind.transport.atomic_file import write_atomic

STATE_FILE = "witness.json"
STATE_VERSION = 1


@dataclass(frozen=True)
class CosignRequest:
    """What the coordinator sends: its new checkpoint and how it extends this node's last."""

    note: str
    verifier_key: str
    old_size: int
    proof: tuple[bytes, ...]


class Witness:
    """One node's witness: the last cosigned head on disk and the key that cosigns."""

    def __init__(self, data_dir: Path, name: str, key: Ed25519PrivateKey, *,
                 pinned_vkey: str | None = None, clock: Callable[[], float] = time.time) -> None:
        self._path = Path(data_dir) / STATE_FILE
        self._name = name
        self._key = key
        self._pinned = pinned_vkey
        self._clock = clock
        self._lock = threading.Lock()  # one check-and-store at a time
        if pinned_vkey is not None:
            try:
                parse_verifier_key(pinned_vkey)
            except NoteError as err:
                raise InvalidInput(f"--ledger-vkey: {err.message}") from None
        self._head = self._load()
        if pinned_vkey is not None and self._head is not None \
                and self._head.verifier_key != pinned_vkey:
            raise InvalidInput(f"{self._path} follows the log signed by "
                               f"{self._head.verifier_key}, not the pinned {pinned_vkey}")

    @property
    def name(self) -> str:
        return self._name

    def head(self) -> WitnessHead | None:
        """The last head this node cosigned (None before the first)."""
        return self._head

    def cosign(self, request: CosignRequest) -> Cosignature:
        """Check the request, store the new head, return the cosignature; WitnessRefusal
        (and nothing stored) when the checkpoint must not be cosigned."""
        vkey = self._pinned or request.verifier_key
        if self._pinned is not None and request.verifier_key not in ("", self._pinned):
            raise WitnessRefusal("checkpoint_signature",
                                 f"this node witnesses the log signed by {self._pinned} only")
        try:
            verifier = parse_verifier_key(vkey)
        except NoteError as err:
            raise WitnessRefusal("checkpoint_signature", f"the log's verifier key: {err.message}") from None
        with self._lock:
            last = self._head
            new = check_next_head(last, request.note, verifier, vkey, request.old_size, request.proof)
            head = WitnessHead(verifier_key=last.verifier_key if last else vkey, checkpoint=new)
            if head != last:
                self._store(head)
                self._head = head
            text, _ = split_note(request.note)  # all of it was verified, extension lines too
            return cosign(text, self._name, self._key, int(self._clock()))

    def _load(self) -> WitnessHead | None:
        try:
            raw = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            raise IntegrityError(f"{self._path} is unreadable ({err}); this node cannot witness "
                                 "until it is restored from a backup") from None
        try:
            if raw["version"] != STATE_VERSION:
                raise ValueError(f"version {raw['version']!r}")
            checkpoint = Checkpoint(str(raw["origin"]), int(raw["size"]),
                                    base64.b64decode(raw["root"], validate=True))
            return WitnessHead(str(raw["verifier_key"]), checkpoint)
        except (KeyError, TypeError, ValueError) as err:
            raise IntegrityError(f"{self._path} is not a witness state file ({err}); restore it "
                                 "from a backup") from None

    def _store(self, head: WitnessHead) -> None:
        cp = head.checkpoint
        data = {"version": STATE_VERSION, "verifier_key": head.verifier_key, "origin": cp.origin,
                "size": cp.size, "root": base64.b64encode(cp.root).decode()}
        self._path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self._path, (json.dumps(data, sort_keys=True) + "\n").encode(), mode=0o600)

