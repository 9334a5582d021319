"""Who may talk to the control plane: API clients, workers, and where it may listen.

Clients present ``authorization: Bearer <HODEI_API_TOKEN>`` on every JobService call
when the server has a token. Workers present a one-time registration token bound to
their worker id (stored only as its SHA-256 hash, with a short TTL, consumed on first
use), then a resume token for a reconnect after a broken stream (also used once: each
resume hands out the next). Tokens alone are not enough for pods: a pod's spec can be
read by whoever may ``get pods``, so a pod's agent must also connect from the pod's own
IP while the pod is Running, as the provider's watch reports them (:func:`check_origin`).
The decisions are pure functions; the gRPC interceptor is the only I/O here.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import inspect
import ipaddress
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import grpc

from hodei.domain.ids import WorkerId
from hodei.providers.base import Origin
from hodei.store.base import TokenKind, TokenRecord

JOB_SERVICE_PREFIX = "/hodei.v1.JobService/"


class ListenError(RuntimeError):
    """The control plane would expose its API without TLS or authentication, or cannot bind."""


def new_secret() -> str:
    """A fresh unguessable token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def hash_token(secret: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenCheck(enum.Enum):
    OK = "ok"
    UNKNOWN = "unknown"  # no such token (guessed, or from another control plane)
    WRONG_KIND = "wrong kind"
    EXPIRED = "expired"
    USED = "already used"  # a replayed one-time token
    FOREIGN = "bound to another worker"

    @property
    def permission(self) -> bool:
        """True when the caller is authenticated but not allowed (PERMISSION_DENIED)."""
        return self is TokenCheck.FOREIGN


def check_token(
    record: TokenRecord | None, *, worker_id: WorkerId, kind: TokenKind, now: datetime
) -> TokenCheck:
    """Whether ``record`` lets ``worker_id`` register (or resume) at ``now``."""
    if record is None:
        return TokenCheck.UNKNOWN
    if record.kind is not kind:
        return TokenCheck.WRONG_KIND
    if record.worker_id != worker_id:
        return TokenCheck.FOREIGN
    if record.used:
        return TokenCheck.USED
    if record.expires_at is not None and now >= record.expires_at:
        return TokenCheck.EXPIRED
    return TokenCheck.OK


class OriginCheck(enum.Enum):
    OK = "ok"
    NOT_RUNNING = "its pod is not reported Running yet"
    ELSEWHERE = "the connection does not come from its pod's address"


def peer_ip(peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP of a gRPC peer string (``ipv4:10.0.0.5:41234``, ``ipv6:[::1]:41234``), an
    IPv4-mapped IPv6 address as its IPv4 form; None for other transports (unix sockets)."""
    kind, _, rest = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return None
    host = rest.rpartition(":")[0].strip("[]")
    return _ip(host)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def check_origin(origin: Origin, peer: str) -> OriginCheck:
    """Whether a registration arriving from ``peer`` (gRPC's peer string) may speak for a
    worker whose provider reports ``origin``: a bound worker only from its pod's own IP,
    once the pod is Running (see :class:`hodei.providers.base.Origin`)."""
    if not origin.bound:
        return OriginCheck.OK
    if not origin.running or not origin.address:
        return OriginCheck.NOT_RUNNING
    expected = _ip(origin.address)
    if expected is None or peer_ip(peer) != expected:
        return OriginCheck.ELSEWHERE
    return OriginCheck.OK


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (from HOST:PORT) only accepts connections from this machine."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen_address(
    address: str, *, variable: str, tls: bool, authenticated: bool, insecure: bool
) -> None:
    """Refuse to listen on ``address`` (the value of ``variable``) beyond loopback without
    TLS, or, where ``authenticated`` matters (the gRPC API), without authentication,
    unless ``insecure`` (HODEI_INSECURE=1) says so on purpose. Raises :class:`ListenError`."""
    host = address.rpartition(":")[0]
    if insecure or is_loopback_host(host):
        return
    if not tls:
        raise ListenError(
            f"refusing to listen on {variable}={address} without TLS: set HODEI_TLS_CERT_FILE "
            f"and HODEI_TLS_KEY_FILE, listen on a loopback address such as "
            f"{variable}=127.0.0.1:{address.rpartition(':')[2]}, or set HODEI_INSECURE=1 to "
            "send tokens and job data in clear on purpose"
        )
    if not authenticated:
        raise ListenError(
            f"refusing to listen on {variable}={address} without authentication: set "
            "HODEI_API_TOKEN (clients then send it) or HODEI_TLS_CLIENT_CA_FILE (clients then "
            "present a certificate), or set HODEI_INSECURE=1 to accept anyone on purpose"
        )


def bearer_ok(metadata: Any, token: str) -> bool:
    """Whether the call's metadata carries ``authorization: Bearer <token>``."""
    for key, value in metadata or ():
        if key.lower() == "authorization":
            presented = value if isinstance(value, str) else value.decode()
            return hmac.compare_digest(presented.encode(), f"Bearer {token}".encode())
    return False


def _denying_handler(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    message = "missing or wrong API token: send 'authorization: Bearer <HODEI_API_TOKEN>'"

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield None  # pragma: no cover - abort raises

    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(streaming, **kwargs)
    return grpc.unary_unary_rpc_method_handler(unary, **kwargs)


def _peer_certificate(context: grpc.aio.ServicerContext) -> bytes | None:
    found = (context.auth_context() or {}).get("x509_pem_cert")
    return found[0] if found else None


def _checked_handler(
    handler: grpc.RpcMethodHandler,
    check: Callable[[grpc.aio.ServicerContext], Awaitable[None]],
) -> grpc.RpcMethodHandler:
    """``handler`` with ``check(context)`` run before its behaviour, whatever its kind."""
    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }

    async def single(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await check(context)
        behaviour = handler.unary_unary or handler.stream_unary
        return await behaviour(request, context)

    async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await check(context)
        behaviour = handler.unary_stream or handler.stream_stream
        result = behaviour(request, context)
        if inspect.isasyncgen(result):
            async for item in result:
                yield item
        else:
            await result

    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(single, **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(single, **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(streaming, **kwargs)
    return grpc.stream_stream_rpc_method_handler(streaming, **kwargs)


class _JobServiceInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Hands JobService handlers to :meth:`guard`; other services pass untouched."""

    def guard(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or not handler_call_details.method.startswith(JOB_SERVICE_PREFIX):
            return handler
        return self.guard(handler, handler_call_details)


class WorkerCertificateGuard(_JobServiceInterceptor):
    """Refuses JobService calls made with a worker's client certificate (PERMISSION_DENIED).

    Worker certificates exist so agents pass a port that requires client certificates;
    they stand in pod specs, so they must not open the jobs API the way a client's does.
    """

    def __init__(self, is_worker_certificate: Callable[[bytes], bool]) -> None:
        self._is_worker = is_worker_certificate

    async def _check(self, context: grpc.aio.ServicerContext) -> None:
        pem = _peer_certificate(context)
        if pem is not None and self._is_worker(pem):
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                "a worker's certificate may not call the jobs API: present a client "
                "certificate signed by HODEI_TLS_CLIENT_CA_FILE",
            )

    def guard(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        return _checked_handler(handler, self._check)


class ApiTokenInterceptor(_JobServiceInterceptor):
    """Rejects JobService calls without the API token with UNAUTHENTICATED."""

    def __init__(self, token: str) -> None:
        self._token = token

    def guard(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        if bearer_ok(details.invocation_metadata, self._token):
            return handler
        return _denying_handler(handler)
