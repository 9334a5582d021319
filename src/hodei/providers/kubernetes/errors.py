"""Kubernetes API failures turned into errors a person can act on.

The API server answers a missing permission with a terse ``403 Forbidden`` and a missing
namespace with ``404``. An operator reading the control plane's log needs to know which
verb on which resource in which namespace failed and which of the project's manifests
fixes it, so every API error passes through :func:`explain` once, here, without I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hodei.domain.reasons import PROVIDER_ERROR
from hodei.providers.base import ProviderError

RBAC_MANIFEST = "deploy/kubernetes/rbac.yaml"
INSTALL_SCRIPT = "deploy/kubernetes/install.sh"

# Statuses worth another try: throttling, server trouble, timeouts.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


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
    ) -> None:
        super().__init__(
            message,
            reason=PROVIDER_ERROR,
            retryable=status == 0 or status in RETRYABLE_STATUSES,
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
