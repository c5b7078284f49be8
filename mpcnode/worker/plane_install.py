"""Put a `GrpcCommunicator` under CrypTen, in place of `crypten.init()`'s torch.distributed.

CrypTen reaches its communicator only through the functions of `crypten.communicator`
(`get`, `is_initialized`, `uninit`) and its TTP client only through
`TTPClient.get()`; `crypten.init()` would start torch.distributed. So this module does
what `init` does, with the plane: sets those functions to answer with our communicator,
runs CrypTen's own seed set-up (`_setup_prng`: pairwise and global seeds exchanged over
the plane), and installs the typed TTP client. `crypten.uninit()` then shuts the plane
down in order and restores CrypTen's functions, so a process could init again.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from mpcnode.worker.grpc_plane import GrpcCommunicator
from mpcnode.worker.heap import fix_mmap_threshold
from mpcnode.worker.plane_dealer import PlaneTTPClient
from mpcnode.worker.plane_session import PlaneConfig, PlaneSession

_saved: dict[str, Any] = {}


def init_crypten_over_plane(config: PlaneConfig) -> ModuleType:
    """Connect this party's plane and make CrypTen use it; returns the crypten module.

    The caller has set CrypTen's configuration (mpc.provider TTP, communicator.verbose).
    """
    from mutualmind.crypten_compat import crypten

    comm_module = crypten.communicator
    TTPClient = crypten.mpc.provider.ttp_provider.TTPClient
    if _saved:
        raise RuntimeError("CrypTen already runs over the gRPC plane in this process")
    fix_mmap_threshold()   # idempotent; the worker also calls it before loading its shares
    session = PlaneSession.connect(config)
    communicator = GrpcCommunicator(session)
    _saved.update(get=comm_module.get, is_initialized=comm_module.is_initialized, uninit=comm_module.uninit)
    GrpcCommunicator.instance = communicator
    comm_module.get = lambda: communicator
    comm_module.is_initialized = lambda: True
    comm_module.uninit = _uninit
    try:
        crypten._setup_prng()   # CrypTen's own seed exchange, over the plane
        if config.with_dealer:
            TTPClient._TTPClient__instance = PlaneTTPClient(session, communicator)  # type: ignore[attr-defined]
    except BaseException:
        _uninit()
        raise
    return crypten


def _uninit() -> None:
    from mutualmind.crypten_compat import crypten

    comm_module = crypten.communicator
    TTPClient = crypten.mpc.provider.ttp_provider.TTPClient
    TTPClient._TTPClient__instance = None  # type: ignore[attr-defined]
    try:
        GrpcCommunicator.shutdown()
    finally:
        for name, function in _saved.items():
            setattr(comm_module, name, function)
        _saved.clear()
