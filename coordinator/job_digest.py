"""The job digest, re-exported: it lives in `ledger.job_digest` so nodes can recompute it
without importing the coordinator."""

from __future__ import annotations

from ledger.job_digest import DIGEST_DOMAIN, job_digest

__all__ = ["DIGEST_DOMAIN", "job_digest"]
