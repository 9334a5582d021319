"""Building the providers the settings enable (contract B).

The Kubernetes provider is imported only when enabled, so a control plane with the
local provider alone never loads the Kubernetes client.
"""

from __future__ import annotations

import importlib
from typing import Any

from prometheus_client import CollectorRegistry

from hodei.config.settings import ServerSettings
from hodei.providers.base import Provider


def default_provider_name(settings: ServerSettings) -> str | None:
    """The provider for jobs that name none: kubernetes if enabled, else local."""
    if settings.kubernetes.enabled:
        return "kubernetes"
    if settings.local_enabled:
        return "local"
    return None


async def build_providers(
    settings: ServerSettings,
    *,
    server_address: str,
    instance: str,
    registry: CollectorRegistry,
    state_dir: Any = None,
) -> list[Provider]:
    """The enabled providers, not started yet."""
    providers: list[Provider] = []
    if settings.local_enabled:
        local = importlib.import_module("hodei.providers.local")
        providers.append(
            local.LocalProvider(max_workers=settings.local_max_workers, state_dir=state_dir)
        )
    if settings.kubernetes.enabled:
        kubernetes = importlib.import_module("hodei.providers.kubernetes")
        providers.append(
            await kubernetes.create_provider(
                settings.kubernetes,
                server_address=server_address,
                instance=instance,
                registry=registry,
            )
        )
    return providers
