"""The control plane's CA for worker certificates (mTLS), without servers."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hodei.server.worker_ca import WorkerCa
from tests.fixtures.certs import TlsFiles


def test_a_stored_ca_issues_worker_certificates_it_recognises(tls_files: TlsFiles) -> None:
    ca = WorkerCa.from_pem(WorkerCa.create().to_pem())  # as kept in the store
    issued = ca.issue("w-123")
    cert = x509.load_pem_x509_certificate(issued.cert_pem.encode())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "w-123"
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert ca.is_worker_certificate(issued.cert_pem.encode())
    # Not ours: another control plane's worker CA, the operator's client CA, garbage.
    assert not WorkerCa.create().is_worker_certificate(issued.cert_pem.encode())
    assert not ca.is_worker_certificate(Path(tls_files.client_cert).read_bytes())
    assert not ca.is_worker_certificate(b"not a certificate")
