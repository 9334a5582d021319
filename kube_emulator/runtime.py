"""Start and stop one emulator on the current event loop.

Shared by the in-process test handle (`testing.py`, loop in a background thread) and the
command line (`cli.py`, loop in the main thread): build the store and its seed, serve
HTTPS on a free loopback port, start the kubelet when asked, write kubeconfigs.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from . import tls
from .auth import Authenticator
from .faults import Faults, RequestCounter
from .kubelet_api import Kubelet
from .seed import seed
from .server import create_app
from .state import EmulatorState
from .store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KubeletOptions:
    """What the ``--kubelet`` flags configure."""

    images: tuple[str, ...] = ()
    runtime: str = "process"
    node_cpu: str = "4"
    node_memory: str = "8Gi"
    node_labels: tuple[tuple[str, str], ...] = ()  # added to the node's well-known labels
    node_taints: tuple[str, ...] = ()  # KEY[=VALUE]:EFFECT each


class EmulatorRuntime:
    """One running emulator; create, then ``await start()``, later ``await stop()``."""

    def __init__(
        self,
        workdir: Path,
        *,
        kubernetes_version: str = "1.33",
        kubelet: KubeletOptions | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.workdir = workdir
        self.host = host
        self.port = port
        self.kubelet_options = kubelet
        self.kubernetes_version = kubernetes_version
        self.store = Store()
        self.authenticator = Authenticator()
        self.counter = RequestCounter()
        self.kubelet: Kubelet | None = None
        self._runner: web.AppRunner | None = None
        self.certificates = tls.generate()
        self.faults: Faults | None = None
        self.state: EmulatorState | None = None

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT``."""
        return f"https://{self.host}:{self.port}"

    async def start(self) -> None:
        """Seed, serve, start the kubelet."""
        loop = asyncio.get_running_loop()
        seed(self.store)
        self.faults = Faults(
            loop,
            close_watches=self.store.hub.close_all,
            compact=self.store.compact,
            set_node_lost=self.store.set_node_lost,
        )
        self.state = EmulatorState(
            store=self.store,
            authenticator=self.authenticator,
            faults=self.faults,
            counter=self.counter,
            kubernetes_version=self.kubernetes_version,
        )
        if self.kubelet_options is not None:
            self.kubelet = _make_kubelet(self.store, self.kubelet_options, self.workdir)
            self.store.kubelet = self.kubelet
            await self.kubelet.start()
        self.workdir.mkdir(parents=True, exist_ok=True)
        ssl_context = self.certificates.server_context(self.workdir)
        self._runner = web.AppRunner(
            create_app(self.state), access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            self.port = sock.getsockname()[1]
            site = web.SockSite(self._runner, sock, ssl_context=ssl_context, backlog=1024)
            await site.start()
        except BaseException:
            sock.close()
            raise
        self.state.server_address = f"{self.host}:{self.port}"

    async def stop(self) -> None:
        """Stop the kubelet, end watches, close the server."""
        if self.kubelet is not None:
            try:
                await self.kubelet.stop()
            finally:
                self.store.kubelet = None
        self.store.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def write_kubeconfig(
        self, path: Path, *, token: str, user: str, namespace: str = "default"
    ) -> Path:
        """A kubeconfig for this server with ``token``."""
        return tls.write_kubeconfig(
            path,
            server=self.url,
            ca_pem=self.certificates.ca_pem,
            token=token,
            user=user,
            namespace=namespace,
        )

    def write_admin_kubeconfig(self, path: Path) -> Path:
        """The admin (system:masters) kubeconfig."""
        return self.write_kubeconfig(path, token=self.authenticator.admin_token, user="admin")

    def write_serviceaccount_kubeconfig(self, path: Path, namespace: str, name: str) -> Path:
        """A kubeconfig authenticating as ServiceAccount ``namespace/name``."""
        token = self.authenticator.serviceaccount_token(namespace, name)
        return self.write_kubeconfig(
            path, token=token, user=f"{namespace}-{name}", namespace=namespace
        )


def _make_kubelet(store: Store, options: KubeletOptions, workdir: Path) -> Kubelet:
    # Imported lazily: the kubelet is optional and developed separately.
    module: Any = importlib.import_module("kube_emulator.kubelet")
    kubelet: Kubelet = module.Kubelet(
        store,
        images=options.images,
        runtime=options.runtime,
        node_cpu=options.node_cpu,
        node_memory=options.node_memory,
        node_labels=dict(options.node_labels),
        node_taints=[module.Taint.parse(t) for t in options.node_taints],
        workdir=workdir / "kubelet",
    )
    return kubelet
