"""Settings: every environment variable Hodei reads, parsed and validated in one place."""

from hodei.config.settings import (
    ClientSettings,
    KubernetesSettings,
    ServerSettings,
    SettingsError,
    WorkerSettings,
    load_client_settings,
    load_server_settings,
    load_worker_settings,
)

__all__ = [
    "ClientSettings",
    "KubernetesSettings",
    "ServerSettings",
    "SettingsError",
    "WorkerSettings",
    "load_client_settings",
    "load_server_settings",
    "load_worker_settings",
]
