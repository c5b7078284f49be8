"""One party of a two-party data plane that joins, then waits for a tensor that never
comes: `python -m tests.mpcnode.worker.plane_waiter CONFIG.json`.

Prints `{"joined": true}` once every link is up, then one JSON line with the typed
error its link ended with (`error`, `message`, `after_s` since it joined, `started_s`
since the process bound its deadline). No CrypTen: only the plane's links, so a test
sees how a link ends when its peer goes silent. The job's deadline comes from the
environment, as a worker's does (`MUTUALMIND_DEADLINE_S`, `lifetime`), or from the
config's `deadline_s`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from mpcnode.worker.lifetime import Deadline, bind_to_parent_and_deadline
from mpcnode.worker.plane_session import PlaneConfig, PlaneSession
from mutualmind.errors import MutualMindError


def main() -> None:
    started = time.monotonic()
    deadline = bind_to_parent_and_deadline()
    raw = json.loads(Path(sys.argv[1]).read_text())
    if "deadline_s" in raw:
        deadline = Deadline.after(raw["deadline_s"])
    config = PlaneConfig(job_id=raw["job_id"], rank=raw["rank"], world_size=2,
                         addresses=tuple(raw["addresses"]), members=("node0", "node1"),
                         certs_dir=Path(raw["certs_dir"]), with_dealer=False,
                         connect_timeout_s=30.0, deadline=deadline,
                         keepalive_s=raw["keepalive_s"])
    session = PlaneSession.connect(config)
    print(json.dumps({"joined": True}), flush=True)
    joined = time.monotonic()
    try:
        session.link(1 - config.rank).recv_tensor()
        print(json.dumps({"error": None}), flush=True)
    except MutualMindError as err:
        now = time.monotonic()
        print(json.dumps({"error": type(err).__name__, "message": err.message,
                          "after_s": now - joined, "started_s": now - started}), flush=True)
    finally:
        session.close(wait_s=0.0)


if __name__ == "__main__":
    main()
