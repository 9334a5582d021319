"""The client side of TLS, shared by the CLI and the worker agent.

Both open gRPC channels to the control plane the same way: plaintext, or TLS verified
against ``HODEI_TLS_CA_FILE`` (the system's roots when unset), presenting a client
certificate when mTLS asks for one. When a connection fails, gRPC's own text ("Socket
closed", "CERTIFICATE_VERIFY_FAILED") does not tell a person what to change;
:func:`explain` turns the common TLS mismatches into a sentence naming the variable.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from pathlib import Path

import grpc
import grpc.aio

from hodei.config.settings import ClientTls

__all__ = ["TlsFileError", "channel_credentials", "explain", "open_channel", "speaks_tls"]

_PROBE_TIMEOUT = 2.0


class TlsFileError(ValueError):
    """A certificate or key file named by a variable cannot be read."""


def _read(variable: str, path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsFileError(f"cannot read {variable}={path}: {exc.strerror or exc}") from None


def channel_credentials(tls: ClientTls) -> grpc.ChannelCredentials:
    """gRPC credentials for ``tls``; raises :class:`TlsFileError` naming the variable."""
    key: bytes | None
    chain: bytes | None
    if tls.cert_pem is not None and tls.key_pem is not None:
        key, chain = tls.key_pem.encode(), tls.cert_pem.encode()
    else:
        key = _read("HODEI_TLS_KEY_FILE", tls.key_file)
        chain = _read("HODEI_TLS_CERT_FILE", tls.cert_file)
    return grpc.ssl_channel_credentials(
        root_certificates=_read("HODEI_TLS_CA_FILE", tls.ca_file),
        private_key=key,
        certificate_chain=chain,
    )


def open_channel(
    address: str, tls: ClientTls | None, options: Sequence[tuple[str, object]] = ()
) -> grpc.aio.Channel:
    """A channel to ``address`` (HOST:PORT): plaintext when ``tls`` is None."""
    if tls is None:
        return grpc.aio.insecure_channel(address, options=list(options))
    return grpc.aio.secure_channel(address, channel_credentials(tls), options=list(options))


async def speaks_tls(address: str) -> bool:
    """Whether a TLS handshake with ``address`` (HOST:PORT) completes (certificate not checked).

    Used only to explain a failed plaintext connection; never to decide whom to trust.
    """
    host, _, port = address.rpartition(":")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host.strip("[]"), int(port), ssl=context), _PROBE_TIMEOUT
        )
    except (OSError, TimeoutError, ValueError):
        return False
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    return True


def explain(details: str, tls: ClientTls | None, *, server_speaks_tls: bool = False) -> str | None:
    """A sentence for a TLS mismatch behind gRPC's failure ``details``, or None.

    ``server_speaks_tls``: a plaintext connection failed and a TLS handshake to the same
    address succeeded (see :func:`speaks_tls`).
    """
    if tls is None:
        if server_speaks_tls:
            return (
                "the control plane speaks TLS but this client connected in plaintext: set "
                "HODEI_TLS_CA_FILE to the CA of its certificate (or HODEI_TLS=1 to verify it "
                "with the system's roots)"
            )
        return None
    ca = f"HODEI_TLS_CA_FILE={tls.ca_file}" if tls.ca_file else "the system's roots"
    if "CERTIFICATE_VERIFY_FAILED" in details:
        return (
            f"the control plane's certificate is not signed by a CA this client trusts ({ca}); "
            "set HODEI_TLS_CA_FILE to the CA that signed the server's certificate"
        )
    if "WRONG_VERSION_NUMBER" in details or "PACKET_LENGTH_TOO_LONG" in details:
        return (
            "the control plane does not speak TLS but this client does (HODEI_TLS / "
            "HODEI_TLS_CA_FILE is set): unset them, or give the server HODEI_TLS_CERT_FILE "
            "and HODEI_TLS_KEY_FILE"
        )
    if "CERTIFICATE_REQUIRED" in details or "HANDSHAKE_FAILURE" in details:
        mine = "none was sent" if tls.cert_file is None else f"HODEI_TLS_CERT_FILE={tls.cert_file}"
        return (
            "the control plane requires a client certificate signed by its "
            f"HODEI_TLS_CLIENT_CA_FILE ({mine}); set HODEI_TLS_CERT_FILE and HODEI_TLS_KEY_FILE"
        )
    if "Socket closed" in details or "Connection reset" in details:
        # TLS 1.3 servers check the client's certificate after the handshake looks done
        # to the client, which then only sees the connection close.
        mine = (
            "this client sent none"
            if tls.cert_file is None
            else f"HODEI_TLS_CERT_FILE={tls.cert_file} may not be signed by it"
        )
        return (
            "the control plane closed the TLS connection: it may require a client certificate "
            f"signed by its HODEI_TLS_CLIENT_CA_FILE ({mine}); set HODEI_TLS_CERT_FILE and "
            f"HODEI_TLS_KEY_FILE. gRPC said: {details}"
        )
    if "certificate" in details.lower() and "handshake" in details.lower():
        return f"the TLS handshake with the control plane failed ({ca}): {details}"
    return None
