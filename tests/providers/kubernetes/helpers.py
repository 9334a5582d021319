"""Test helpers for the Kubernetes provider: a status recorder and an admin API handle."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from prometheus_client import CollectorRegistry

from hodei.config.settings import KubernetesSettings
from hodei.domain.ids import JobId, WorkerId, new_job_id, new_worker_id
from hodei.providers.base import WorkerPhase, WorkerRequest, WorkerStatus
from hodei.providers.kubernetes import KubernetesProvider, create_provider
from tests.fixtures.clock import START
from tests.fixtures.waiting import eventually

REPO = Path(__file__).resolve().parents[3]
MANIFESTS = REPO / "deploy" / "kubernetes"
NAMESPACE = "hodei-workers"


class Recorder:
    """Collects the statuses a provider pushes and lets a test await one."""

    def __init__(self) -> None:
        self.statuses: list[WorkerStatus] = []
        self._changed = asyncio.Condition()

    async def __call__(self, status: WorkerStatus) -> None:
        async with self._changed:
            self.statuses.append(status)
            self._changed.notify_all()

    def of(self, worker_id: WorkerId) -> list[WorkerStatus]:
        return [s for s in self.statuses if s.worker_id == worker_id]

    async def wait_for(
        self,
        worker_id: WorkerId,
        phase: WorkerPhase,
        *,
        within: float = 20.0,
        where: Callable[[WorkerStatus], bool] = lambda s: True,
    ) -> WorkerStatus:
        def found() -> WorkerStatus | None:
            for s in self.of(worker_id):
                if s.phase is phase and where(s):
                    return s
            return None

        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: found() is not None)
        result = found()
        assert result is not None
        return result


def worker_request(*, worker_id: WorkerId | None = None, **changes: Any) -> WorkerRequest:
    values: dict[str, Any] = {
        "worker_id": worker_id or new_worker_id(),
        "job_id": JobId(new_job_id()),
        "token": "one-time-token",
        "server_address": "127.0.0.1:50051",
    }
    values.update(changes)
    return WorkerRequest(**values)


def settings_for(kubeconfig: Path, **changes: Any) -> KubernetesSettings:
    values: dict[str, Any] = {
        "enabled": True,
        "namespace": NAMESPACE,
        "kubeconfig": str(kubeconfig),
        "qps": 500.0,
        "burst": 500,
    }
    values.update(changes)
    return KubernetesSettings(**values)


@contextlib.asynccontextmanager
async def running_provider(
    settings: KubernetesSettings,
    *,
    instance: str = "test",
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[tuple[KubernetesProvider, Recorder]]:
    provider = await create_provider(settings, instance=instance, registry=registry)
    recorder = Recorder()
    try:
        await provider.start(recorder)
        yield provider, recorder
    finally:
        await provider.close()


class Admin:
    """The cluster admin's direct API access, to change pods behind the provider's back."""

    def __init__(self, api: k8s.ApiClient) -> None:
        self._api = api
        self.core = k8s.CoreV1Api(api)

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, kubeconfig: Path) -> AsyncIterator[Admin]:
        configuration = k8s.Configuration()
        await k8s_config.load_kube_config(
            config_file=str(kubeconfig), client_configuration=configuration, persist_config=False
        )
        async with k8s.ApiClient(configuration) as api:
            yield cls(api)

    async def pod_names(self, namespace: str = NAMESPACE) -> list[str]:
        pods = await self.core.list_namespaced_pod(namespace)
        return sorted(p.metadata.name for p in pods.items)

    async def set_status(
        self, name: str, status: dict[str, Any], namespace: str = NAMESPACE
    ) -> None:
        """Write a pod's status as a kubelet or scheduler would."""
        await self.core.patch_namespaced_pod_status(
            name,
            namespace,
            {"status": status},
            _content_type="application/merge-patch+json",
            _preload_content=False,
        )

    async def delete_now(self, name: str, namespace: str = NAMESPACE) -> None:
        await self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)


async def no_pods(admin: Admin, *, within: float = 20.0) -> None:
    async def empty() -> bool:
        return not await admin.pod_names()

    await eventually(empty, within=within, every=0.1)


def api_counts(emulator: Any) -> dict[tuple[str, str], int]:
    return {k: v for k, v in emulator.request_counts().items() if v}


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)


class FakeTime:
    """The provider's clock (time stands still unless a create wait sleeps) and the create
    wait's sleep (:meth:`wait`), which advances the clock instantly."""

    def __init__(self) -> None:
        self.elapsed = 1000.0
        self.slept: list[float] = []

    def now(self) -> datetime:
        return START + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        return self.elapsed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)  # housekeeping and the watch pace in real time here

    async def wait(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.elapsed += seconds
        await asyncio.sleep(0)
