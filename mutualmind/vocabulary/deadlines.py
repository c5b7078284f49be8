"""How long every kind of call and job may take: the one owner of the time limits.

Each limit has one named default here; a caller that lets a user choose (the admin CLI's
`--deadline`, a RunRound request's `deadline_s`, a client's `timeout_s` argument) passes
its own value in and falls back to these. Control-plane calls are short and polled; an
MPC round (training every leave-one-out model, attestation, settlement) gets minutes; a
share upload streams for as long as a large table needs.

It lives in the vocabulary (pure Python) rather than in `mutualmind.transport` because
two of these limits travel in messages every role checks (a RunRound request's 0 means
ROUND_S; a StartJob deadline above MAX_JOB_S is refused) and because the node's job
runner, which must not import grpc, checks them too.
"""

from __future__ import annotations

from typing import Final

RPC_S: Final = 30.0              # a control-plane call from a client or the admin CLI
CLUSTER_CALL_S: Final = 15.0     # the coordinator's calls to a node or the dealer
JOB_START_S: Final = 10.0        # a StartJob waits this long for a (re)connecting member
JOB_CANCEL_S: Final = 5.0        # a cancel is best effort: a node it misses ends the job at its deadline
ROUND_S: Final = 600.0           # one round run or verify, from the job orders to the settlement
ROUND_SLACK_S: Final = 60.0      # a client waiting on a round streams for ROUND_S plus this
MAX_JOB_S: Final = 24 * 3600.0   # the longest deadline a node, the dealer or the admin CLI accepts
COORDINATOR_LOOKUP_S: Final = 10.0  # a node asking the coordinator for a registration or a round
MODEL_FETCH_S: Final = 600.0     # a sponsor's fetch of one node's model share
SHARE_UPLOAD_S: Final = 3600.0   # one client-streamed share upload
COSIGN_S: Final = 2.0            # the coordinator waits this long for nodes' checkpoint cosignatures
LEDGER_VERIFY_S: Final = 300.0   # the coordinator re-verifying its whole ledger for the admin CLI


def round_deadline(requested_s: float) -> float:
    """The deadline of a round run: `requested_s`, or ROUND_S when the request left it 0 (unset)."""
    return requested_s or ROUND_S
