"""Building the providers the settings enable: ``local`` unless ``HODEI_LOCAL_ENABLED=0``,
``kubernetes`` when ``HODEI_K8S_ENABLED=1``. Which of them takes jobs that name no provider
is :func:`hodei.server.controller.default_provider`.

The Kubernetes provider is imported only when enabled, so a control plane with the
local provider alone (the embedded ``hodei run``) never pays for loading the
Kubernetes client.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hodei.config.settings import ServerSettings
from hodei.domain.clock import SYSTEM_CLOCK, Clock
from hodei.providers.base import Provider
from hodei.providers.local import LocalProvider
from hodei.supervision import Background

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from hodei.providers.local.launcher import Launcher


async def build_providers(
    settings: ServerSettings,
    *,
    instance: str,
    registry: CollectorRegistry | None,
    state_dir: Path | None = None,
    local_launcher: Launcher | None = None,
    loops: Background | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> list[Provider]:
    """The enabled providers, not started yet. ``instance`` names this control plane (the
    Kubernetes provider labels and selects its pods with it); ``state_dir``: the local
    provider's pid files (next to the database, so a restarted control plane finds its
    workers); ``local_launcher``: a running worker launcher for the local provider (else
    it starts its own); ``loops``: the supervision that runs providers' loops. What
    workers dial reaches providers in each request, not here."""
    providers: list[Provider] = []
    if settings.local_enabled:
        providers.append(
            LocalProvider(
                max_workers=settings.local_max_workers,
                state_dir=state_dir,
                agent_tls=settings.worker_tls,
                launcher=local_launcher,
                loops=loops,
            )
        )
    if settings.kubernetes.enabled:
        from hodei.providers.kubernetes import create_provider

        providers.append(
            await create_provider(
                settings.kubernetes,
                instance=instance,
                registry=registry,
                loops=loops,
                clock=clock,
            )
        )
    return providers
