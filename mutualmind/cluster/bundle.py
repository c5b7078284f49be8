"""Per-member certificate bundles: each member gets only its own keys.

A cluster folder (`mutualmind cluster certs`) holds every secret of the cluster: the
CA key and every member's TLS and signing keys. A member needs only the CA certificate,
the manifest (public keys of the nodes) and its own certificate and keys; giving a node
the others' signing keys would let it forge their attestations, and giving anyone the CA
key lets them mint members. `write_bundle` copies exactly what one member needs into a
folder of its own (keys 0600, written atomically), which is what each container of the
compose deployment mounts. Knows nothing of gRPC.
"""

from __future__ import annotations

from pathlib import Path

from mutualmind.errors import InvalidInput
from mutualmind.transport.atomic_file import write_atomic
from mutualmind.transport.pki import (
    KEY_MODE,
    MANIFEST_NAME,
    load_manifest,
    read_member_file,
)

PUBLIC_FILES = ("ca.pem", MANIFEST_NAME)


def bundle_files(certs_dir: Path, name: str) -> dict[str, int]:
    """File name -> mode of what member `name` needs (NotFound for an unknown member)."""
    member = load_manifest(certs_dir).member(name)
    files = {f: 0o644 for f in PUBLIC_FILES}
    files[f"{name}.pem"] = 0o644
    files[f"{name}.key"] = KEY_MODE
    if member.role == "node":
        files[f"{name}.signing.key"] = KEY_MODE
    return files


def write_bundle(certs_dir: Path, name: str, out_dir: Path) -> list[str]:
    """Copy member `name`'s files into `out_dir` (created if absent); returns their names.

    Everything is read before anything is written, so a missing file leaves `out_dir`
    as it was. Re-running replaces the files with the current ones (idempotent).
    """
    certs_dir, out_dir = Path(certs_dir), Path(out_dir)
    if out_dir.resolve() == certs_dir.resolve():
        raise InvalidInput(f"the bundle for {name} cannot go into the cluster folder itself; "
                           "choose another --out")
    files = bundle_files(certs_dir, name)
    contents = {f: read_member_file(certs_dir, f) for f in files}
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInput(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir():
        stale = {p.name for p in out_dir.iterdir() if p.name.endswith((".key", ".pem"))}
        if stale - set(files):
            raise InvalidInput(f"{out_dir} also holds {', '.join(sorted(stale - set(files)))}, "
                               f"which member {name} must not have; remove them")
    out_dir.mkdir(parents=True, exist_ok=True)
    for filename, mode in files.items():
        write_atomic(out_dir / filename, contents[filename], mode=mode)
    return sorted(files)
