"""Kubernetes API failures turned into errors a person can act on.

The API server answers many different problems with the same status code: ``403
Forbidden`` means a missing RBAC rule, but also an exhausted ResourceQuota, a namespace
being deleted, or a worker ServiceAccount that does not exist. An operator (or a user
waiting on a job) needs the cause and its fix, and the provider needs to know whether
waiting can help, so every API error is classified once, here, without I/O: the
:data:`CAUSES` table says for each :class:`Cause` whether a create is retried within the
pending budget and which failure reason a job ends with, and :func:`explain` words it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hodei.domain import reasons
from hodei.domain.reasons import PROVIDER_ERROR, Reason
from hodei.providers.base import ProviderError

RBAC_MANIFEST = "deploy/kubernetes/rbac.yaml"
INSTALL_SCRIPT = "deploy/kubernetes/install.sh"

# Statuses worth another try: throttling, server trouble, timeouts.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class Cause(enum.Enum):
    """Why the API server refused a request (or never answered), by cause not by code."""

    TRANSIENT = "transient"  # 429, 5xx, timeouts, connection errors
    QUOTA_EXCEEDED = "quota exceeded"  # 403 from the ResourceQuota admission plugin
    NAMESPACE_TERMINATING = "namespace terminating"  # 403 from NamespaceLifecycle
    NAMESPACE_MISSING = "namespace missing"  # 404 naming the namespace
    SERVICE_ACCOUNT_MISSING = "service account missing"  # 403 from ServiceAccount admission
    FORBIDDEN = "forbidden"  # 403 from RBAC
    UNAUTHORIZED = "unauthorized"  # 401: bad or expired credentials
    INVALID = "invalid"  # 400 BadRequest, 422 Invalid: the object itself is refused
    ALREADY_EXISTS = "already exists"  # 409 AlreadyExists (a retried create)
    NOT_FOUND = "not found"  # 404 of the object itself
    GONE = "gone"  # 410: a watch's resourceVersion is too old
    OTHER = "other"


@dataclass(frozen=True)
class CauseRule:
    """What a cause means for creating a worker pod: ``waits`` (retry with backoff, honouring
    Retry-After, until HODEI_K8S_PENDING_TIMEOUT) and the job's failure ``reason``."""

    waits: bool
    reason: Reason


# One table for every cause. Only throttling/outages and an exhausted quota can end by
# themselves (a pod finishes, the server recovers); everything else needs a person.
CAUSES: Mapping[Cause, CauseRule] = {
    Cause.TRANSIENT: CauseRule(True, PROVIDER_ERROR),
    Cause.QUOTA_EXCEEDED: CauseRule(True, reasons.QUOTA_EXCEEDED),
    Cause.NAMESPACE_TERMINATING: CauseRule(False, PROVIDER_ERROR),
    Cause.NAMESPACE_MISSING: CauseRule(False, PROVIDER_ERROR),
    Cause.SERVICE_ACCOUNT_MISSING: CauseRule(False, PROVIDER_ERROR),
    Cause.FORBIDDEN: CauseRule(False, PROVIDER_ERROR),
    Cause.UNAUTHORIZED: CauseRule(False, PROVIDER_ERROR),
    Cause.INVALID: CauseRule(False, PROVIDER_ERROR),
    Cause.ALREADY_EXISTS: CauseRule(False, PROVIDER_ERROR),
    Cause.NOT_FOUND: CauseRule(False, PROVIDER_ERROR),
    Cause.GONE: CauseRule(False, PROVIDER_ERROR),
    Cause.OTHER: CauseRule(False, PROVIDER_ERROR),
}

# What the admission plugins say (kube-apiserver's own wording): ResourceQuota
# "exceeded quota: NAME, requested: ..., used: ..., limited: ...", NamespaceLifecycle
# "unable to create new content in namespace NS because it is being terminated",
# ServiceAccount "error looking up service account NS/NAME: serviceaccount "NAME" not found".
_QUOTA_MARKER = "exceeded quota:"
_TERMINATING_MARKER = "because it is being terminated"
_SERVICE_ACCOUNT_MARKER = "error looking up service account"


