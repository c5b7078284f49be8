"""A worker started ahead of its job: `python -m mpcnode.worker --ready`.

Starting a worker costs seconds of CPU, nearly all of it importing torch and CrypTen,
which no job's data touches. So the node (`mpcnode.ready_workers`) keeps a few workers
that have done only that and then block on stdin. Taken for a job, a ready worker reads
one line of JSON, `{"spec": "/abs/jobs/<id>/spec.json", "deadline_s": 120.0}` (the same
spec file a cold worker gets as its argument; no pickle), arms the job's deadline and
runs exactly as a cold worker does (`run.run_spec_file`): same files, same exit codes.
It holds no job data before that line and exits after its one job: never reused, so
nothing of one job or provider can reach another. Closed stdin without a line: exit 0.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
import threading
import time
from pathlib import Path

from mpcnode.worker.lifetime import Deadline, arm_deadline, bind_to_parent
from mpcnode.worker.run import run_spec_file

MAX_HANDOVER_BYTES = 64 * 1024
# heavy and job-independent: what `run` and `init_crypten` import on either data plane
PRELOAD = (
    "torch",
    "mutualmind.crypten_compat",
    "crypten.communicator",
    "crypten.mpc",
    "mpcnode.worker.backend",
    "mpcnode.worker.inputs",
    "mpcnode.worker.memory_budget",
    "mpcnode.worker.normalisation",
    "mpcnode.worker.training",
    "mpcnode.worker.inference",
    "mpcnode.worker.layers",
    "mpcnode.worker.banzhaf",
    "mpcnode.worker.rendezvous",
    "mpcnode.worker.crypten_config_view",
    "mpcnode.worker.plane_install",
    "mpcnode.worker.plane_session",
    "mpcnode.worker.grpc_plane",
    # imported lazily by torch once a job runs (measured with PYTHONPROFILEIMPORTTIME:
    # ~2 s of a warm job's start before these were preloaded)
    "torch.fx.experimental.symbolic_shapes",
    "torch._dynamo",
)


def preload(taken: threading.Event) -> None:
    """Import the heavy modules, stopping early once the job came (it imports what it
    needs itself); one that fails is left for the job to report."""
    for name in PRELOAD:
        if taken.is_set():
            return
        try:
            importlib.import_module(name)
        except Exception as err:  # the job imports it again and fails with its error file
            print(f"ready worker: preloading {name} failed: {type(err).__name__}: {err}", file=sys.stderr)
    if taken.is_set():
        return
    try:   # party 0 sizes its dealer requests the same way (`dealer_prefetch.warm_shapes`)
        from mpcnode.worker.dealer_prefetch import warm_shapes

        warm_shapes()
    except Exception as err:
        print(f"ready worker: warming the shape computations failed: {type(err).__name__}: {err}", file=sys.stderr)


def parse_handover(line: bytes) -> tuple[Path, float]:
    """The job's spec path and deadline from the node's one-line message (ValueError if bad)."""
    raw = json.loads(line.decode("utf-8"))
    if not isinstance(raw, dict) or set(raw) != {"spec", "deadline_s"}:
        raise ValueError("the handover must be an object with exactly spec and deadline_s")
    spec, deadline = raw["spec"], raw["deadline_s"]
    if not isinstance(spec, str) or not os.path.isabs(spec):
        raise ValueError("spec must be an absolute path")
    if not isinstance(deadline, (int, float)) or isinstance(deadline, bool) or not (
            math.isfinite(deadline) and deadline > 0):
        raise ValueError("deadline_s must be a positive number of seconds")
    return Path(spec), float(deadline)


def serve_ready() -> int:
    """Preload, wait for the job, run it; the exit status of the job (or 0 / 2)."""
    bind_to_parent()  # a spare dies with its node like any worker
    spawned = time.monotonic()
    received: list[bytes] = []
    taken = threading.Event()

    def read_job() -> None:
        received.append(sys.stdin.buffer.readline(MAX_HANDOVER_BYTES + 1))
        taken.set()

    threading.Thread(target=read_job, name="handover", daemon=True).start()
    preload(taken)
    ready = time.monotonic()
    taken.wait()
    taken_at = time.monotonic()
    line = received[0]
    if not line:
        return 0  # the node let this spare go without a job
    try:
        spec_path, deadline_s = parse_handover(line)
    except (ValueError, UnicodeDecodeError) as err:
        print(f"ready worker: bad handover from the node: {err}", file=sys.stderr)
        return 2
    deadline = Deadline.after(deadline_s)
    arm_deadline(deadline)
    startup: dict[str, object] = {"mode": "ready", "pid": os.getpid(),
                                  "preload_s": round(ready - spawned, 4),
                                  "idle_s": round(taken_at - ready, 4)}
    return run_spec_file(spec_path, deadline, startup)
