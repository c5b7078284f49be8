"""How admin commands print: rich tables for people, JSON for scripts, token amounts.

A pipe gets a wide console (tables are not squeezed to 80 columns in logs and tests);
JSON goes to stdout one document per line (JSON lines), keys sorted, so scripts can
parse every line with `json.loads`, including the progress lines of `round run --json`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

WIDE = 160


def console() -> Any:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else WIDE)


def print_json(value: Any) -> None:
    print(json.dumps(value, sort_keys=True), flush=True)


def short_hex(data: bytes, length: int = 16) -> str:
    text = data.hex()
    return text if len(text) <= length else text[:length] + "…"


def micro(value: int) -> str:
    """A metric in millionths as a signed decimal with six places, without floats."""
    sign = "-" if value < 0 else "+"
    whole, frac = divmod(abs(value), 1_000_000)
    return f"{sign}{whole}.{frac:06d}"


def health_markup(health: str) -> str:
    colour = "green" if health == "SERVING" else "red"
    return f"[{colour}]{health}[/{colour}]"
