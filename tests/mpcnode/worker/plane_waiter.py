"""One party of a two-party data plane that joins, then waits for a tensor that never
comes: `python -m tests.mpcnode.worker.plane_waiter CONFIG.json`.

Prints `{"joined": true}` once every link is up, then one JSON line with the typed
error its link ended with (`error`, `message`, `after_s` since it joined). No CrypTen:
only the plane's links, so a test sees how a link ends when its peer goes silent.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from mpcnode.worker.plane_session import PlaneConfig, PlaneSession
from mutualmind.errors import MutualMindError


def main() -> None:
    raw = json.loads(Path(sys.argv[1]).read_text())
    config = PlaneConfig(job_id=raw["job_id"], rank=raw["rank"], world_size=2,
                         addresses=tuple(raw["addresses"]), members=("node0", "node1"),
                         certs_dir=Path(raw["certs_dir"]), with_dealer=False,
                         connect_timeout_s=30.0, recv_timeout_s=raw["recv_timeout_s"],
                         keepalive_s=raw["keepalive_s"])
    session = PlaneSession.connect(config)
    print(json.dumps({"joined": True}), flush=True)
    joined = time.monotonic()
    try:
        session.link(1 - config.rank).recv_tensor()
        print(json.dumps({"error": None}), flush=True)
    except MutualMindError as err:
        print(json.dumps({"error": type(err).__name__, "message": err.message,
                          "after_s": time.monotonic() - joined}), flush=True)
    finally:
        session.close(wait_s=0.0)


if __name__ == "__main__":
    main()
