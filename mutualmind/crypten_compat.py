"""Import CrypTen 0.4.1 on current torch: the one place that does `import crypten`.

CrypTen 0.4.1 (its last release) imports `torch.onnx._internal.registration` for its ONNX
converter at import time; newer torch no longer has that module, so a bare
`import crypten` fails. We never use CrypTen's ONNX converter (models are built from
our own specs), so supplying an empty stand-in module before the import is enough.
Every other module gets CrypTen from here: `from mutualmind.crypten_compat import crypten`.
"""

from __future__ import annotations

import sys
import types

_MISSING = "torch.onnx._internal.registration"


def _supply_missing_torch_module() -> None:
    try:
        __import__(_MISSING)
    except ImportError:
        stub = types.ModuleType(_MISSING)
        stub.registry = None  # type: ignore[attr-defined]  # only named, never used
        sys.modules[_MISSING] = stub


_supply_missing_torch_module()

import crypten  # noqa: E402  (must follow the stand-in)
from crypten.encoder import FixedPointEncoder  # noqa: E402

__all__ = ["crypten", "FixedPointEncoder"]
