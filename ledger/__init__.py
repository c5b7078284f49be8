"""The MutualMind ledger: append-only, hash-chained, signed entries with Merkle proofs.

A library the coordinator writes through (`Ledger`) and anyone can check offline
(`verify_ledger`, and the pure functions of `ledger.merkle` and `ledger.checkpoint`).
"""

from ledger.entries import Entry
from ledger.ledger import Ledger
from ledger.state import LedgerState
from ledger.verify import VerifyReport, verify_ledger
from mutualmind.vocabulary.payloads import request_message

__all__ = ["Entry", "Ledger", "LedgerState", "VerifyReport", "request_message", "verify_ledger"]
