"""The server side of TLS: one certificate for gRPC and HTTP, re-read when its files change.

Certificates are rotated by replacing the files (a mounted Secret, cert-manager, certbot);
the control plane must pick the new ones up without a restart and without dropping the
connections it has. Both servers consult :class:`CertificateFiles` when a connection
arrives, before its handshake: gRPC through its certificate-configuration fetcher, HTTP
through the SSL context's SNI callback (called for every ClientHello, with or without a
server name), which swaps in a context built from the new files. Connections already
open keep the certificate they were made with. A half-written or broken new pair is
ignored (the previous one stays in use) until a complete pair appears.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import grpc

from hodei.config.settings import ServerTls

log = logging.getLogger(__name__)


class TlsError(RuntimeError):
    """The certificate, key or client CA cannot be used; the message names the variable."""


@dataclass(frozen=True)
class Material:
    """One consistent set of PEM bytes."""

    cert_chain: bytes
    key: bytes
    client_ca: bytes | None


_Signature = tuple[tuple[int, int, int], ...]


def _stat(path: str) -> tuple[int, int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _read(variable: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read {variable}={path}: {exc.strerror or exc}") from None


def _check(tls: ServerTls, material: Material) -> None:
    """Load the material into an SSL context: a key that doesn't match, or a file that
    isn't PEM, is reported now rather than at the first handshake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (ssl.SSLError, OSError) as exc:
        raise TlsError(
            f"HODEI_TLS_CERT_FILE={tls.cert_file} and HODEI_TLS_KEY_FILE={tls.key_file} are not "
            f"a PEM certificate and its private key: {exc}"
        ) from None
    if material.client_ca is not None:
        try:
            context.load_verify_locations(cadata=material.client_ca.decode("ascii", "replace"))
        except (ssl.SSLError, ValueError) as exc:
            raise TlsError(
                f"HODEI_TLS_CLIENT_CA_FILE={tls.client_ca_file} holds no PEM certificate: {exc}"
            ) from None


class CertificateFiles:
    """The files of a :class:`ServerTls`, loaded now and re-loaded after they change.

    Thread-safe: gRPC calls :meth:`current` from its own threads.
    """

    def __init__(self, tls: ServerTls) -> None:
        self.tls = tls
        self._extra_client_ca = b""
        self._lock = threading.Lock()
        self._signature = self._stat()
        self.material = self._load()  # raises TlsError: startup stops with the reason
        self.generation = 0

    def _stat(self) -> _Signature:
        paths = [self.tls.cert_file, self.tls.key_file]
        if self.tls.client_ca_file:
            paths.append(self.tls.client_ca_file)
        return tuple(_stat(p) for p in paths)

    def _load(self) -> Material:
        tls = self.tls
        material = Material(
            cert_chain=_read("HODEI_TLS_CERT_FILE", tls.cert_file),
            key=_read("HODEI_TLS_KEY_FILE", tls.key_file),
            client_ca=(
                _read("HODEI_TLS_CLIENT_CA_FILE", tls.client_ca_file)
                if tls.client_ca_file
                else None
            ),
        )
        _check(tls, material)
        if material.client_ca is not None and self._extra_client_ca:
            material = replace(
                material, client_ca=material.client_ca.rstrip() + b"\n" + self._extra_client_ca
            )
        return material

    def trust_clients_of(self, ca_pem: bytes) -> None:
        """Also accept client certificates issued by ``ca_pem`` (the workers' CA, see
        :mod:`hodei.server.worker_ca`); only with a client CA (mTLS)."""
        with self._lock:
            self._extra_client_ca = ca_pem
            self.material = self._load()

    def refresh(self) -> bool:
        """Re-read the files if they changed since the last look; True when new material
        is in use. A broken new pair is logged and skipped."""
        signature = self._stat()
        with self._lock:
            if signature == self._signature:
                return False
            try:
                material = self._load()
            except TlsError as exc:
                log.warning("keeping the current certificate: %s", exc)
                return False
            self._signature = signature
            self.material = material
            self.generation += 1
            log.info("loaded a new certificate from %s", self.tls.cert_file)
            return True


def _grpc_config(material: Material) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration(
        [(material.key, material.cert_chain)], root_certificates=material.client_ca
    )


def grpc_credentials(files: CertificateFiles) -> grpc.ServerCredentials:
    """Server credentials that re-read ``files`` before each new connection's handshake.

    With a client CA, every connection must present a certificate that chains to it:
    gRPC's Python API can require client certificates or not ask for them, nothing between.
    """

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        return _grpc_config(files.material) if files.refresh() else None

    return grpc.dynamic_ssl_server_credentials(
        _grpc_config(files.material),
        fetch,
        require_client_authentication=files.tls.client_ca_file is not None,
    )


def _http_context(tls: ServerTls) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.client_ca_file:
        # Asked for, not required: the console and /api/v1 let in a client certificate
        # signed by the operator's CA (only that CA: a worker's certificate fails here),
        # while Prometheus and the probes connect without one.
        context.load_verify_locations(cafile=tls.client_ca_file)
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


class _HttpContexts:
    """The newest HTTP context; the SNI callback of every context hands it out."""

    def __init__(self, files: CertificateFiles) -> None:
        self._files = files
        self._generation = files.generation
        self.current = self._build()

    def _build(self) -> ssl.SSLContext:
        context = _http_context(self._files.tls)
        context.sni_callback = self._on_hello
        return context

    def _on_hello(self, connection: ssl.SSLObject, server_name: str | None, _: object) -> None:
        self._files.refresh()
        if self._generation != self._files.generation:
            try:
                self.current = self._build()
            except (ssl.SSLError, OSError) as exc:  # replaced again between the two reads
                log.warning("keeping the current HTTP certificate: %s", exc)
                return
            self._generation = self._files.generation
        connection.context = self.current


def http_ssl_context(files: CertificateFiles) -> ssl.SSLContext:
    """An SSL context for the HTTP server that follows ``files`` (see the module docstring).

    With ``HODEI_TLS_CLIENT_CA_FILE`` a client certificate is asked for but not required:
    ``/metrics`` and the probes are read by Prometheus and the kubelet, which are let in by
    network policy, not by certificate; the console's API checks it (``Gate``).
    """
    return _HttpContexts(files).current
