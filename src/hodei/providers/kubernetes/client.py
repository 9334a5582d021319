"""The one place that speaks to the Kubernetes API (through ``kubernetes_asyncio``).

Everything else in the provider sees plain dicts and :class:`KubernetesApiError`. Here
live: finding the client configuration (in-cluster, ``HODEI_K8S_KUBECONFIG``,
``KUBECONFIG``, ``~/.kube/config``, the context), the handful of pod calls the provider
needs (create, delete, list, watch, read log), translation of failures into messages
naming verb, resource, namespace and the fix, retries with backoff for 429/5xx/dropped
connections, a client-side rate limit, and a per-request hook for metrics. Responses are
read raw (``_preload_content=False``) and parsed as JSON: cheaper than the generated
model classes, and the pod cache holds the same dicts the API sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, cast

import aiohttp
import yaml
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from hodei.config.settings import KubernetesSettings
from hodei.providers.kubernetes.errors import (
    KubernetesApiError,
    KubernetesConfigError,
    api_error,
    connection_error,
    parse_retry_after,
)
from hodei.providers.kubernetes.ratelimit import TokenBucket
from hodei.providers.kubernetes.retry import RetryPolicy, with_retries

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
REQUEST_TIMEOUT = 30.0  # seconds for any call but a watch
WATCH_CONNECT_TIMEOUT = 10.0

Observe = Callable[[str, str], None]  # (verb, HTTP code or "error")
Json = dict[str, Any]

__all__ = [
    "KubeClient",
    "KubernetesApiError",
    "KubernetesConfigError",
    "WatchStream",
    "load_client_config",
]


def _in_cluster(env: Mapping[str, str]) -> bool:
    return bool(env.get("KUBERNETES_SERVICE_HOST")) and (SERVICE_ACCOUNT_DIR / "token").is_file()


def _kubeconfig_paths(
    settings: KubernetesSettings, env: Mapping[str, str]
) -> tuple[list[str], str]:
    """The kubeconfig files to read and a description of where they came from."""
    if settings.kubeconfig:
        path = os.path.expanduser(settings.kubeconfig)
        if not os.path.isfile(path):
            raise KubernetesConfigError(
                f"HODEI_K8S_KUBECONFIG={settings.kubeconfig}: no such file; "
                "point it at a kubeconfig, or unset it to use in-cluster config / KUBECONFIG"
            )
        return [path], f"HODEI_K8S_KUBECONFIG={settings.kubeconfig}"
    if env.get("KUBECONFIG"):
        listed = [p for p in env["KUBECONFIG"].split(os.pathsep) if p]
        existing = [os.path.expanduser(p) for p in listed if os.path.isfile(os.path.expanduser(p))]
        if not existing:
            raise KubernetesConfigError(
                f"KUBECONFIG={env['KUBECONFIG']}: no such file; "
                "set HODEI_K8S_KUBECONFIG or KUBECONFIG to an existing kubeconfig"
            )
        return existing, f"KUBECONFIG={env['KUBECONFIG']}"
    home = env.get("HOME") or str(Path.home())
    default = os.path.join(home, ".kube", "config")
    if not os.path.isfile(default):
        raise KubernetesConfigError(
            "no Kubernetes configuration found: not running in a pod "
            "(KUBERNETES_SERVICE_HOST unset), HODEI_K8S_KUBECONFIG and KUBECONFIG unset, "
            f"and {default} does not exist; set HODEI_K8S_KUBECONFIG to a kubeconfig file"
        )
    return [default], default


def _check_context(paths: list[str], source: str, context: str | None) -> None:
    try:
        contexts, current = k8s_config.list_kube_config_contexts(os.pathsep.join(paths))
    except (k8s_config.ConfigException, yaml.YAMLError, OSError, TypeError, KeyError) as exc:
        raise KubernetesConfigError(f"{source}: not a usable kubeconfig: {exc}") from None
    names = sorted(str(c.get("name")) for c in contexts or [])
    if context is not None and context not in names:
        raise KubernetesConfigError(
            f"HODEI_K8S_CONTEXT={context}: no such context in {source}; "
            f"available: {', '.join(names) or 'none'}"
        )
    if context is None and not current:
        raise KubernetesConfigError(
            f"{source}: the kubeconfig has no current-context; set HODEI_K8S_CONTEXT "
            f"to one of: {', '.join(names) or 'none'}"
        )


async def load_client_config(
    settings: KubernetesSettings, *, env: Mapping[str, str] | None = None
) -> k8s.Configuration:
    """The client configuration the settings (and the environment) point at.

    In-cluster when running in a pod and ``HODEI_K8S_KUBECONFIG`` is unset; otherwise
    ``HODEI_K8S_KUBECONFIG``, ``KUBECONFIG`` or ``~/.kube/config``, with
    ``HODEI_K8S_CONTEXT`` or the current context. Raises :class:`KubernetesConfigError`.
    """
    env = os.environ if env is None else env
    configuration = k8s.Configuration()
    if not settings.kubeconfig and _in_cluster(env):
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except k8s_config.ConfigException as exc:
            raise KubernetesConfigError(f"in-cluster Kubernetes configuration: {exc}") from None
        return configuration
    paths, source = _kubeconfig_paths(settings, env)
    _check_context(paths, source, settings.context)
    try:
        await k8s_config.load_kube_config(
            config_file=os.pathsep.join(paths),
            context=settings.context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (k8s_config.ConfigException, yaml.YAMLError, OSError, TypeError, KeyError) as exc:
        raise KubernetesConfigError(f"{source}: not a usable kubeconfig: {exc}") from None
    return configuration


def _raw(call: Awaitable[Any]) -> Awaitable[aiohttp.ClientResponse]:
    """Type a generated API call made with ``_preload_content=False``: it answers with the
    raw aiohttp response, not the model its annotation names."""
    return cast(Awaitable[aiohttp.ClientResponse], call)


def _status_body(data: bytes) -> Json:
    try:
        body = json.loads(data)
    except ValueError:
        return {"message": data.decode("utf-8", "replace")[:500]}
    return body if isinstance(body, dict) else {}


class WatchStream:
    """One open watch response, read event by event."""

    def __init__(self, response: aiohttp.ClientResponse, *, namespace: str, server: str) -> None:
        self._response = response
        self._namespace = namespace
        self._server = server

    async def next(self) -> Json | None:
        """The next event dict, or ``None`` when the server ended the stream."""
        try:
            line = await self._response.content.readline()
        except (aiohttp.ClientError, OSError) as exc:
            raise connection_error(
                exc, verb="watch", resource="pods", namespace=self._namespace, server=self._server
            ) from exc
        if not line:
            return None
        try:
            event: Json = json.loads(line)
        except ValueError as exc:  # the connection broke in the middle of an event
            raise connection_error(
                exc, verb="watch", resource="pods", namespace=self._namespace, server=self._server
            ) from exc
        if event.get("type") == "ERROR":
            status = event.get("object") or {}
            raise api_error(
                status=int(status.get("code") or 500),
                body=status,
                verb="watch",
                resource="pods",
                namespace=self._namespace,
            )
        return event

    def close(self) -> None:
        """Drop the connection (a watch is never read to its end).

        Aborted, not closed: closing TLS waits for the server's close_notify, and the
        socket would outlive a loop that ends first.
        """
        connection = self._response.connection
        if connection is not None and connection.transport is not None:
            connection.transport.abort()
        self._response.close()


class KubeClient:
    """Pod operations in one namespace: rate-limited, retried, translated, observed."""

    def __init__(
        self,
        configuration: k8s.Configuration,
        *,
        namespace: str,
        limiter: TokenBucket,
        policy: RetryPolicy | None = None,
        observe: Observe | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._api_client = k8s.ApiClient(configuration=configuration)
        self._core = k8s.CoreV1Api(self._api_client)
        self.namespace = namespace
        self.server = str(configuration.host)
        self._limiter = limiter
        self._policy = policy or RetryPolicy()
        self._observe = observe or (lambda verb, code: None)
        self._sleep = sleep
        self._rand = rand

    @classmethod
    async def from_settings(
        cls, settings: KubernetesSettings, *, observe: Observe | None = None
    ) -> KubeClient:
        """A client for ``settings.namespace`` with the configured QPS/burst."""
        configuration = await load_client_config(settings)
        return cls(
            configuration,
            namespace=settings.namespace,
            limiter=TokenBucket(settings.qps, settings.burst),
            observe=observe,
        )

    async def close(self) -> None:
        await self._api_client.close()

    async def _once(
        self, verb: str, resource: str, call: Callable[[], Awaitable[aiohttp.ClientResponse]]
    ) -> bytes:
        await self._limiter.acquire()
        try:
            response = await call()
            async with response:
                data = await response.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self._observe(verb, "error")
            raise connection_error(
                exc, verb=verb, resource=resource, namespace=self.namespace, server=self.server
            ) from exc
        self._observe(verb, str(response.status))
        if response.status >= 400:
            raise api_error(
                status=response.status,
                body=_status_body(data),
                verb=verb,
                resource=resource,
                namespace=self.namespace,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        return data

    async def _request(
        self,
        verb: str,
        resource: str,
        call: Callable[[], Awaitable[aiohttp.ClientResponse]],
        *,
        retries: bool = True,
    ) -> bytes:
        if not retries:
            return await self._once(verb, resource, call)

        def note(exc: KubernetesApiError, delay: float) -> None:
            log.info("retrying %s %s in %.2fs: %s", verb, resource, delay, exc)

        return await with_retries(
            lambda: self._once(verb, resource, call),
            policy=self._policy,
            sleep=self._sleep,
            rand=self._rand,
            on_retry=note,
        )

    async def create_pod(self, body: Json) -> Json:
        """Create a pod; raises :class:`KubernetesApiError` (409 when it already exists).

        Tried once: the provider decides how long a create may wait (its pending budget)."""
        data = await self._request(
            "create",
            "pods",
            lambda: _raw(
                self._core.create_namespaced_pod(
                    self.namespace,
                    cast(Any, body),
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            ),
            retries=False,
        )
        pod: Json = json.loads(data)
        return pod

    async def delete_pod(self, name: str, *, grace_period_seconds: int) -> None:
        """Delete a pod; raises :class:`KubernetesApiError` (404 when it is absent)."""
        await self._request(
            "delete",
            "pods",
            lambda: _raw(
                self._core.delete_namespaced_pod(
                    name,
                    self.namespace,
                    grace_period_seconds=grace_period_seconds,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            ),
        )

    async def list_pods(
        self,
        *,
        label_selector: str,
        limit: int | None = None,
        continue_token: str | None = None,
        retries: bool = True,
    ) -> Json:
        """One page of the label-selected pods (a ``PodList`` dict)."""
        kwargs: dict[str, Any] = {"label_selector": label_selector}
        if limit is not None:
            kwargs["limit"] = limit
        if continue_token:
            kwargs["_continue"] = continue_token
        data = await self._request(
            "list",
            "pods",
            lambda: _raw(
                self._core.list_namespaced_pod(
                    self.namespace,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                    **kwargs,
                )
            ),
            retries=retries,
        )
        pods: Json = json.loads(data)
        return pods

    async def open_watch(
        self, *, label_selector: str, resource_version: str, timeout_seconds: int
    ) -> WatchStream:
        """Start watching pods from ``resource_version``, bookmarks on. No retries here:
        the watch loop decides what a failure means (resume, relist, back off)."""
        await self._limiter.acquire()
        try:
            response = await _raw(
                self._core.list_namespaced_pod(
                    self.namespace,
                    label_selector=label_selector,
                    watch=True,
                    allow_watch_bookmarks=True,
                    resource_version=resource_version,
                    timeout_seconds=timeout_seconds,
                    _preload_content=False,
                    _request_timeout=aiohttp.ClientTimeout(
                        connect=WATCH_CONNECT_TIMEOUT, sock_connect=WATCH_CONNECT_TIMEOUT
                    ),
                )
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self._observe("watch", "error")
            raise connection_error(
                exc, verb="watch", resource="pods", namespace=self.namespace, server=self.server
            ) from exc
        self._observe("watch", str(response.status))
        if response.status >= 400:
            async with response:
                data = await response.read()
            raise api_error(
                status=response.status,
                body=_status_body(data),
                verb="watch",
                resource="pods",
                namespace=self.namespace,
            )
        return WatchStream(response, namespace=self.namespace, server=self.server)

    async def read_pod_log(self, name: str, *, container: str, tail_lines: int) -> str:
        """The last ``tail_lines`` lines of a container's log."""
        data = await self._request(
            "get",
            "pods/log",
            lambda: _raw(
                self._core.read_namespaced_pod_log(
                    name,
                    self.namespace,
                    container=container,
                    tail_lines=tail_lines,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            ),
        )
        return data.decode("utf-8", "replace")
