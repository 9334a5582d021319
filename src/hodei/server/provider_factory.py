"""Building the providers the settings enable (contract B).

The Kubernetes provider is imported only when enabled, so a control plane with the
local provider alone (the embedded ``hodei run``) never pays for loading the
Kubernetes client.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from hodei.config.settings import ServerSettings
from hodei.providers.base import Provider
from hodei.providers.local import LocalProvider


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
    state_dir: Path | None = None,
) -> list[Provider]:
    """The enabled providers, not started yet. ``state_dir``: the local provider's pid
    files (next to the database, so a restarted control plane finds its workers)."""
    providers: list[Provider] = []
    if settings.local_enabled:
        providers.append(LocalProvider(max_workers=settings.local_max_workers, state_dir=state_dir))
    if settings.kubernetes.enabled:
        from hodei.providers.kubernetes import create_provider

        providers.append(
            await create_provider(
                settings.kubernetes,
                server_address=server_address,
                instance=instance,
                registry=registry,
            )
        )
    return providers
