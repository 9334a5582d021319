"""The control plane assembled: store, providers, scheduler, gRPC and HTTP.

``start`` opens the store, recovers what a previous run left, starts the providers and
then serves; ``stop`` drains: no new jobs are accepted, agents keep their streams so
running jobs can finish within the grace period, then everything closes. Workers are
left running on stop; a control plane started on the same store picks them up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import string
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1.health import aio as health_aio

from hodei.config.settings import ServerSettings
from hodei.domain.clock import SYSTEM_CLOCK, Clock
from hodei.providers.base import Provider
from hodei.server import grpc_services, recovery
from hodei.server.auth import (
    ApiTokenInterceptor,
    ListenError,
    WorkerCertificateGuard,
    check_listen_address,
    is_loopback_host,
)
from hodei.server.controller import JobController
from hodei.server.events import JobEvents
from hodei.server.jobs import JobBook
from hodei.server.loghub import LogHub
from hodei.server.metrics import Metrics
from hodei.server.provider_factory import build_providers
from hodei.server.scheduler import Scheduler
from hodei.server.stdin import InputRelay
from hodei.server.storewatch import watched
from hodei.server.supervisor import Supervisor
from hodei.server.tls import CertificateFiles, grpc_credentials, http_ssl_context
from hodei.server.tuning import Tuning
from hodei.server.wakeup import Wakeup
from hodei.server.worker_session import WorkerSession
from hodei.server.worker_socket import WorkerSocket
from hodei.server.workers import WorkerBook
from hodei.store import Store, sidecar_directory, store_from_url
from hodei.store.base import StoreError
from hodei.supervision import Background

if TYPE_CHECKING:
    from aiohttp import web

    from hodei.providers.local.launcher import Launcher
    from hodei.server.worker_ca import WorkerCa

log = logging.getLogger(__name__)

MAX_SOCKET_PATH = 107  # bytes of a Unix socket's path (sun_path, with its NUL: 108)


@dataclass
class _Parts:
    """What :meth:`ControlPlane._assemble` wires once the providers are known."""

    controller: JobController
    scheduler: Scheduler
    supervisor: Supervisor
    job_servicer: grpc_services.JobServicer
    worker_servicer: grpc_services.WorkerServicer
    worker_socket: WorkerSocket | None = None
    health: health_aio.HealthServicer | None = None


def _new_instance_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "hodei-" + "".join(secrets.choice(alphabet) for _ in range(8))


def _fits(path: Path) -> bool:
    """Whether ``path`` is short enough for a Unix socket."""
    return len(os.fsencode(path)) <= MAX_SOCKET_PATH


def _fitting(path: Path) -> Path | None:
    """``path`` if it is short enough for a Unix socket, else None (logged)."""
    if _fits(path):
        return path
    log.info("no worker socket at %s: over %d bytes", path, MAX_SOCKET_PATH)
    return None


def worker_address(settings: ServerSettings, grpc_port: int) -> str:
    """What workers dial: HODEI_SERVER_ADDRESS, else this host's loopback and our port."""
    if settings.server_address:
        return settings.server_address
    host = settings.grpc_address.rpartition(":")[0].strip("[]")
    if host in ("0.0.0.0", "::", "") or is_loopback_host(host):
        return f"127.0.0.1:{grpc_port}"
    return f"{host}:{grpc_port}"


