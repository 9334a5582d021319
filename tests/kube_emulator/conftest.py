"""Shared helpers for the emulator's own tests: one emulator per module, API clients."""

from __future__ import annotations

import base64
import ssl
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from kubernetes_asyncio import client, config

from kube_emulator.testing import EmulatorConfig, RunningEmulator, apply_objects, running_emulator


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """One emulator for a whole test module (tests use their own namespaces)."""
    workdir = tmp_path_factory.mktemp("emulator")
    with running_emulator(EmulatorConfig(workdir=workdir)) as running:
        yield running


@pytest.fixture
def namespace(emulator: RunningEmulator) -> str:
    """A fresh namespace in the module's emulator."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    emulator.call(
        apply_objects,
        emulator.store,
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}],
    )
    return name


async def api_client_for(kubeconfig: Path) -> client.ApiClient:
    """A kubernetes_asyncio client configured from ``kubeconfig``."""
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


@pytest.fixture
async def api(emulator: RunningEmulator) -> AsyncIterator[client.ApiClient]:
    """An admin kubernetes_asyncio ApiClient."""
    api_client = await api_client_for(emulator.admin_kubeconfig)
    async with api_client:
        yield api_client


class Raw:
    """Plain HTTPS requests with a token, for checking exact wire shapes."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.session = session
        self.url = url
        self.token = token

    async def request(
        self, method: str, path: str, *, token: str | None = None, **kwargs: object
    ) -> tuple[int, dict[str, str], bytes]:
        headers = dict(kwargs.pop("headers", {}) or {})  # type: ignore[call-overload]
        headers.setdefault("Authorization", f"Bearer {token or self.token}")
        async with self.session.request(method, self.url + path, headers=headers, **kwargs) as resp:  # type: ignore[arg-type]
            return resp.status, dict(resp.headers), await resp.read()


def kubeconfig_token(path: Path) -> str:
    """The bearer token in a kubeconfig the emulator wrote."""
    return str(yaml.safe_load(path.read_text())["users"][0]["user"]["token"])


@pytest.fixture
async def raw(emulator: RunningEmulator) -> AsyncIterator[Raw]:
    """Raw HTTPS access as admin, trusting the emulator's CA."""
    kubeconfig = yaml.safe_load(emulator.admin_kubeconfig.read_text())
    ca = base64.b64decode(kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"])
    context = ssl.create_default_context(cadata=ca.decode())
    # A response left mid-stream (a watch) closes its TLS connection gracefully, waiting for
    # the server's close_notify; before Python 3.12.8 nothing closes the socket if the loop
    # ends first. The connector then keeps such transports and aborts them when it closes.
    cleanup = sys.version_info < (3, 12, 8)
    connector = aiohttp.TCPConnector(ssl=context, enable_cleanup_closed=cleanup)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield Raw(session, emulator.url, kubeconfig_token(emulator.admin_kubeconfig))
