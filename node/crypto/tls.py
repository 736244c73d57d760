"""TLS identity: an ECDSA P-256 key and a self-signed certificate per node.

The certificate carries two SANs: the URI `lapor-node://<node_id>` (the identity) and the
DNS name `<node_id>.lapor-node` (what a dialer names with ssl_target_name_override).
Peers pin the certificate itself; its SHA-256 over DER is the fingerprint operators compare.

Validity: a certificate is valid from five minutes before the moment it is made (its
`issued_at` is that moment) for `CERTIFICATE_DAYS` days; `valid_until` reads its end. TLS
libraries check validity against the machine's real clock at each handshake.

Auditors get the same kind of key and certificate, with the URI SAN
`lapor-node-auditor://<slug of their name>` and no DNS name: they only ever dial, and a
certificate can never be mistaken for a node's (node_id_from_certificate refuses it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from node.errors import ValidationError
from node.ids import NodeId, parse_node_id

__all__ = [
    "CERTIFICATE_DAYS",
    "TlsIdentity",
    "auditor_slug",
    "dns_name",
    "fingerprint",
    "generate_auditor_identity",
    "generate_tls_identity",
    "issued_at",
    "node_id_from_certificate",
    "valid_until",
]

URI_SCHEME = "lapor-node://"
AUDITOR_URI_SCHEME = "lapor-node-auditor://"
DNS_SUFFIX = ".lapor-node"
_SLUG_MAX = 63
CERTIFICATE_DAYS = 825
"""How long a certificate made by `init` or `keys rotate` is valid (the CA/Browser Forum's
former ceiling; `keys rotate` makes a new one)."""
_BACKDATE = dt.timedelta(minutes=5)


class TlsIdentity:
    """A node's TLS private key and certificate, both PEM."""

    def __init__(self, key_pem: bytes, cert_pem: bytes) -> None:
        self.key_pem = key_pem
        self.cert_pem = cert_pem


def dns_name(node_id: str) -> str:
    return f"{node_id}{DNS_SUFFIX}"


def _self_signed(
    common_name: str, sans: list[x509.GeneralName], now: dt.datetime, valid_days: int
) -> TlsIdentity:
    """A fresh ECDSA P-256 key and a self-signed certificate (usable as its own trust
    root) with these SANs, valid from five minutes before `now`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return TlsIdentity(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        cert.public_bytes(serialization.Encoding.PEM),
    )


def generate_tls_identity(
    node_id: NodeId, now: dt.datetime, valid_days: int = CERTIFICATE_DAYS
) -> TlsIdentity:
    """A fresh key and a self-signed certificate for `node_id`, valid from `now`."""
    sans: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(f"{URI_SCHEME}{node_id}"),
        x509.DNSName(dns_name(node_id)),
    ]
    return _self_signed(dns_name(node_id), sans, now, valid_days)


def auditor_slug(name: str) -> str:
    """The auditor's name as a slug for its SAN: `Ombudsman RI` -> `ombudsman-ri`."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:_SLUG_MAX].rstrip("-")
    if not slug:
        raise ValidationError(
            f"expected an auditor name with at least one letter or digit, found {name!r}"
        )
    return slug


def generate_auditor_identity(
    name: str, now: dt.datetime, valid_days: int = CERTIFICATE_DAYS
) -> TlsIdentity:
    """A fresh key and a self-signed certificate for the auditor `name`, valid from `now`.

    Built like a node's (ECDSA P-256, self-signed, usable as its own trust root) but named
    by the URI SAN `lapor-node-auditor://<slug>`, with no DNS name.
    """
    slug = auditor_slug(name)
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(f"{AUDITOR_URI_SCHEME}{slug}")]
    return _self_signed(slug, sans, now, valid_days)


def _load(cert_pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(cert_pem)
    except ValueError as e:
        raise ValidationError("not a PEM X.509 certificate") from e


def fingerprint(cert_pem: bytes) -> bytes:
    """SHA-256 of the certificate's DER encoding."""
    return hashlib.sha256(_load(cert_pem).public_bytes(serialization.Encoding.DER)).digest()


def valid_until(cert_pem: bytes) -> dt.datetime:
    """The end of the certificate's validity (notAfter), timezone-aware UTC."""
    return _load(cert_pem).not_valid_after_utc


def issued_at(cert_pem: bytes) -> dt.datetime:
    """When a certificate made here was made: its notBefore plus the five minutes it is
    backdated by (for a certificate made elsewhere, five minutes after its notBefore)."""
    return _load(cert_pem).not_valid_before_utc + _BACKDATE


def node_id_from_certificate(cert_pem: bytes) -> NodeId:
    """The node id named by the certificate's `lapor-node://` URI SAN (exactly one)."""
    cert = _load(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as e:
        raise ValidationError("certificate has no subjectAltName") from e
    uris = [
        u
        for u in san.get_values_for_type(x509.UniformResourceIdentifier)
        if u.startswith(URI_SCHEME)
    ]
    if len(uris) != 1:
        raise ValidationError(
            f"certificate must name exactly one {URI_SCHEME} URI, found {len(uris)}"
        )
    return parse_node_id(uris[0].removeprefix(URI_SCHEME))
