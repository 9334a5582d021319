"""Kubernetes provider: each job runs on an ephemeral worker pod, watched and diagnosed.

``create_provider`` is the entry point the control plane uses (through
:func:`hodei.server.provider_factory.build_providers`, when ``HODEI_K8S_ENABLED=1``); the modules
inside split the work: ``client`` (the only one speaking to the API), ``errors`` (API
failures as actionable messages), ``retry`` and ``ratelimit`` (pure backoff schedule and
token bucket), ``pods`` (pure pod builder), ``templates`` and ``profiles``
(operator pod profiles: pure merge, and their loading), ``diagnosis`` (pure pod-status reading),
``watch`` (shared list+watch and its cache), ``metrics``, and ``provider`` (the Provider
implementation tying them together).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from hodei.config.settings import KubernetesSettings
from hodei.domain.clock import SYSTEM_CLOCK, Clock
from hodei.providers.kubernetes.client import KubeClient, load_client_config
from hodei.providers.kubernetes.errors import (
    KubernetesApiError,
    KubernetesConfigError,
    KubernetesError,
)
from hodei.providers.kubernetes.metrics import ProviderMetrics
from hodei.providers.kubernetes.profiles import load_profiles
from hodei.providers.kubernetes.provider import KubernetesProvider
from hodei.providers.kubernetes.templates import TemplateError
from hodei.supervision import Background

__all__ = [
    "KubernetesApiError",
    "KubernetesConfigError",
    "KubernetesError",
    "KubernetesProvider",
    "create_provider",
    "load_client_config",
]


async def create_provider(
    settings: KubernetesSettings,
    *,
    instance: str,
    registry: CollectorRegistry | None = None,
    loops: Background | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> KubernetesProvider:
    """Load the client configuration and build the provider (not yet started).

    Raises :class:`KubernetesConfigError` when no usable configuration is found or a pod
    profile in ``HODEI_K8S_POD_TEMPLATES_DIR`` is refused (the message names file and field).
    ``instance`` names the owning control plane (pod label and watch selector); what worker
    pods dial comes with each :class:`~hodei.providers.base.WorkerRequest`. ``loops``: the
    control plane's supervision, which runs the provider's watch and housekeeping.
    """
    try:
        profiles = load_profiles(settings.pod_templates_dir, settings)
    except TemplateError as exc:
        raise KubernetesConfigError(str(exc)) from None
    metrics = ProviderMetrics(registry)
    api = await KubeClient.from_settings(settings, observe=metrics.observe_request)
    return KubernetesProvider(
        settings=settings,
        api=api,
        instance=instance,
        metrics=metrics,
        profiles=profiles,
        loops=loops,
        clock=clock,
    )
