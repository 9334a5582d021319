"""Client certificates for worker agents when the control plane requires them (mTLS).

gRPC's Python server either requires a client certificate on every connection of a port
or asks for none, and clients and agents share port 50051. With
``HODEI_TLS_CLIENT_CA_FILE`` set, agents need certificates too, and the operator's client
CA is not something the control plane can sign with. So the control plane keeps a CA of
its own for its workers (created once, kept in the store like the instance id) and
issues each worker a certificate for its worker id. Its connections pass the TLS layer;
what they may do is still decided by the worker's token and its pod's address, and a
worker certificate is refused on the jobs API (:func:`is_worker_certificate`), so one
read from a pod's spec gives no access a client certificate would.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hodei.providers.base import AgentCertificate

META_KEY = "worker-ca"
_NAME = "Hodei worker CA"
_CA_LIFETIME = datetime.timedelta(days=3650)
# A worker's certificate only has to outlive its job; a year covers any timeout.
_LEAF_LIFETIME = datetime.timedelta(days=366)
_BACKDATE = datetime.timedelta(minutes=5)  # clocks of hosts differ a little


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class WorkerCa:
    """The control plane's CA for worker certificates."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls) -> WorkerCa:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _NAME)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def to_pem(self) -> str:
        """Certificate then key, PEM: what the store keeps."""
        return (self.cert.public_bytes(serialization.Encoding.PEM) + _pem_key(self.key)).decode()

    @classmethod
    def from_pem(cls, text: str) -> WorkerCa:
        data = text.encode()
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the stored worker CA key is not an EC key")
        return cls(key, x509.load_pem_x509_certificate(data))

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, worker_id: str) -> AgentCertificate:
        """A client certificate (CN = ``worker_id``) and its key, PEM."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, worker_id)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _LEAF_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return AgentCertificate(
            cert.public_bytes(serialization.Encoding.PEM).decode(), _pem_key(key).decode()
        )

    def is_worker_certificate(self, pem: bytes) -> bool:
        """Whether ``pem`` (a peer's certificate) was issued by this CA."""
        try:
            cert = x509.load_pem_x509_certificate(pem)
            cert.verify_directly_issued_by(self.cert)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True
