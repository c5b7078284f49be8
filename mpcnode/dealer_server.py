"""Start the dealer's server: its servicer on a mutual-TLS cluster port, with TTP sessions.

`mutualmind dealer serve` (`mpcnode.dealer`) and the tests start the dealer through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mpcnode.dealer_servicer import DEALER_SERVICE, DealerServicer
from mpcnode.ttp_sessions import TtpSessions
from mutualmind.transport import RunningServer, build_server, server_credentials
from proto import dealer_pb2_grpc


@dataclass
class RunningDealer:
    """A started dealer: its server, bound port and sessions."""

    server: RunningServer
    sessions: TtpSessions

    @property
    def port(self) -> int:
        return int(self.server.port)

    def stop(self, grace: float | None = 2.0) -> None:
        self.sessions.close()
        self.server.stop(grace).wait()


def start_dealer(certs_dir: Path, address: str, work_dir: Path, *, ready_workers: int = 0) -> RunningDealer:
    """Start the dealer's server with member certificate `dealer` (mTLS, cluster CA).

    `ready_workers`: TTP processes kept started ahead of their jobs (`dealer serve`
    defaults to 1; the library to 0, so tests that run no job start no torch)."""
    sessions = TtpSessions(work_dir, certs_dir=Path(certs_dir), ready_workers=ready_workers)
    try:
        server = build_server(
            [(dealer_pb2_grpc.add_DealerServicer_to_server, DealerServicer(sessions))],
            address=address,
            credentials=server_credentials(Path(certs_dir), "dealer", require_client_cert=True),
            service_names=[DEALER_SERVICE],
        )
    except BaseException:
        sessions.close()  # no ready TTP outlives a dealer that did not start
        raise
    return RunningDealer(server=server, sessions=sessions)
