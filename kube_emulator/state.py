"""Everything a request handler needs, in one value passed down from the app."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .auth import Authenticator
from .faults import Faults, RequestCounter
from .rbac import Attributes, Decision, UserInfo, authorize
from .requestinfo import RequestInfo
from .resources import resource_type
from .store import Store

USER_KEY = web.RequestKey("user", UserInfo)
INFO_KEY = web.RequestKey("info", RequestInfo)
_CRB, _RB = resource_type("clusterrolebindings"), resource_type("rolebindings")
_CR, _ROLE = resource_type("clusterroles"), resource_type("roles")


class StorePolicy:
    """`rbac.Policy` reading roles and bindings from the store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def cluster_role_bindings(self) -> Iterable[dict[str, Any]]:
        return self._store.list(_CRB, None)

    def role_bindings(self, namespace: str) -> Iterable[dict[str, Any]]:
        return self._store.list(_RB, namespace)

    def cluster_role(self, name: str) -> dict[str, Any] | None:
        return self._store.get(_CR, None, name)

    def role(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._store.get(_ROLE, namespace, name)


@dataclass
class EmulatorState:
    """Shared state of one emulator instance."""

    store: Store
    authenticator: Authenticator
    faults: Faults
    counter: RequestCounter
    kubernetes_version: str = "1.33"
    server_address: str = "127.0.0.1:0"
    bookmark_interval: float = 1.0
    watch_timeout: float = 1800.0

    def authorize(self, user: UserInfo, attrs: Attributes) -> Decision:
        """RBAC decision against the current store contents."""
        return authorize(StorePolicy(self.store), user, attrs)
