"""One party of a small protocol run, over either data plane: `python -m
tests.mpcnode.worker.plane_party CONFIG.json` prints one JSON line.

The protocol is the repo's own comparison (`less_than_zero`) and a Beaver product with
an online dealer request (no prefetch), on public inputs encoded as party 0's share
(the others hold zero), so both planes compute on the same shares; the output is the
revealed values and this party's CrypTen counters for the protocol alone.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

VALUES = [-3.5, -1.0, -0.25, 0.0, 0.125, 2.0, 7.75, -1000.0]


def _init(config: dict) -> object:
    from mutualmind.crypten_compat import crypten

    crypten.cfg["mpc.provider"] = "TTP"
    crypten.cfg["communicator.verbose"] = True
    if config["plane"] == "grpc":
        from mpcnode.worker.plane_install import init_crypten_over_plane
        from mpcnode.worker.plane_session import PlaneConfig

        init_crypten_over_plane(PlaneConfig(
            job_id=config["job_id"], rank=config["rank"], world_size=config["world_size"],
            addresses=tuple(config["plane_addresses"]), members=tuple(f"node{i}" for i in range(config["world_size"])),
            certs_dir=Path(config["certs_dir"]), connect_timeout_s=30.0))
    else:
        from mpcnode.worker import rendezvous

        os.environ.update({
            "RENDEZVOUS": rendezvous.rendezvous_url("127.0.0.1", config["master_port"]),
            "WORLD_SIZE": str(config["world_size"]), "RANK": str(config["rank"]),
            "DISTRIBUTED_BACKEND": "gloo"})
        rendezvous.register()
        crypten.init()
    return crypten


def protocol(rank: int) -> dict:
    """The protocol run, as party `rank` of whichever plane CrypTen runs on: [x < 0] and
    x*x of VALUES (held by party 0) revealed, and this party's rounds and bytes."""
    import crypten.communicator as comm
    import torch
    from crypten.mpc import MPCTensor

    from mpcnode.worker.comparison import less_than_zero

    encoded = (torch.tensor(VALUES, dtype=torch.float64) * 2**16).long()
    share = encoded if rank == 0 else torch.zeros_like(encoded)
    comm.get().reset_communication_stats()
    value = MPCTensor.from_shares(share, precision=16)
    below = less_than_zero(value).get_plain_text()
    product = (value * value).get_plain_text()
    stats = comm.get().get_communication_stats()
    return {"ltz": below.tolist(), "square": product.tolist(), "rounds": stats["rounds"], "bytes": stats["bytes"]}


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    crypten = _init(config)
    try:
        print(json.dumps(protocol(config["rank"])), flush=True)
    finally:
        crypten.uninit()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
