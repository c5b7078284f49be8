"""Which MPC party the running code is: its communicator, dealer client and seeds.

CrypTen's protocol code finds its party through process globals: the communicator
through `crypten.communicator.get()`, the dealer through `TTPClient.get()`, its dealer
material's cache in `crypten.mpc.get_default_provider()`, the seeds it shares with the
other parties in `crypten.generators`, and its configuration overrides
(`cfg.temp_override`) in `cfg.config`. `install` points those at a `Party`
passed in: the one the calling thread has bound (`bound`), else the process's own
(`set_process_party`). A worker sets its one party for the whole process
(`plane_install`); a test binds several parties, one per thread, in one process
(`plane_memory`), and each thread's CrypTen code then runs as that party alone - with
its own communicator, dealer client, seeds and overrides.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mutualmind.crypten_compat import crypten

GENERATOR_KINDS = ("prev", "next", "local", "global")   # crypten.generators' keys


@dataclass
class Party:
    """One party of one job, as CrypTen's code sees it."""

    communicator: Any                          # a CrypTen Communicator (grpc_plane.GrpcCommunicator)
    ttp_client: Any = None                     # stands in for CrypTen's TTPClient instance
    # CrypTen's seed generators by kind, then device (filled by crypten._setup_prng)
    generators: dict[str, dict[Any, Any]] = field(default_factory=lambda: {k: {} for k in GENERATOR_KINDS})
    config: Any = None                         # cfg.config inside a temp_override, else None
    # its own tuple provider (CrypTen keeps one per process, with a cache of dealer
    # material): parties in threads each need theirs; None: CrypTen's
    provider: Any = None


_local = threading.local()
_process: list[Party] = []    # the process's party (a worker's), if set
_saved: dict[str, Any] = {}   # what `install` replaced, for `uninstall`


def current() -> Party:
    """The calling thread's party, else the process's; RuntimeError if there is none."""
    party = getattr(_local, "party", None)
    if party is not None:
        return party
    if _process:
        return _process[0]
    raise RuntimeError("no MPC party is bound to this thread or process (party_context)")


def _current_or_none() -> Party | None:
    party = getattr(_local, "party", None)
    return party if party is not None else (_process[0] if _process else None)


@contextmanager
def bound(party: Party) -> Iterator[Party]:
    """Run the block as `party` on this thread (nests: the previous binding returns)."""
    previous = getattr(_local, "party", None)
    _local.party = party
    try:
        yield party
    finally:
        _local.party = previous


def set_process_party(party: Party | None) -> None:
    """The party of every thread that bound none (a worker process has one party)."""
    _process.clear()
    if party is not None:
        _process.append(party)


class _PartyGenerators(MutableMapping[Any, Any]):
    """One kind of `crypten.generators` (e.g. "prev"): the current party's, by device."""

    def __init__(self, kind: str) -> None:
        self._kind = kind

    def _mine(self) -> dict[Any, Any]:
        return current().generators[self._kind]

    def __getitem__(self, device: Any) -> Any:
        return self._mine()[device]

    def __setitem__(self, device: Any, generator: Any) -> None:
        self._mine()[device] = generator

    def __delitem__(self, device: Any) -> None:
        del self._mine()[device]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._mine())

    def __len__(self) -> int:
        return len(self._mine())


class _PartyConfig:
    """`cfg.config`: the current party's override if it is inside `temp_override`, else
    the shared configuration. Parties in threads override at different moments; one
    shared slot would leave the last thread out restoring another's override."""

    def __init__(self, shared: Any) -> None:
        object.__setattr__(self, "_shared", shared)

    def __getattr__(self, name: str) -> Any:
        party = _current_or_none()
        config = party.config if party is not None and party.config is not None else self._shared
        return getattr(config, name)


def install(*, per_thread_config: Any = None) -> None:
    """Point CrypTen's globals at the current party (idempotent; `uninstall` undoes).
    `per_thread_config` (several parties in threads): the configuration every party
    reads (a `crypten_config_view.ConfigView`), each party's `temp_override` its own."""
    if _saved:
        return
    comm_module = crypten.communicator
    TTPClient = crypten.mpc.provider.ttp_provider.TTPClient
    cfg = crypten.cfg
    _saved.update(get=comm_module.get, is_initialized=comm_module.is_initialized,
                  ttp_get=TTPClient.__dict__["get"], generators=dict(crypten.generators),
                  config=cfg.config, temp_override=cfg.temp_override,
                  provider=crypten.mpc.get_default_provider)
    comm_module.get = lambda: current().communicator
    comm_module.is_initialized = lambda: _current_or_none() is not None
    TTPClient.get = staticmethod(_ttp_client)
    crypten.mpc.get_default_provider = _provider
    for kind in GENERATOR_KINDS:
        crypten.generators[kind] = _PartyGenerators(kind)
    if per_thread_config is not None:
        _saved["shared"] = per_thread_config
        cfg.config = _PartyConfig(per_thread_config)
        cfg.temp_override = _temp_override


@contextmanager
def _temp_override(override_dict: Any) -> Iterator[None]:
    """CrypTen's `cfg.temp_override`, seen by the current party only."""
    from mpcnode.worker.crypten_config_view import merged

    party = current()
    outer = party.config
    party.config = merged(outer if outer is not None else _saved["shared"], override_dict)
    try:
        yield
    finally:
        party.config = outer


def _provider() -> Any:
    party = _current_or_none()
    return party.provider if party is not None and party.provider is not None else _saved["provider"]()


def _ttp_client() -> Any:
    client = current().ttp_client
    if client is None:
        raise RuntimeError("this party has no dealer client (a job without the dealer)")
    return client


def uninstall() -> None:
    """Give CrypTen its own globals back."""
    if not _saved:
        return
    comm_module = crypten.communicator
    TTPClient = crypten.mpc.provider.ttp_provider.TTPClient
    comm_module.get = _saved["get"]
    comm_module.is_initialized = _saved["is_initialized"]
    TTPClient.get = _saved["ttp_get"]
    crypten.generators.update(_saved["generators"])
    crypten.cfg.config = _saved["config"]
    crypten.cfg.temp_override = _saved["temp_override"]
    crypten.mpc.get_default_provider = _saved["provider"]
    _saved.clear()
    set_process_party(None)
