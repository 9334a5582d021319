"""The HTTP side: ``/metrics`` for Prometheus, ``/healthz`` (alive) and ``/readyz`` (ready),
and the web console with its JSON API (:mod:`hodei.server.web`) when one is given.

Ready means the store answers, every provider reports healthy and no background task is
down (waiting to restart after a failure); otherwise ``/readyz``
answers 503 with the failing part's message, so a Kubernetes readiness probe and a
person with curl see the same reason.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hodei.providers.base import Provider
from hodei.server.metrics import Metrics
from hodei.server.web import ConsoleApi, Gate, add_console
from hodei.store.base import Store, StoreError
from hodei.supervision import Background


async def readiness(
    store: Store, providers: Sequence[Provider], background: Background | None = None
) -> tuple[bool, str]:
    """Whether the control plane can serve jobs now, and a one-line-per-part report:
    the store, each provider, and each background task that is down (restarting)."""
    lines = []
    ready = True
    for task, why in sorted((background.down() if background else {}).items()):
        ready = False
        lines.append(f"task {task}: down: {why}")
    try:
        await store.ping()
        lines.append("store: ok")
    except StoreError as exc:
        ready = False
        lines.append(f"store: {exc}")
    for provider in providers:
        health = await provider.health()
        ready = ready and health.ok
        lines.append(
            f"provider {provider.name}: {'ok' if health.ok else 'failing'}"
            + (f": {health.message}" if health.message else "")
        )
    return ready, "\n".join(lines) + "\n"


def build_app(
    *,
    store: Store,
    providers: Sequence[Provider],
    metrics: Metrics,
    background: Background | None = None,
    console: tuple[ConsoleApi, Gate] | None = None,
) -> web.Application:
    """The aiohttp application serving the three endpoints (and the console, if given)."""

    async def metrics_handler(request: web.Request) -> web.Response:
        if metrics.registry is None:  # Metrics(exported=False) record nothing to show
            raise web.HTTPNotFound(text="metrics are not exported\n")
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(request: web.Request) -> web.Response:
        ready, report = await readiness(store, providers, background)
        return web.Response(text=report, status=200 if ready else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if console is not None:
        add_console(app, *console)
    return app


async def start_http(
    app: web.Application, address: str, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on ``address`` (HOST:PORT, port 0 picks one), over TLS when
    ``ssl_context`` is given; returns the runner and the bound port."""
    host, _, port = address.rpartition(":")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host.strip("[]"), int(port), ssl_context=ssl_context)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else int(port)
    return runner, int(bound)
