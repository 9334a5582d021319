"""Authentication (bearer tokens) and impersonation.

Tokens are opaque random strings the emulator hands out in kubeconfigs: one for the
admin (group ``system:masters``) and one per ServiceAccount, which authenticates as
``system:serviceaccount:NS:NAME`` with the groups a real token carries. Requests without
a token are ``system:anonymous``. Impersonation headers (``kubectl --as``/``--as-group``)
are honoured when the caller may ``impersonate`` the target, checked through RBAC.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping

from . import errors
from .rbac import Attributes, Decision, UserInfo

AUTHENTICATED = "system:authenticated"
ADMIN = UserInfo("kubernetes-admin", ("system:masters", AUTHENTICATED))
ANONYMOUS = UserInfo("system:anonymous", ("system:unauthenticated",))


def serviceaccount_user(namespace: str, name: str) -> UserInfo:
    """The identity a ServiceAccount token authenticates as."""
    return UserInfo(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED),
    )


class Authenticator:
    """Token table; thread-safe because tests register tokens from their own thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, UserInfo] = {}
        self.admin_token = self.issue(ADMIN)

    def issue(self, user: UserInfo) -> str:
        """A new bearer token for ``user``."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = user
        return token

    def serviceaccount_token(self, namespace: str, name: str) -> str:
        """A token for ``namespace/name``."""
        return self.issue(serviceaccount_user(namespace, name))

    def authenticate(self, authorization: str | None) -> UserInfo:
        """The user of an ``Authorization`` header; 401 for an unknown token."""
        if not authorization:
            return ANONYMOUS
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            raise errors.unauthorized()
        with self._lock:
            user = self._tokens.get(token.strip())
        if user is None:
            raise errors.unauthorized()
        return user


Authorize = Callable[[UserInfo, Attributes], Decision]


def _impersonation_target(user_name: str) -> Attributes:
    if user_name.startswith("system:serviceaccount:"):
        namespace, _, name = user_name.removeprefix("system:serviceaccount:").partition(":")
        return Attributes("impersonate", "serviceaccounts", namespace=namespace, name=name)
    return Attributes("impersonate", "users", name=user_name)


def impersonate(
    user: UserInfo, headers: Mapping[str, str], groups: list[str], authorize: Authorize
) -> UserInfo:
    """Apply ``Impersonate-User``/``Impersonate-Group`` if present and permitted."""
    target = headers.get("Impersonate-User")
    if not target:
        if groups:
            raise errors.ApiError(
                500,
                "InternalError",
                "Internal error occurred: requested [] without impersonating a user",
            )
        return user
    checks = [_impersonation_target(target)]
    checks += [Attributes("impersonate", "groups", name=group) for group in groups]
    for attrs in checks:
        if not authorize(user, attrs).allowed:
            raise errors.forbidden(
                user.name, "impersonate", attrs.resource, "", attrs.namespace or None, attrs.name
            )
    if target.startswith("system:serviceaccount:") and not groups:
        namespace = target.split(":")[2]
        groups = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
    if target != "system:anonymous" and AUTHENTICATED not in groups:
        groups = [*groups, AUTHENTICATED]
    return UserInfo(target, tuple(groups))
