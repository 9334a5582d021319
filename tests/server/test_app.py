"""ControlPlane wiring: providers from settings, instance id, worker address, token TTL."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import grpc
import pytest
from prometheus_client import CollectorRegistry

from hodei.api.v1 import jobs_pb2_grpc
from hodei.config.settings import load_server_settings
from hodei.providers.base import WorkerRequest
from hodei.providers.fake import FakeProvider
from hodei.server.app import worker_address
from hodei.server.auth import ListenError
from hodei.server.controller import default_provider
from hodei.server.provider_factory import build_providers
from tests.fixtures.control_plane import FAST
from tests.fixtures.scripted_worker import StreamEnded, WorkerClient
from tests.server.helpers import submit


async def test_providers_come_from_settings(control_plane_factory):
    plane = await control_plane_factory(env={"HODEI_LOCAL_MAX_WORKERS": "2"})
    assert list(plane.providers) == ["local"]
    assert plane.providers["local"].capacity == 2


async def test_no_provider_enabled(tmp_path):
    settings = load_server_settings({"HODEI_LOCAL_ENABLED": "0"})
    registry = CollectorRegistry()
    assert await build_providers(settings, instance="i", registry=registry) == []


def test_default_provider_is_kubernetes_when_enabled_else_local() -> None:
    assert default_provider([]) is None
    assert default_provider(["local"]) == "local"
    assert default_provider(["local", "kubernetes"]) == "kubernetes"
    assert default_provider(["kubernetes"]) == "kubernetes"


async def test_instance_id_is_stable_across_restarts(control_plane_factory):
    first = await control_plane_factory(providers=[FakeProvider()])
    instance = first.instance
    assert instance.startswith("hodei-")
    await first.stop(grace=0)
    second = await control_plane_factory(providers=[FakeProvider()])
    assert second.instance == instance
    named = await control_plane_factory(
        providers=[FakeProvider()],
        env={"HODEI_INSTANCE": "prod", "HODEI_DATABASE_URL": "memory://"},
    )
    assert named.instance == "prod"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "127.0.0.1:7"),
        ({"HODEI_GRPC_ADDRESS": "[::]:0"}, "127.0.0.1:7"),
        ({"HODEI_GRPC_ADDRESS": "10.1.2.3:0"}, "10.1.2.3:7"),
        ({"HODEI_SERVER_ADDRESS": "cp.example:50051"}, "cp.example:50051"),
    ],
)
def test_worker_address(env, expected):
    assert worker_address(load_server_settings(env), 7) == expected


async def test_expired_register_token_is_refused(control_plane_factory):
    requests: asyncio.Queue[WorkerRequest] = asyncio.Queue()
    provider = FakeProvider("local", on_create=requests.put_nowait)
    plane = await control_plane_factory(
        providers=[provider], tuning=replace(FAST, token_ttl=timedelta(0))
    )
    async with grpc.aio.insecure_channel(plane.address) as channel:
        await submit(jobs_pb2_grpc.JobServiceStub(channel), "x")
    request = await requests.get()
    client = WorkerClient(plane.address)
    try:
        with pytest.raises(StreamEnded) as info:
            await client.register(request.worker_id, token=request.token)
    finally:
        await client.close()
    assert info.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert "expired" in (info.value.details or "")


async def test_busy_port_is_a_listen_error_naming_the_variable(control_plane_factory):
    first = await control_plane_factory(providers=[FakeProvider()])
    taken = f"127.0.0.1:{first.http_port}"
    with pytest.raises(ListenError, match=r"HODEI_HTTP_ADDRESS=127\.0\.0\.1"):
        await control_plane_factory(
            providers=[FakeProvider()],
            env={"HODEI_HTTP_ADDRESS": taken, "HODEI_DATABASE_URL": "memory://"},
        )


async def test_stop_twice_is_harmless(control_plane_factory):
    plane = await control_plane_factory(providers=[FakeProvider()])
    await plane.stop(grace=0)
    await plane.stop(grace=0)
