"""A member that comes back under a new address, as a restarted compose container does.

Run by tests/transport/test_member_channel.py inside a private mount namespace whose
/etc/hosts is the file named by argv[2] (so the member's name can be moved without
touching the machine's): the member `MEMBER` answers at 127.0.0.1, stops, and comes
back at 127.0.0.2 on the same port. Two clients call it once before and twice after
the move: a plain channel and a `MemberChannel`. Prints one JSON object: each client's
outcomes, in call order.

    python -m tests.transport.member_moves CERTS_DIR HOSTS_FILE
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

from mutualmind.errors import MutualMindError
from mutualmind.transport import (
    MemberChannel,
    RunningServer,
    build_server,
    call,
    channel_credentials,
    open_channel,
    server_credentials,
)
from proto import admin_pb2, admin_pb2_grpc
from tests.transport.conftest import ADMIN_SERVICE, RecordingAdmin

MEMBER = "member.mm-test"
CALL_S = 2.0     # each call's deadline; a stale channel stays stuck for up to 30 s


def serve(certs: Path, host: str, port: int) -> RunningServer:
    return build_server(
        [(admin_pb2_grpc.add_AdminServicer_to_server, RecordingAdmin())],
        address=f"{host}:{port}",
        credentials=server_credentials(certs, "coordinator", require_client_cert=True),
        service_names=[ADMIN_SERVICE], max_workers=2)


def outcome(call_once: Any) -> dict[str, Any]:
    started = time.monotonic()
    try:
        call_once()
        error = ""
    except MutualMindError as err:
        error = str(err)
    return {"ok": not error, "error": error[:200], "seconds": round(time.monotonic() - started, 2)}


def main(certs: Path, hosts: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    hosts.write_text(f"127.0.0.1 localhost\n127.0.0.1 {MEMBER}\n", encoding="utf-8")
    server = serve(certs, "127.0.0.1", port)
    credentials = channel_credentials(certs, "admin")
    address = f"{MEMBER}:{port}"
    plain = admin_pb2_grpc.AdminStub(open_channel(address, credentials, server_name="coordinator"))
    member = MemberChannel(address, credentials, admin_pb2_grpc.AdminStub, server_name="coordinator")
    request = admin_pb2.ListNodesRequest()
    clients = {
        "plain": lambda: call(plain, "ListNodes", request, timeout=CALL_S, wait_for_ready=True),
        "member": lambda: member.call("ListNodes", request, timeout=CALL_S, wait_for_ready=True),
    }
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in clients}
    for name, call_once in clients.items():       # every channel has resolved the name
        results[name].append(outcome(call_once))

    server.stop(0).wait()                         # the member restarts at a new address
    hosts.write_text(f"127.0.0.1 localhost\n127.0.0.2 {MEMBER}\n", encoding="utf-8")
    server = serve(certs, "127.0.0.2", port)
    try:
        for _ in range(2):
            for name, call_once in clients.items():
                results[name].append(outcome(call_once))
    finally:
        server.stop(0).wait()
    print(json.dumps({"results": results, "renewals": member.renewals}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
