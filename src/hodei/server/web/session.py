"""Who may read the console and the HTTP API: the same API token as the gRPC clients.

A script sends ``Authorization: Bearer <HODEI_API_TOKEN>``, as ``hodei`` does over gRPC.
The console asks for the token once and trades it (``POST /api/v1/session``) for an
``HttpOnly``, ``SameSite=Strict`` cookie, so the page's scripts never hold the token and
it never appears in a URL. The cookie holds an HMAC of the token rather than the token
itself: a leaked cookie opens the HTTP API only, not the gRPC API, and stops working when
the token changes. Without ``HODEI_API_TOKEN`` (a loopback-only server) everyone is let in.
"""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

__all__ = ["COOKIE", "Gate"]

COOKIE = "hodei_session"
_COOKIE_PURPOSE = b"hodei console session v1"


class Gate:
    """Checks requests against the API token and, with ``client_certificates``, the
    client certificate the TLS handshake verified (neither: no authentication)."""

    def __init__(self, api_token: str | None, *, client_certificates: bool = False) -> None:
        self._token = api_token
        self._certificates = client_certificates
        self._cookie = (
            hmac.new(api_token.encode(), _COOKIE_PURPOSE, hashlib.sha256).hexdigest()
            if api_token
            else None
        )

    @property
    def required(self) -> bool:
        return self._token is not None or self._certificates

    def token_ok(self, presented: str) -> bool:
        """Whether ``presented`` is the API token (constant time)."""
        return self._token is not None and hmac.compare_digest(
            presented.encode(), self._token.encode()
        )

    def allows(self, request: web.Request) -> bool:
        """Whether the request carries the bearer token, a valid session cookie or a
        verified client certificate."""
        if not self.required:
            return True
        transport = request.transport
        if self._certificates and transport is not None and transport.get_extra_info("peercert"):
            return True  # only a certificate the handshake verified is reported here
        if self._token is None:
            return False
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and self.token_ok(header[len("Bearer ") :]):
            return True
        cookie = request.cookies.get(COOKIE, "")
        assert self._cookie is not None
        return bool(cookie) and hmac.compare_digest(cookie.encode(), self._cookie.encode())

    def open_session(self, response: web.StreamResponse, *, secure: bool) -> None:
        """Set the session cookie on ``response`` (only after :meth:`token_ok`)."""
        if self._cookie is None:
            return  # certificates only: the handshake authenticates every request
        response.set_cookie(
            COOKIE, self._cookie, httponly=True, samesite="Strict", secure=secure, path="/"
        )

    @staticmethod
    def close_session(response: web.StreamResponse) -> None:
        response.del_cookie(COOKIE, path="/")
