#!/usr/bin/env python3
"""Regenerate the committed protobuf/gRPC modules in proto/ from proto/*.proto.

The generated modules are committed (so a user needs no protoc) and live next to their
sources in the `proto` package. `--check` compiles into a temporary folder and exits 1
when the committed files differ: tests/test_proto_fresh.py runs it.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2_grpc.py", "_pb2.pyi")


def compile_into(out_dir: Path) -> list[Path]:
    """Compile every proto/*.proto into out_dir/proto/; return the generated files."""
    import grpc_tools
    from grpc_tools import protoc  # dev dependency, imported only here

    sources = sorted(PROTO_DIR.glob("*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *[str(s.relative_to(ROOT)) for s in sources],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted((out_dir / "proto").iterdir())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed code is stale")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        generated = compile_into(Path(tmp))
        names = {p.name for p in generated}
        committed = {p.name for p in PROTO_DIR.iterdir() if p.name.endswith(GENERATED_SUFFIXES)}
        if args.check:
            stale = sorted(
                n for n in names | committed
                if n not in names or n not in committed
                or not filecmp.cmp(Path(tmp) / "proto" / n, PROTO_DIR / n, shallow=False)
            )
            if stale:
                print("stale generated protobuf code: " + ", ".join(stale)
                      + " (run: python scripts/gen_proto.py)", file=sys.stderr)
                return 1
            print(f"generated protobuf code is fresh ({len(names)} files)")
            return 0
        for name in committed - names:
            (PROTO_DIR / name).unlink()
        for path in generated:
            shutil.copyfile(path, PROTO_DIR / path.name)
        print(f"wrote {len(generated)} files to {PROTO_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