class ControlPlane:
    """One control plane: see the module docstring.

    The composition root: the constructor makes every primitive (store, books, log hub,
    events, metrics, background tasks, the scheduler's wakeup); :meth:`start` adds what
    needs the store open or the port bound (instance id, worker address, providers) and
    then wires the parts, each receiving what it uses and nothing made later.
    """

    def __init__(
        self,
        settings: ServerSettings,
        *,
        providers: Sequence[Provider] | None = None,
        store: Store | None = None,
        tuning: Tuning | None = None,
        serve_http: bool = True,
        local_launcher: Launcher | None = None,
        socket_dir: Path | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """``serve_http=False``: no HTTP port at all (the embedded control plane: nothing
        scrapes it, and aiohttp is not even loaded); ``local_launcher``: a worker launcher
        already running, for the local provider; ``socket_dir``: a private directory for
        the local agents' socket, whose owner removes it (else one is made and removed)."""
        self.settings = settings
        self._serve_http = serve_http
        self._local_launcher = local_launcher
        self.clock = clock
        self.tuning = tuning or Tuning()
        self.store: Store = watched(
            store if store is not None else store_from_url(settings.database_url), clock=clock
        )
        self.metrics = Metrics(exported=serve_http)
        self.events = JobEvents()
        self.hub = LogHub()
        self.jobs = JobBook(self.store, self.events, clock=clock)
        self.workers = WorkerBook(
            self.store, self.store, token_ttl=self.tuning.token_ttl, clock=clock
        )
        self.background = Background(
            on_restart=self.metrics.count_restart,
            backoff=self.tuning.restart_backoff,
            expected=(StoreError,),
            clock=clock,
        )
        self.dispatch = Wakeup()
        self._given_providers = list(providers) if providers is not None else None
        self.providers: dict[str, Provider] = {}
        self.instance = ""
        self._grpc: grpc.aio.Server | None = None
        self._http: web.AppRunner | None = None
        self._grpc_port = 0
        self._http_port = 0
        self._certificates: CertificateFiles | None = None
        self._worker_ca: WorkerCa | None = None
        self._parts: _Parts | None = None
        self._given_socket_dir = socket_dir
        self._socket_dir: Path | None = None  # made here for the local agents' socket (if)

    @property
    def grpc_port(self) -> int:
        return self._grpc_port

    @property
    def http_port(self) -> int:
        return self._http_port

    @property
    def worker_socket(self) -> Path | None:
        """Where agents on this host reach this control plane without gRPC, while it
        serves; None when it has no such socket (no local provider, mTLS)."""
        parts = self._parts
        return parts.worker_socket.path if parts and parts.worker_socket else None

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``: where clients on this host reach the gRPC API."""
        return f"127.0.0.1:{self._grpc_port}"

    async def start(self) -> None:
        """Open, recover, and serve. Raises ListenError, StoreError, ProviderError; on
        failure whatever was already opened is closed again."""
        settings = self.settings
        tls = settings.tls is not None
        client_certificates = settings.tls is not None and settings.tls.client_ca_file is not None
        check_listen_address(
            settings.grpc_address,
            variable="HODEI_GRPC_ADDRESS",
            tls=tls,
            authenticated=bool(settings.api_token) or client_certificates,
            insecure=settings.insecure,
        )
        check_listen_address(
            settings.http_address,
            variable="HODEI_HTTP_ADDRESS",
            tls=tls,
            authenticated=True,  # /metrics and the probes are meant to be read
            insecure=settings.insecure,
        )
        # Unreadable or mismatched files stop startup here, with the variable named.
        self._certificates = CertificateFiles(settings.tls) if settings.tls else None
        try:
            await self._start()
        except BaseException:
            await self._close(0)
            raise

    async def _start(self) -> None:
        settings = self.settings
        await self.store.open()
        self.instance = settings.instance or await self.store.set_meta_default(
            "instance", _new_instance_id()
        )
        interceptors: list[grpc.aio.ServerInterceptor] = (
            [ApiTokenInterceptor(settings.api_token)] if settings.api_token else []
        )
        if self._certificates is not None and self._certificates.tls.client_ca_file:
            # mTLS: agents get certificates from the control plane's own CA. Imported here:
            # without mTLS the control plane never loads the certificate library.
            from hodei.server.worker_ca import META_KEY, WorkerCa

            stored = await self.store.set_meta_default(META_KEY, WorkerCa.create().to_pem())
            self._worker_ca = WorkerCa.from_pem(stored)
            self._certificates.trust_clients_of(self._worker_ca.cert_pem)
            interceptors.append(WorkerCertificateGuard(self._worker_ca.is_worker_certificate))
        try:
            self._grpc, self._grpc_port = grpc_services.create_server(
                settings.grpc_address,
                interceptors=interceptors,
                credentials=grpc_credentials(self._certificates) if self._certificates else None,
            )
        except RuntimeError as exc:  # grpc's "Failed to bind to address"
            raise ListenError(
                f"cannot listen on HODEI_GRPC_ADDRESS={settings.grpc_address}: {exc}"
            ) from exc
        if self._given_providers is None:
            built = await build_providers(
                settings,
                instance=self.instance,
                registry=self.metrics.registry,
                loops=self.background,
                state_dir=sidecar_directory(settings.database_url),
                local_launcher=self._local_launcher,
                clock=self.clock,
            )
        else:
            built = self._given_providers
        self.providers = {p.name: p for p in built}
        socket_path = self._worker_socket_path() if "local" in self.providers else None
        self._parts = self._assemble(worker_address(settings, self._grpc_port), socket_path)
        await self._serve(self._parts)
        log.info("control plane %s serving gRPC on %s", self.instance, self._grpc_port)

    def _worker_socket_path(self) -> Path | None:
        """Where agents on this host reach this control plane without gRPC (see
        hodei.server.worker_socket): in ``socket_dir`` if given, else beside the database
        (where a restarted control plane, and so its adopted agents, find it again), else
        in a private directory made now and removed at stop. None under mTLS, where every
        agent proves who it is with its certificate (a Unix socket carries none), or when
        no path fits a Unix socket (≤107 bytes): those agents dial over gRPC."""
        if self._worker_ca is not None:
            return None
        if self._given_socket_dir is not None:
            return _fitting(self._given_socket_dir / "worker.sock")
        beside = sidecar_directory(self.settings.database_url)
        if beside is not None and _fits(beside / "worker.sock"):
            beside.mkdir(parents=True, exist_ok=True, mode=0o700)
            return beside / "worker.sock"
        self._socket_dir = Path(tempfile.mkdtemp(prefix="hodei-"))
        return _fitting(self._socket_dir / "worker.sock")

    def _assemble(self, server_address: str, socket_path: Path | None) -> _Parts:
        """Build the parts that act on jobs, each from the primitives it needs."""
        controller = JobController(
            jobs=self.jobs,
            workers=self.workers,
            providers=self.providers,
            hub=self.hub,
            metrics=self.metrics,
            background=self.background,
            tuning=self.tuning,
            dispatch=self.dispatch,
            platform_retries=self.settings.platform_retries,
            clock=self.clock,
        )
        job_servicer, new_session = self._servicers(controller)
        scheduler = Scheduler(
            jobs=self.jobs,
            workers=self.workers,
            providers=self.providers,
            controller=controller,
            logs=self.store,
            metrics=self.metrics,
            background=self.background,
            dispatch=self.dispatch,
            clock=self.clock,
            server_address=server_address,
            server_socket=str(socket_path) if socket_path is not None else None,
            issue_certificate=self._worker_ca.issue if self._worker_ca else None,
        )
        supervisor = Supervisor(
            jobs=self.jobs,
            workers=self.workers,
            providers=self.providers,
            controller=controller,
            tuning=self.tuning,
            clock=self.clock,
        )
        return _Parts(
            controller,
            scheduler,
            supervisor,
            job_servicer,
            grpc_services.WorkerServicer(new_session),
            WorkerSocket(new_session, socket_path) if socket_path is not None else None,
        )

    def _servicers(
        self, controller: JobController
    ) -> tuple[grpc_services.JobServicer, Callable[[], WorkerSession]]:
        """The client API's gRPC adapter, and a new worker session for each agent stream
        (over gRPC or the local socket)."""
        job_servicer = grpc_services.JobServicer(
            jobs=self.jobs,
            workers=self.workers,
            controller=controller,
            logs=self.store,
            hub=self.hub,
            events=self.events,
            inputs=InputRelay(jobs=self.jobs, workers=self.workers, events=self.events),
        )

        def new_session() -> WorkerSession:
            return WorkerSession(
                jobs=self.jobs,
                workers=self.workers,
                controller=controller,
                logs=self.store,
                hub=self.hub,
                register_deadline=self.tuning.register_deadline,
                providers=self.providers,
                origin_wait=self.tuning.origin_wait,
            )

        return job_servicer, new_session

    async def _serve(self, parts: _Parts) -> None:
        """Start providers, recover, then open gRPC, HTTP and the loops."""
        assert self._grpc is not None
        self.metrics.watch(
            jobs=self.jobs.counts,
            queue_depth=self.jobs.queue_depth,
            workers=self.workers.counts_by_state,
        )
        for provider in self.providers.values():
            await provider.start(parts.controller.on_status)
        await recovery.recover(
            jobs=self.jobs,
            workers=self.workers,
            controller=parts.controller,
            providers=self.providers,
            now=self.clock.now(),
        )
        parts.health = grpc_services.add_services(
            self._grpc, parts.job_servicer, parts.worker_servicer
        )
        await grpc_services.set_serving(parts.health, True)
        if parts.worker_socket is not None:
            await parts.worker_socket.start()
        self.background.supervise("scheduler", parts.scheduler.run)
        self.background.supervise("supervisor", parts.supervisor.run)
        await self._grpc.start()
        if self._serve_http:
            await self._start_http(parts)
        self.dispatch.set()

    async def _start_http(self, parts: _Parts) -> None:
        # Imported here: aiohttp takes ≈0.1 s to load, which `hodei run` does not pay.
        from hodei.server.http import build_app, start_http
        from hodei.server.web import ConsoleApi, Gate

        try:
            self._http, self._http_port = await start_http(
                build_app(
                    store=self.store,
                    background=self.background,
                    providers=list(self.providers.values()),
                    metrics=self.metrics,
                    console=(
                        ConsoleApi(
                            jobs=self.jobs,
                            controller=parts.controller,
                            logs=self.store,
                            workers=self.store,
                        ),
                        Gate(
                            self.settings.api_token,
                            client_certificates=bool(
                                self.settings.tls and self.settings.tls.client_ca_file
                            ),
                        ),
                    ),
                ),
                self.settings.http_address,
                http_ssl_context(self._certificates) if self._certificates else None,
            )
        except OSError as exc:
            raise ListenError(
                f"cannot listen on HODEI_HTTP_ADDRESS={self.settings.http_address}: {exc}"
            ) from exc

    async def stop(self, grace: float = 5.0) -> None:
        """Drain for up to ``grace`` seconds, then close everything (workers keep running)."""
        parts = self._parts
        if parts is not None:
            parts.controller.accepting = False
            parts.scheduler.paused = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        idle = False
        if grace > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.jobs.wait_idle(), grace)
                idle = True
            if parts is not None:  # workers of finished jobs go now, not later
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        parts.controller.flush_releases(), max(deadline - loop.time(), 0.1)
                    )
        remaining = max(deadline - loop.time(), 0)
        # With no job running, the streams still open serve nobody's work: calls in
        # flight get a moment to finish, streams are then closed.
        await self._close(min(remaining, 0.5) if idle else remaining)

    async def _close(self, grace: float) -> None:
        """Close every part that was opened (once; a second call does nothing)."""
        health = self._parts.health if self._parts is not None else None
        worker_socket = self._parts.worker_socket if self._parts is not None else None
        grpc_server, http = self._grpc, self._http
        self._grpc = self._http = None
        if self._parts is not None:
            self._parts.health = None
            self._parts.worker_socket = None
        if health is not None:
            await health.enter_graceful_shutdown()
        # Agents on both transports get the same grace, at the same time.
        await asyncio.gather(
            grpc_server.stop(grace) if grpc_server is not None else asyncio.sleep(0),
            worker_socket.close(grace) if worker_socket is not None else asyncio.sleep(0),
        )
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        if http is not None:
            await http.cleanup()
        await self.background.close()
        providers, self.providers = list(self.providers.values()), {}
        for provider in providers:
            await provider.close()
        await self.store.close()
