"""Where the coordinator is: the flags and environment every admin command reads.

An admin command finds the coordinator in one of two ways: `--data-dir DIR` of a local
cluster (its `cluster-state.json` names the admin address, the market address and the
certificate folder), or explicit `--coordinator HOST:PORT` (the cluster port, where the
Admin API is), `--market HOST:PORT` and `--certs DIR` (or the environment variables
MUTUALMIND_DATA_DIR / _COORDINATOR / _MARKET / _CERTS, as the compose `admin` service
sets them). Explicit flags win over the state file. The client that calls the coordinator
there is `coordinator.admin_cli.coordinator_client`.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from mutualmind.errors import InvalidInput

COORDINATOR_NAME = "coordinator"   # a SAN of the coordinator's certificate, whatever its address
ENV_PREFIX = "MUTUALMIND_"         # MUTUALMIND_COORDINATOR etc.: defaults for the flags


@dataclass(frozen=True)
class AdminTarget:
    """The coordinator's two addresses and the cluster folder with `admin.pem`/`ca.pem`."""

    admin_address: str | None
    market_address: str | None
    certs_dir: Path

    def require_admin(self) -> str:
        if not self.admin_address:
            raise InvalidInput("no coordinator admin address: pass --data-dir DIR of a local "
                               "cluster, or --coordinator HOST:PORT (its cluster port)")
        return self.admin_address

    def require_market(self) -> str:
        if not self.market_address:
            raise InvalidInput("no coordinator market address: pass --data-dir DIR of a local "
                               "cluster, or --market HOST:PORT (its public port)")
        return self.market_address


def target_arguments() -> argparse.ArgumentParser:
    """A parent parser with the flags every admin command takes."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("where the coordinator is")
    env = os.environ.get
    group.add_argument("--data-dir", type=Path, default=env(f"{ENV_PREFIX}DATA_DIR"),
                       help="data dir of a local cluster (`cluster up`): reads all of the "
                            f"below [env {ENV_PREFIX}DATA_DIR]")
    group.add_argument("--coordinator", default=env(f"{ENV_PREFIX}COORDINATOR"),
                       metavar="HOST:PORT",
                       help=f"the coordinator's cluster (admin) port [env {ENV_PREFIX}COORDINATOR]")
    group.add_argument("--market", default=env(f"{ENV_PREFIX}MARKET"), metavar="HOST:PORT",
                       help=f"the coordinator's public (market) port [env {ENV_PREFIX}MARKET]")
    group.add_argument("--certs", type=Path, default=env(f"{ENV_PREFIX}CERTS"),
                       help="cluster folder holding ca.pem, admin.pem and admin.key "
                            f"[env {ENV_PREFIX}CERTS]")
    parent.add_argument("--json", action="store_true", help="print JSON for scripts")
    return parent


def resolve_target(args: argparse.Namespace) -> AdminTarget:
    admin, market, certs = args.coordinator, args.market, args.certs
    if args.data_dir is not None:
        from mutualmind.transport.cluster_state import load_state

        state = load_state(args.data_dir)
        admin = admin or state.admin_address
        market = market or state.market_address
        certs = certs or state.certs_dir
    if certs is None:
        raise InvalidInput("no certificate folder: pass --data-dir DIR of a local cluster, or "
                           "--certs DIR (the folder from `mutualmind cluster certs`)")
    for flag, value in (("--coordinator", admin), ("--market", market)):
        if value is not None and (":" not in value or not value.rsplit(":", 1)[1].isdigit()):
            raise InvalidInput(f"{flag} {value!r} is not HOST:PORT (e.g. 127.0.0.1:7001)")
    return AdminTarget(admin_address=admin, market_address=market, certs_dir=Path(certs))