def _causes(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((body.get("details") or {}).get("causes") or [])


def cause_of(status: int, body: Mapping[str, Any]) -> Cause:
    """Classify an answer: ``status`` 0 is no answer at all; ``body`` is its ``Status``."""
    message = str(body.get("message") or "")
    if status == 0 or status in RETRYABLE_STATUSES:
        return Cause.TRANSIENT
    if status == 403:
        if _QUOTA_MARKER in message:
            return Cause.QUOTA_EXCEEDED
        terminating = any(c.get("reason") == "NamespaceTerminating" for c in _causes(body))
        if terminating or _TERMINATING_MARKER in message:
            return Cause.NAMESPACE_TERMINATING
        if _SERVICE_ACCOUNT_MARKER in message:
            return Cause.SERVICE_ACCOUNT_MISSING
        return Cause.FORBIDDEN
    if status == 401:
        return Cause.UNAUTHORIZED
    if status in (400, 422):
        return Cause.INVALID
    if status == 409 and body.get("reason") == "AlreadyExists":
        return Cause.ALREADY_EXISTS
    if status == 404:
        return Cause.NAMESPACE_MISSING if namespace_missing(status, body) else Cause.NOT_FOUND
    if status == 410:
        return Cause.GONE
    return Cause.OTHER


def quota_message(api_message: str) -> str:
    """The quota part of a ResourceQuota refusal (from ``exceeded quota:`` on)."""
    at = api_message.find(_QUOTA_MARKER)
    return api_message[at:] if at >= 0 else api_message


def field_causes(body: Mapping[str, Any]) -> str:
    """A 400/422 ``Status``'s field causes as ``FIELD: MESSAGE; ...`` (empty when none)."""
    parts = []
    for cause in _causes(body):
        field = cause.get("field") or ""
        text = cause.get("message") or cause.get("reason") or ""
        parts.append(f"{field}: {text}" if field else str(text))
    return "; ".join(parts)


class KubernetesError(ProviderError):
    """Base of the Kubernetes provider's errors."""


class KubernetesConfigError(KubernetesError):
    """No usable client configuration: missing kubeconfig, unknown context, bad in-cluster files."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason=PROVIDER_ERROR, retryable=False)


class KubernetesApiError(KubernetesError):
    """The API server refused a request, or could not be reached (``status`` 0)."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        api_reason: str = "",
        verb: str = "",
        resource: str = "",
        namespace: str = "",
        retry_after: float | None = None,
        cause: Cause | None = None,
    ) -> None:
        self.cause = cause or cause_of(status, {"reason": api_reason})
        super().__init__(
            message,
            reason=CAUSES[self.cause].reason,
            retryable=self.cause is Cause.TRANSIENT,
        )
        self.status = status
        self.api_reason = api_reason
        self.verb = verb
        self.resource = resource
        self.namespace = namespace
        self.retry_after = retry_after

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.api_reason == "AlreadyExists"

    @property
    def gone(self) -> bool:
        return self.status == 410


def namespace_missing(status: int, body: Mapping[str, Any]) -> bool:
    """Whether a 404 ``Status`` body says the namespace itself does not exist."""
    if status != 404:
        return False
    details = body.get("details") or {}
    if details.get("kind") == "namespaces":
        return True
    return str(body.get("message", "")).startswith('namespaces "')


def explain(
    *,
    status: int,
    body: Mapping[str, Any],
    verb: str,
    resource: str,
    namespace: str,
) -> str:
    """The message for a failed request: what was refused, why, and what fixes it."""
    api_message = str(body.get("message") or body.get("reason") or f"HTTP {status}")
    where = f'"{verb} {resource}" in namespace "{namespace}"'
    cause = cause_of(status, body)
    if cause is Cause.QUOTA_EXCEEDED:
        return quota_message(api_message)
    if cause is Cause.NAMESPACE_TERMINATING:
        return (
            f'Kubernetes namespace "{namespace}" is being deleted (Terminating), so no new '
            f"pods can be created in it ({api_message}). Wait until it is gone and recreate "
            f"it with {INSTALL_SCRIPT}, or set HODEI_K8S_NAMESPACE to another namespace."
        )
    if cause is Cause.SERVICE_ACCOUNT_MISSING:
        account = api_message.rsplit('serviceaccount "', 1)[-1].split('"', 1)[0]
        return (
            f'the worker ServiceAccount "{account}" does not exist in namespace '
            f'"{namespace}" ({api_message}). Create it with `kubectl create serviceaccount '
            f"{account} -n {namespace}` or by applying {RBAC_MANIFEST}, or set "
            "HODEI_K8S_SERVICE_ACCOUNT to an existing one."
        )
    if cause is Cause.INVALID:
        causes = field_causes(body)
        detail = f" (fields: {causes})" if causes and causes not in api_message else ""
        return f"Kubernetes refused {where} as invalid: HTTP {status}: {api_message}{detail}"
    if status == 403:
        return (
            f"Kubernetes denied {where} to the control plane's identity: {api_message}. "
            f"Grant it by applying {RBAC_MANIFEST} (Role and RoleBinding hodei-provider in "
            f"{namespace}), or run as the ServiceAccount that file binds."
        )
    if status == 401:
        return (
            f"Kubernetes rejected the credentials for {where}: {api_message}. "
            "Check HODEI_K8S_KUBECONFIG / HODEI_K8S_CONTEXT (or the in-cluster token)."
        )
    if namespace_missing(status, body):
        return (
            f'Kubernetes namespace "{namespace}" does not exist ({verb} {resource}). '
            f"Create it with {INSTALL_SCRIPT} (or kubectl apply -f "
            "deploy/kubernetes/namespace.yaml), or set HODEI_K8S_NAMESPACE to an existing one."
        )
    return f"Kubernetes API error on {where}: HTTP {status}: {api_message}"


def api_error(
    *,
    status: int,
    body: Mapping[str, Any],
    verb: str,
    resource: str,
    namespace: str,
    retry_after: float | None = None,
) -> KubernetesApiError:
    """Build the :class:`KubernetesApiError` for a non-2xx answer."""
    return KubernetesApiError(
        explain(status=status, body=body, verb=verb, resource=resource, namespace=namespace),
        status=status,
        api_reason=str(body.get("reason") or ""),
        verb=verb,
        resource=resource,
        namespace=namespace,
        retry_after=retry_after,
        cause=cause_of(status, body),
    )


def connection_error(
    exc: BaseException, *, verb: str, resource: str, namespace: str, server: str
) -> KubernetesApiError:
    """A request that never got an answer (refused, reset, timed out)."""
    detail = str(exc) or type(exc).__name__
    return KubernetesApiError(
        f'Kubernetes API at {server} unreachable for "{verb} {resource}" in namespace '
        f'"{namespace}": {detail}',
        status=0,
        verb=verb,
        resource=resource,
        namespace=namespace,
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (the API server sends whole seconds)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
