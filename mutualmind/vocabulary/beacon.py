"""The job's random beacon: the secret seed of every public random choice of a valuation.

Two choices of a round's MPC job are random and public to the nodes: which rows of each
dataset copy detection samples (`mpcnode.worker.copy_detection.sample_indices`) and,
beyond the exact limit, which coalitions Data Banzhaf samples (`valuation.plan`). A
provider who could compute them when it shares its table could put its copied rows
where no sample looks, or tune a dataset to the coalitions that will be trained. So
both are derived from a beacon no provider knows when it submits data: BEACON_BYTES
bytes from `secrets`, drawn by the coordinator when it starts the round's job (the
round's datasets, with their provider-signed share commitments, are fixed since the
round opened). The nodes sign it with the result (`attestation.attestation_message`),
and it goes on the ledger in the round_result entry, so `admin round verify` and
anyone re-running the valuation draw the same rows and coalitions.

Trust: the coordinator chooses the beacon; it never sees a row, but a coordinator that
colludes with a provider could pass it the beacon before the job. Nodes contributing
their own randomness (commit, then reveal) would remove that; not built.
"""

from __future__ import annotations

import re
import secrets

from mutualmind.errors import InvalidInput

BEACON_BYTES = 32  # 256 bits
_HEX = re.compile(rf"^[0-9a-f]{{{2 * BEACON_BYTES}}}$")


def draw_beacon() -> str:
    """A fresh beacon, lowercase hex."""
    return secrets.token_hex(BEACON_BYTES)


def check_beacon(value: object) -> str:
    """`value` if it is a beacon (2 x BEACON_BYTES lowercase hex characters); else InvalidInput."""
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise InvalidInput(f"a job's beacon must be {2 * BEACON_BYTES} lowercase hex characters "
                           f"({BEACON_BYTES} random bytes from the coordinator)")
    return value
