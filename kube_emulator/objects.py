"""Object storage with one global resourceVersion, feeding the watch hub.

Stored objects are never mutated: every write stores a fresh dict, so the watch history
and in-flight responses can share them without copying. Callers that hand objects to
code which may mutate them (the kubelet) copy with `meta.clone`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from . import errors
from .meta import generate_name, label_error, rfc3339, subdomain_error
from .resources import RESOURCE_TYPES, ResourceType
from .watch import WatchEvent, WatchHub

Key = tuple[str, str]  # (namespace or "", name)
Listener = Callable[[WatchEvent], None]


def _scope(rtype: ResourceType, namespace: str | None) -> str:
    """The namespace part of a key: "" for cluster-scoped kinds, whatever the URL said."""
    return (namespace or "") if rtype.namespaced else ""


class ObjectStore:
    """CRUD on JSON objects keyed by resource, namespace and name."""

    def __init__(self, *, history: int = 10_000) -> None:
        self._objects: dict[str, dict[Key, dict[str, Any]]] = {
            rtype.plural: {} for rtype in RESOURCE_TYPES if not rtype.create_only
        }
        self._rv = 1
        self.hub = WatchHub(history)
        self._listeners: list[Listener] = []

    @property
    def resource_version(self) -> int:
        """The latest resourceVersion handed out."""
        return self._rv

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` synchronously for every event (after the watch hub)."""
        self._listeners.append(listener)

    def _bump(self) -> int:
        self._rv += 1
        return self._rv

    def _emit(
        self,
        event_type: str,
        rtype: ResourceType,
        obj: dict[str, Any],
        old: dict[str, Any] | None = None,
    ) -> None:
        rv = int(obj["metadata"]["resourceVersion"])
        namespace = obj["metadata"].get("namespace", "")
        event = WatchEvent(rv, event_type, rtype.plural, namespace, obj, old)
        self.hub.publish(event)
        for listener in self._listeners:
            listener(event)

    def compact(self) -> None:
        """Forget history: watches resuming from any earlier version get 410."""
        self.hub.compact(self._bump())

    # --- reads ---------------------------------------------------------------------------

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The stored object (shared: do not mutate) or None."""
        return self._objects[rtype.plural].get((_scope(rtype, namespace), name))

    def require(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        """The stored object, or 404 NotFound."""
        obj = self.get(rtype, namespace, name)
        if obj is None:
            raise errors.not_found(rtype.plural, name, rtype.group)
        return obj

    def list(self, rtype: ResourceType, namespace: str | None) -> list[dict[str, Any]]:
        """Objects of one namespace (or all), in key order as etcd returns them."""
        table = self._objects[rtype.plural]
        namespace = namespace if rtype.namespaced else None
        keys = sorted(table) if namespace is None else sorted(k for k in table if k[0] == namespace)
        return [table[key] for key in keys]

    # --- writes --------------------------------------------------------------------------

    def create(
        self,
        rtype: ResourceType,
        namespace: str | None,
        obj: dict[str, Any],
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Store a new object (``obj`` becomes the store's); fills server-set metadata."""
        metadata = obj.setdefault("metadata", {})
        if rtype.namespaced:
            namespace = namespace or metadata.get("namespace") or "default"
            self._require_namespace(namespace)
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = generate_name(metadata["generateName"])
        name = metadata.get("name") or ""
        self._validate_name(rtype, name)
        key = (namespace or "", name)
        if key in self._objects[rtype.plural]:
            raise errors.already_exists(rtype.plural, name, rtype.group)
        obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = rfc3339()
        for server_set in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            metadata.pop(server_set, None)
        if dry_run:
            metadata["resourceVersion"] = ""
            return obj
        metadata["resourceVersion"] = str(self._bump())
        self._objects[rtype.plural][key] = obj
        self._emit("ADDED", rtype, obj)
        return obj

    def replace(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        new: dict[str, Any],
        *,
        expect_rv: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Store ``new`` in place of the current object, keeping server-owned metadata.

        ``expect_rv`` (the resourceVersion the client read) must still be current, else
        409 Conflict. A write that changes nothing keeps the old version and emits nothing.
        """
        old = self.require(rtype, namespace, name)
        old_meta = old["metadata"]
        if expect_rv and expect_rv != old_meta["resourceVersion"]:
            raise errors.conflict(rtype.plural, name, rtype.group)
        metadata = new.setdefault("metadata", {})
        new["apiVersion"], new["kind"] = rtype.api_version, rtype.kind
        for owned in ("name", "namespace", "uid", "creationTimestamp", "generateName"):
            if owned in old_meta:
                metadata[owned] = old_meta[owned]
            else:
                metadata.pop(owned, None)
        for owned in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            if owned in old_meta:
                metadata[owned] = old_meta[owned]
        metadata["resourceVersion"] = old_meta["resourceVersion"]
        if new == old or dry_run:
            return old if new == old else new
        metadata["resourceVersion"] = str(self._bump())
        self._objects[rtype.plural][(_scope(rtype, namespace), name)] = new
        self._emit("MODIFIED", rtype, new, old)
        return new

    def remove(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        """Delete the object now; the DELETED event carries it with a fresh version."""
        old = self._objects[rtype.plural].pop((_scope(rtype, namespace), name), None)
        if old is None:
            raise errors.not_found(rtype.plural, name, rtype.group)
        final = dict(old)
        final["metadata"] = {**old["metadata"], "resourceVersion": str(self._bump())}
        self._emit("DELETED", rtype, final)
        return final

    def _require_namespace(self, namespace: str) -> None:
        ns = self._objects["namespaces"].get(("", namespace))
        if ns is None:
            raise errors.not_found("namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.ApiError(
                403,
                "Forbidden",
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated",
                details={"name": namespace, "kind": "namespaces"},
            )

    @staticmethod
    def _validate_name(rtype: ResourceType, name: str) -> None:
        if not name:
            raise errors.invalid(
                rtype.kind,
                "",
                [
                    (
                        "metadata.name",
                        "FieldValueRequired",
                        "Required value: name or generateName is required",
                    )
                ],
                rtype.group,
            )
        if rtype.group.startswith("rbac."):
            return  # RBAC names are path segments ("system:basic-user")
        check = label_error if rtype.plural in ("namespaces", "services") else subdomain_error
        problem = check(name)
        if problem:
            raise errors.invalid(
                rtype.kind, name, [("metadata.name", "FieldValueInvalid", problem)], rtype.group
            )
