"""The client module against the emulator: Retry-After honoured, the rate limit applied,
unreachable servers and missing pods reported, all with injected sleeps (no waiting)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hodei.providers.kubernetes.client import KubeClient, load_client_config
from hodei.providers.kubernetes.errors import KubernetesApiError
from hodei.providers.kubernetes.ratelimit import TokenBucket
from hodei.providers.kubernetes.retry import RetryPolicy

from .helpers import MANIFESTS, NAMESPACE, settings_for

SELECTOR = "app.kubernetes.io/managed-by=hodei"


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def emulator(kube_emulator: Any) -> Any:
    kube_emulator.apply_manifest(MANIFESTS / "namespace.yaml")
    return kube_emulator


async def client_for(
    kubeconfig: Path, sleeps: Sleeps, *, limiter: TokenBucket | None = None, host: str = ""
) -> KubeClient:
    configuration = await load_client_config(settings_for(kubeconfig), env={})
    if host:
        configuration.host = host
    return KubeClient(
        configuration,
        namespace=NAMESPACE,
        limiter=limiter or TokenBucket(1000, 1000),
        policy=RetryPolicy(attempts=4),
        sleep=sleeps,
        rand=lambda: 0.0,
    )


async def test_429_waits_at_least_retry_after(emulator: Any) -> None:
    sleeps = Sleeps()
    client = await client_for(Path(emulator.admin_kubeconfig), sleeps)
    try:
        emulator.faults.fail_next(2, verb="list", resource="pods", status=429, retry_after=3)
        page = await client.list_pods(label_selector=SELECTOR)
    finally:
        await client.close()
    assert page["kind"] == "PodList"
    assert sleeps.delays == [3.0, 3.0]


async def test_500s_back_off_exponentially_then_give_up(emulator: Any) -> None:
    sleeps = Sleeps()
    client = await client_for(Path(emulator.admin_kubeconfig), sleeps)
    try:
        emulator.faults.fail_next(10, verb="list", resource="pods", status=500)
        with pytest.raises(KubernetesApiError) as info:
            await client.list_pods(label_selector=SELECTOR)
    finally:
        await client.close()
    assert info.value.status == 500
    assert sleeps.delays == [0.1, 0.2, 0.4]  # equal jitter at its floor, 4 attempts


async def test_requests_pass_through_the_token_bucket(emulator: Any) -> None:
    sleeps = Sleeps()
    clock = iter([0.0] * 100)
    limiter = TokenBucket(10, 2, clock=lambda: next(clock), sleep=sleeps)
    client = await client_for(Path(emulator.admin_kubeconfig), Sleeps(), limiter=limiter)
    try:
        for _ in range(4):
            await client.list_pods(label_selector=SELECTOR)
    finally:
        await client.close()
    assert sleeps.delays == pytest.approx([0.1, 0.2])  # burst of 2, then paced at 10/s


async def test_unreachable_server_is_retried_then_named(emulator: Any) -> None:
    sleeps = Sleeps()
    client = await client_for(Path(emulator.admin_kubeconfig), sleeps, host="https://127.0.0.1:1")
    try:
        with pytest.raises(KubernetesApiError) as info:
            await client.list_pods(label_selector=SELECTOR)
    finally:
        await client.close()
    assert info.value.status == 0 and info.value.retryable
    assert "https://127.0.0.1:1 unreachable" in str(info.value)
    assert len(sleeps.delays) == 3


async def test_missing_pod_log_is_not_found(emulator: Any) -> None:
    client = await client_for(Path(emulator.admin_kubeconfig), Sleeps())
    try:
        with pytest.raises(KubernetesApiError) as info:
            await client.read_pod_log("hodei-worker-absent", container="worker", tail_lines=5)
    finally:
        await client.close()
    assert info.value.not_found
    assert '"get pods/log"' in str(info.value)
