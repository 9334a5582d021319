"""Mounting the console on the control plane's aiohttp application.

``/`` serves the page, ``/assets/…`` its scripts and styles (all shipped in the wheel, no
CDN), ``/api/v1/session`` trades the API token for a session cookie, and ``/api/v1/…``
the JSON API behind the :class:`~hodei.server.web.session.Gate`. Every response of the
console carries a Content-Security-Policy that allows only the server's own scripts and
styles: together with rendering job data as text (never as markup), a job that prints
``<script>`` shows text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from hodei.server.web.api import ApiError, ConsoleApi
from hodei.server.web.session import Gate

__all__ = ["ASSETS", "add_console"]

ASSETS = Path(__file__).parent / "assets"
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_OPEN_PATHS = frozenset({"/api/v1/session"})
_UNAUTHENTICATED = (
    "missing or wrong API token: send 'Authorization: Bearer <HODEI_API_TOKEN>' "
    "or log in to the console"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _gatekeeper(gate: Gate) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        console = request.path == "/" or request.path.startswith(("/api/", "/assets/"))
        if not console:  # /metrics and the probes stay as they are
            return await handler(request)
        if (
            request.path.startswith("/api/")
            and request.path not in _OPEN_PATHS
            and not gate.allows(request)
        ):
            response: web.StreamResponse = web.json_response(
                {"error": _UNAUTHENTICATED},
                status=401,
            )
        else:
            try:
                response = await handler(request)
            except ApiError as exc:
                response = web.Response(
                    status=exc.status_code, text=exc.text, content_type="application/json"
                )
        response.headers.update(_SECURITY_HEADERS)
        return response

    return middleware


def _session_handlers(gate: Gate) -> list[web.RouteDef]:
    async def status(request: web.Request) -> web.Response:
        allowed = gate.allows(request)
        return web.json_response(
            {"auth_required": gate.required, "authenticated": allowed},
            status=200 if allowed else 401,
        )

    async def login(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise ApiError(400, 'body: give {"token": "<HODEI_API_TOKEN>"} as JSON')
        if gate.required and not gate.token_ok(token):
            raise ApiError(401, "wrong API token (or present a client certificate)")
        response = web.json_response({"auth_required": gate.required, "authenticated": True})
        if gate.required:
            gate.open_session(response, secure=request.secure)
        return response

    async def logout(request: web.Request) -> web.Response:
        response = web.json_response({"auth_required": gate.required, "authenticated": False})
        gate.close_session(response)
        return response

    return [
        web.get("/api/v1/session", status),
        web.post("/api/v1/session", login),
        web.delete("/api/v1/session", logout),
    ]


def add_console(app: web.Application, api: ConsoleApi, gate: Gate) -> None:
    """Add the page, its assets, the session endpoints and ``/api/v1`` to ``app``."""

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(ASSETS / "index.html")

    app.middlewares.append(_gatekeeper(gate))
    app.router.add_get("/", index)
    app.router.add_static("/assets/", ASSETS, follow_symlinks=False)
    app.router.add_routes(_session_handlers(gate))
    app.router.add_routes(api.routes())
