"""The type of the root `cluster_certs` fixture (tests/conftest.py), for annotations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mutualmind.transport.pki import ClusterManifest


@dataclass(frozen=True)
class ClusterCerts:
    """A cluster folder and the manifest `create_cluster` returned for it."""

    folder: Path
    manifest: ClusterManifest

    @property
    def node_public_keys(self) -> list[bytes]:
        """Each node's Ed25519 signing public key, by node index."""
        return [m.signing_public_key or b"" for m in self.manifest.nodes]


ClusterCertsFactory = Callable[[int], ClusterCerts]
