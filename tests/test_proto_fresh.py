"""The committed generated protobuf code matches the .proto sources."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_code_is_fresh() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--check"],
        capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr


def test_generated_modules_import() -> None:
    from proto import admin_pb2_grpc, market_pb2_grpc, node_pb2, node_pb2_grpc

    assert node_pb2.ShareChunk.DESCRIPTOR.full_name == "mutualmind.v1.ShareChunk"
    assert hasattr(node_pb2_grpc, "ShareIntakeServicer")
    assert hasattr(market_pb2_grpc, "MarketStub")
    assert hasattr(admin_pb2_grpc, "AdminStub")
