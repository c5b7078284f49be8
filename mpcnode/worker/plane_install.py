"""Put a `GrpcCommunicator` under CrypTen, in place of `crypten.init()`'s torch.distributed.

CrypTen reaches its communicator, its TTP client and its seeds through process globals;
`party_context` points those at a `Party` passed in. So this module does what
`crypten.init` does, with the plane: connects the party's session, makes it the
process's party, runs CrypTen's own seed set-up (`_setup_prng`: pairwise and global
seeds exchanged over the plane), and gives the party the typed TTP client.
`crypten.uninit()` then shuts the plane down in order and restores CrypTen's globals, so
a process could init again.
"""

from __future__ import annotations

from types import ModuleType

from mpcnode.worker import party_context
from mpcnode.worker.grpc_plane import GrpcCommunicator
from mpcnode.worker.heap import fix_mmap_threshold, freeze_imports
from mpcnode.worker.plane_dealer import PlaneTTPClient
from mpcnode.worker.plane_session import PlaneConfig, PlaneSession

_uninit_saved: list[object] = []


def init_crypten_over_plane(config: PlaneConfig) -> ModuleType:
    """Connect this party's plane and make CrypTen use it; returns the crypten module.

    The caller has set CrypTen's configuration (mpc.provider TTP, communicator.verbose).
    """
    from mutualmind.crypten_compat import crypten

    if _uninit_saved:
        raise RuntimeError("CrypTen already runs over the gRPC plane in this process")
    fix_mmap_threshold()   # idempotent; the worker also calls it before loading its shares
    session = PlaneSession.connect(config)
    party = party_context.Party(GrpcCommunicator(session))
    party_context.install()
    party_context.set_process_party(party)
    _uninit_saved.append(crypten.communicator.uninit)
    crypten.communicator.uninit = _uninit
    try:
        start_party(party, session, with_dealer=config.with_dealer)
    except BaseException:
        _uninit()
        raise
    freeze_imports()   # the party is set up: what lives now lives as long as the process
    return crypten


def start_party(party: party_context.Party, session: PlaneSession, *, with_dealer: bool) -> None:
    """What `crypten.init` does for one party once its links are up, run as that party:
    CrypTen's seed exchange over the plane, then the dealer's seed (`PlaneTTPClient`)."""
    from mutualmind.crypten_compat import crypten

    with party_context.bound(party):
        crypten._setup_prng()
        if with_dealer:
            party.ttp_client = PlaneTTPClient(session, party.communicator)


def _uninit() -> None:
    from mutualmind.crypten_compat import crypten

    try:
        party_context.current().communicator.close()
    finally:
        crypten.communicator.uninit = _uninit_saved.pop()
        party_context.uninstall()
