"""grpc stays on the wire: only servicers, server start-up, clients and `mutualmind.transport`.

Logic modules raise `mutualmind.errors` types and take plain arguments, so they can be
read, tested and reused (a REST front, a batch tool) without a gRPC stack. import-linter
(`make check`) holds the layers between packages; this test holds the rule inside them,
which import-linter cannot express: it is about module *names*, not packages.

"grpc" means the `grpc` package, its companions (`grpc_health`, `grpc_status`,
`grpc_reflection`, ...) and the generated stubs `proto.*_pb2_grpc`. The plain messages
(`proto.*_pb2`) are vocabulary and may be used anywhere above `proto`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("coordinator", "mpcnode", "provider", "ledger", "mutualmind")
TRANSPORT = Path("mutualmind") / "transport"
# servicer.py / admin_servicer.py, server.py / dealer_server.py, client.py / dealer_client.py
WIRE_MODULE = re.compile(r"^(?:\w+_)?(?:servicer|server|client)\.py$")
STUBS = re.compile(r"^proto\.\w+_pb2_grpc$")


def _is_grpc(module: str) -> bool:
    top = module.split(".", 1)[0]
    return top == "grpc" or top.startswith("grpc_") or bool(STUBS.match(module))


def grpc_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) for every grpc import in `source`, top level or inside a function."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if _is_grpc(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found += [(node.lineno, n) for n in names if _is_grpc(n)][:1]
    return found


def may_use_grpc(path: Path) -> bool:
    """True for the modules whose job is the wire (path relative to the repository)."""
    return path.is_relative_to(TRANSPORT) or bool(WIRE_MODULE.match(path.name))


def test_the_checker_sees_every_form_of_grpc_import() -> None:
    source = (
        "import json\n"
        "from proto import node_pb2\n"                         # messages: allowed anywhere
        "def f():\n"
        "    import grpc\n"                                     # lazy import still counts
        "    from grpc_health.v1 import health_pb2\n"
        "    from proto import market_pb2, market_pb2_grpc\n"
        "    import proto.node_pb2_grpc as stubs\n"
    )
    assert [line for line, _ in grpc_imports(source)] == [4, 5, 6, 7]
    assert may_use_grpc(Path("mpcnode/servicer.py"))
    assert may_use_grpc(Path("coordinator/dealer_client.py"))
    assert may_use_grpc(Path("mpcnode/dealer_server.py"))
    assert may_use_grpc(Path("mutualmind/transport/status.py"))
    assert not may_use_grpc(Path("mpcnode/registry.py"))
    assert not may_use_grpc(Path("coordinator/clientele.py"))


def test_grpc_only_in_servicers_servers_and_clients() -> None:
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if may_use_grpc(relative):
                continue
            for line, module in grpc_imports(path.read_text(encoding="utf-8")):
                offenders.append(f"{relative}:{line} imports {module}")
    assert not offenders, (
        "grpc outside a servicer, server or client module (move the wire part into a "
        "`*_servicer.py`, `*server.py` or `*_client.py` module, or into mutualmind/transport):\n"
        + "\n".join(offenders))
