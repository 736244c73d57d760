"""TLS identities: ECDSA P-256 self-signed certificates naming the node, and fingerprints."""

from __future__ import annotations

import datetime as dt
import hashlib
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from node.config import load_config
from node.crypto.tls import (
    auditor_slug,
    dns_name,
    fingerprint,
    generate_auditor_identity,
    generate_tls_identity,
    node_id_from_certificate,
)
from node.errors import ValidationError
from node.ids import parse_node_id
from node.services.setup import init_node

NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
NODE = parse_node_id("id-64-02")
IDENTITY = generate_tls_identity(NODE, NOW)
CERT = x509.load_pem_x509_certificate(IDENTITY.cert_pem)


def _san() -> x509.SubjectAlternativeName:
    return CERT.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def _self_signed(san: list[x509.GeneralName] | None) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
    )
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_certificate_names_the_node_by_uri_and_dns() -> None:
    """The cert has exactly one URI SAN lapor-node://<id> and one DNS SAN <id>.lapor-node."""
    san = _san()
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["lapor-node://id-64-02"]
    assert san.get_values_for_type(x509.DNSName) == ["id-64-02.lapor-node"]
    assert dns_name(NODE) == "id-64-02.lapor-node"


def test_certificate_has_no_other_names() -> None:
    """The cert's SAN holds nothing but the URI and DNS names of the node."""
    assert len(list(_san())) == 2


def test_certificate_is_self_signed_ecdsa_p256() -> None:
    """The key is ECDSA P-256, the cert is self-signed with ECDSA-SHA256 and matches the key."""
    public = CERT.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert isinstance(public.curve, ec.SECP256R1)
    assert isinstance(CERT.signature_hash_algorithm, hashes.SHA256)
    assert CERT.issuer == CERT.subject
    CERT.verify_directly_issued_by(CERT)
    key = serialization.load_pem_private_key(IDENTITY.key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key().public_numbers() == public.public_numbers()


def test_certificate_validity_starts_before_now() -> None:
    """The cert is valid from shortly before `now` for the requested number of days."""
    assert CERT.not_valid_before_utc <= NOW
    assert CERT.not_valid_after_utc == NOW + dt.timedelta(days=825)
    short = x509.load_pem_x509_certificate(generate_tls_identity(NODE, NOW, 7).cert_pem)
    assert short.not_valid_after_utc == NOW + dt.timedelta(days=7)


def test_node_id_from_certificate_reads_the_uri_san() -> None:
    """node_id_from_certificate returns the id named by the lapor-node:// URI."""
    assert node_id_from_certificate(IDENTITY.cert_pem) == "id-64-02"


@pytest.mark.parametrize(
    ("san", "match"),
    [
        pytest.param(None, "no subjectAltName", id="no-san"),
        pytest.param([x509.DNSName("id-64.lapor-node")], "found 0", id="dns-only"),
        pytest.param(
            [x509.UniformResourceIdentifier("https://id-64.example")], "found 0", id="other-uri"
        ),
        pytest.param(
            [
                x509.UniformResourceIdentifier("lapor-node://id-64"),
                x509.UniformResourceIdentifier("lapor-node://id-65"),
            ],
            "found 2",
            id="two-node-uris",
        ),
        pytest.param(
            [x509.UniformResourceIdentifier("lapor-node://ID-64")],
            "invalid node id",
            id="bad-node-id",
        ),
    ],
)
def test_node_id_from_certificate_refusals(san: list[x509.GeneralName] | None, match: str) -> None:
    """A cert without exactly one valid lapor-node:// URI SAN raises ValidationError."""
    with pytest.raises(ValidationError, match=match):
        node_id_from_certificate(_self_signed(san))


def test_fingerprint_is_sha256_of_der() -> None:
    """fingerprint is SHA-256 over the certificate's DER (as ssl decodes the PEM)."""
    der = ssl.PEM_cert_to_DER_cert(IDENTITY.cert_pem.decode())
    assert fingerprint(IDENTITY.cert_pem) == hashlib.sha256(der).digest()


def test_identities_differ() -> None:
    """Each generated identity has its own key and so its own fingerprint."""
    other = generate_tls_identity(NODE, NOW)
    assert other.key_pem != IDENTITY.key_pem
    assert fingerprint(other.cert_pem) != fingerprint(IDENTITY.cert_pem)


@pytest.mark.parametrize(
    "pem",
    [b"", b"not a certificate", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"],
    ids=["empty", "text", "bad-body"],
)
def test_non_certificates_raise_validation_error(pem: bytes) -> None:
    """fingerprint and node_id_from_certificate refuse non-PEM input with ValidationError."""
    with pytest.raises(ValidationError):
        fingerprint(pem)
    with pytest.raises(ValidationError):
        node_id_from_certificate(pem)


def test_init_writes_private_keys_0600_and_never_replaces_them(tmp_path: Path) -> None:
    """init_node writes the signing and TLS keys 0600; re-running it keeps every key file."""
    config_path = init_node(tmp_path / "node", "id-64", "Provinsi Kalimantan Timur")
    config = load_config(config_path)
    files = (config.signing_key, config.tls_key, config.tls_cert)
    for path in (config.signing_key, config.tls_key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = [p.read_bytes() for p in files]
    init_node(None, None, None, config_path=config_path)
    assert [p.read_bytes() for p in files] == before
    assert node_id_from_certificate(config.tls_cert.read_bytes()) == "id-64"


# Auditors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Ombudsman RI", "ombudsman-ri"),
        ("  Inspektorat Jenderal -- Kemendagri ", "inspektorat-jenderal-kemendagri"),
        ("BPK (Perwakilan Kaltim)", "bpk-perwakilan-kaltim"),
        ("x" * 80, "x" * 63),
    ],
    ids=["spaces", "runs-and-edges", "punctuation", "too-long"],
)
def test_auditor_slug(name: str, slug: str) -> None:
    """An auditor's name becomes a lowercase slug of at most 63 letters, digits and dashes."""
    assert auditor_slug(name) == slug


def test_auditor_slug_needs_a_letter_or_digit() -> None:
    """A name with no letter or digit has no slug: ValidationError."""
    with pytest.raises(ValidationError, match="at least one letter or digit"):
        auditor_slug(" -- ")


def test_auditor_certificate_is_named_apart_from_nodes() -> None:
    """An auditor's certificate is self-signed ECDSA P-256 with only the URI SAN
    lapor-node-auditor://<slug>, and node_id_from_certificate refuses it."""
    identity = generate_auditor_identity("Ombudsman RI", NOW)
    cert = x509.load_pem_x509_certificate(identity.cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(san) == [x509.UniformResourceIdentifier("lapor-node-auditor://ombudsman-ri")]
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    cert.verify_directly_issued_by(cert)
    assert cert.not_valid_before_utc <= NOW
    with pytest.raises(ValidationError, match="found 0"):
        node_id_from_certificate(identity.cert_pem)
