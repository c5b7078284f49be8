"""Who is calling: the role and name from the verified client certificate.

Servicers on a cluster port authorise by role (only `admin` may mint, only the
`coordinator` may start jobs). gRPC has already verified the certificate chain against
the cluster CA before any handler runs, so the role in the subject's OU can be trusted.
On a public port no certificate is requested and these return None.
"""

from __future__ import annotations

import grpc
from cryptography import x509
from cryptography.x509.oid import NameOID

from mutualmind.errors import PermissionDenied
from mutualmind.transport.pki import role_of_certificate

_PEM_KEY = "x509_pem_cert"


def peer_certificate(context: grpc.ServicerContext) -> x509.Certificate | None:
    """The caller's verified certificate, or None when it presented none."""
    pems = context.auth_context().get(_PEM_KEY)
    if not pems:
        return None
    try:
        return x509.load_pem_x509_certificate(pems[0])
    except ValueError:
        return None


def peer_role(context: grpc.ServicerContext) -> str | None:
    """The caller's role (coordinator, node, dealer, admin) or None."""
    cert = peer_certificate(context)
    return role_of_certificate(cert) if cert is not None else None


def peer_name(context: grpc.ServicerContext) -> str | None:
    """The caller's member name (certificate CN, e.g. "node1") or None."""
    cert = peer_certificate(context)
    if cert is None:
        return None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if len(names) == 1 else None
    return value if isinstance(value, str) else None


def require_role(context: grpc.ServicerContext, *roles: str) -> str:
    """The caller's role if it is one of `roles`; PermissionDenied otherwise."""
    role = peer_role(context)
    if role not in roles:
        raise PermissionDenied(
            f"this call needs a cluster certificate with role {' or '.join(roles)}; the "
            f"caller presented {'none' if role is None else 'role ' + role}")
    return role
