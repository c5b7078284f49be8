"""gRPC TLS credentials read from a cluster folder made by `mutualmind cluster certs`.

Two kinds of listening port (see DESIGN.md trust model): a member's *cluster port*
requires a client certificate signed by the cluster CA (mutual TLS); a *public port*
(Market API, ShareIntake) is server-side TLS only, because providers are outside the
cluster and authenticate inside their messages with Ed25519 signatures. The public
port does not even request a client certificate, so a role can only ever be read from
a certificate the cluster CA vouched for.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from mutualmind.transport.pki import read_member_file

CA_FILE = "ca.pem"


def server_credentials(certs_dir: Path, name: str, *,
                       require_client_cert: bool) -> grpc.ServerCredentials:
    """TLS credentials for member `name`'s server; mTLS when `require_client_cert`."""
    certs_dir = Path(certs_dir)
    pair = [(read_member_file(certs_dir, f"{name}.key"),
             read_member_file(certs_dir, f"{name}.pem"))]
    if not require_client_cert:
        return grpc.ssl_server_credentials(pair)
    return grpc.ssl_server_credentials(
        pair, root_certificates=read_member_file(certs_dir, CA_FILE),
        require_client_auth=True)


def channel_credentials(certs_dir: Path, name: str | None) -> grpc.ChannelCredentials:
    """Client credentials that trust only the cluster CA.

    `name` picks the member certificate to present (needed on cluster ports); None
    presents none, as a provider does on a public port (it then needs only `ca.pem`).
    """
    certs_dir = Path(certs_dir)
    ca_pem = read_member_file(certs_dir, CA_FILE)
    if name is None:
        return grpc.ssl_channel_credentials(root_certificates=ca_pem)
    return grpc.ssl_channel_credentials(
        root_certificates=ca_pem,
        private_key=read_member_file(certs_dir, f"{name}.key"),
        certificate_chain=read_member_file(certs_dir, f"{name}.pem"))
