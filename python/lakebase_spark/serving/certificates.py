"""Throwaway self-signed TLS certificates: the broker's (pinned by fingerprint) and the emulator's."""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SelfSignedCertificate", "self_signed_certificate"]


@dataclass(frozen=True)
class SelfSignedCertificate:
    """PEM certificate, its private key (never shown in repr) and the certificate's SHA-256 fingerprint."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    #: Lower-case hex SHA-256 of the DER certificate: what a client pins.
    fingerprint: str

    def write(self, cert_path: Path, key_path: Path) -> None:
        """Write both files; the key is created 0600 (servers refuse keys others can read)."""
        cert_path.write_bytes(self.cert_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as key_file:
            key_file.write(self.key_pem)


def self_signed_certificate(
    hosts: Sequence[str], *, common_name: str, valid_days: int = 30
) -> SelfSignedCertificate:
    """A certificate for ``hosts`` (DNS names or IP addresses, as subject alternative names).

    It is its own CA (basicConstraints CA:TRUE, keyCertSign), so a client can also trust it as a root
    (``sslrootcert`` with ``sslmode=verify-full``). P-256 keys generate in microseconds, where RSA would add
    start-up time, and every TLS 1.2+ client supports them.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate small clock skew
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
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
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
    )
