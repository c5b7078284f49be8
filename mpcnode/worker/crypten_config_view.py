"""A read-fast view of CrypTen's configuration for the training loop.

CrypTen reads its omegaconf configuration on every attribute access of every
CrypTensor (`crypten.debug.validate_attribute` checks `cfg.debug.validation_mode`)
and in every protocol call; measured with cProfile, omegaconf lookups were about a
third of a party's CPU time in a training step. Once a job's configuration is final
(after `crypten.init()`), the worker swaps the omegaconf tree for plain nested
objects with the same values, so a lookup is a Python attribute read.

CrypTen changes its configuration at run time only through `cfg.temp_override`
(e.g. inside `log`); that keeps working: the override is merged with omegaconf as
before and installed as a new view for the duration of the block. Plain writes
(`cfg["a.b"] = v`) are not supported after the swap and raise; the worker makes none.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any


class ConfigView:
    """Nested attribute access over a plain dict of plain values (read-only)."""

    _source: Any  # the omegaconf tree this view was made from (`temp_override` merges into it)

    def __init__(self, values: Mapping[str, Any], source: Any) -> None:
        for key, value in values.items():
            object.__setattr__(self, key, ConfigView(value, None) if isinstance(value, Mapping) else value)
        object.__setattr__(self, "_source", source)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("CrypTen's configuration is read-only during a job")


def view_of(config: Any) -> ConfigView:
    """A `ConfigView` of an omegaconf tree."""
    from omegaconf import OmegaConf

    values = OmegaConf.to_container(config, resolve=True)
    if not isinstance(values, Mapping):
        raise TypeError(f"CrypTen's configuration is a {type(values).__name__}, not a mapping")
    return ConfigView({str(key): value for key, value in values.items()}, config)


def merged(base: ConfigView, override_dict: Mapping[str, object]) -> ConfigView:
    """`base` with CrypTen's dotted overrides applied, as a new view."""
    from omegaconf import OmegaConf

    update = OmegaConf.from_dotlist([f"{k}={v}" for k, v in override_dict.items()])
    return view_of(OmegaConf.merge(base._source, update))


def install(cfg: Any) -> None:
    """Replace `cfg.config` (omegaconf) by a `ConfigView` of the same values."""

    @contextmanager
    def temp_override(override_dict: Mapping[str, object]) -> Iterator[None]:
        old = cfg.config
        try:
            cfg.config = merged(old, override_dict)
            yield
        finally:
            cfg.config = old

    source = cfg.config._source if isinstance(cfg.config, ConfigView) else cfg.config
    cfg.config = view_of(source)
    cfg.temp_override = temp_override
