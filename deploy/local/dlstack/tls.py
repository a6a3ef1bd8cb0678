"""A test certificate authority for the local stack, made with `cryptography`: the CA and a
server certificate for 127.0.0.1/localhost, used by Kafka's SASL_SSL listener and by the
tests. Development material only: it lives under .stack/tls (ignored by git)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from .common import STACK

TLS = STACK / "tls"
CA = TLS / "ca.pem"
SERVER = TLS / "server.pem"  # private key (PKCS#8, unencrypted) followed by the certificate
SERVER_CERT = TLS / "server.crt"
SERVER_KEY = TLS / "server.key"

# the SCRAM user the local broker knows (development only)
SCRAM_USER = "driftline"
SCRAM_PASSWORD = "driftline-dev-scram"


def ensure() -> Path:
    """Create the CA and the server certificate once; returns the directory."""
    if CA.exists() and SERVER.exists():
        return TLS
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    TLS.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Driftline local test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pem_cert = cert.public_bytes(serialization.Encoding.PEM)
    for path, data in (
        (SERVER_KEY, pem_key),
        (SERVER_CERT, pem_cert),
        (SERVER, pem_key + pem_cert),
        (
            TLS / "ca.key",
            ca_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        ),
    ):
        path.write_bytes(data)
        path.chmod(0o600)
    CA.write_bytes(ca.public_bytes(serialization.Encoding.PEM))  # written last: the marker
    return TLS
