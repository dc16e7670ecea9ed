"""A throwaway self-signed TLS certificate for the emulator's Postgres server."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["SelfSignedCertificate", "self_signed_localhost"]


@dataclass(frozen=True)
class SelfSignedCertificate:
    """PEM certificate and its private key (never shown in repr)."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)


def self_signed_localhost(valid_days: int = 30) -> SelfSignedCertificate:
    """A certificate for CN ``localhost``, SAN ``localhost`` and ``127.0.0.1``.

    It is its own CA (basicConstraints CA:TRUE, keyCertSign) so clients can pin it as ``sslrootcert`` and use
    ``sslmode=verify-full`` against ``127.0.0.1``; ``sslmode=require`` needs nothing. P-256 keys generate in
    microseconds, where RSA would add noticeable start-up time, and every TLS 1.2+ client supports them.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate small clock skew
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return SelfSignedCertificate(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
