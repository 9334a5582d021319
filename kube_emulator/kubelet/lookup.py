"""ConfigMaps and Secrets read from the emulator's store for env resolution."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kube_emulator.resources import by_plural


class StoreLookup:
    """:class:`kube_emulator.kubelet.env.ObjectLookup` over the emulator's store."""

    def __init__(self, store: object) -> None:
        self._store = store

    def _get(self, plural: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        get_object = getattr(self._store, "get_object", None)
        if get_object is not None:
            found: Mapping[str, Any] | None = get_object(plural, namespace, name)
            return found
        # The store's generic read, when it offers no kubelet-specific one.
        rtype = by_plural(plural)
        get = getattr(self._store, "get", None)
        if rtype is None or get is None:
            return None
        obj: Mapping[str, Any] | None = get(rtype, namespace, name)
        return obj

    def get_configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._get("configmaps", namespace, name)

    def get_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._get("secrets", namespace, name)
