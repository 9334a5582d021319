"""PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge.

Strategic merge patch is JSON merge patch plus two things clients rely on: lists of
objects with a merge key (containers by ``name``, ports by ``containerPort``/``port`` ...)
merge element-wise instead of being replaced, and ``$patch``/``$setElementOrder``/
``$retainKeys``/``$deleteFromPrimitiveList`` directives. The merge-key table covers the
built-in kinds the emulator serves. Pure functions, no I/O.
"""

from __future__ import annotations

from typing import Any

from .meta import clone


class PatchError(ValueError):
    """The patch cannot be applied (bad pointer, failed test, wrong shape)."""


# list field name -> candidate merge keys (first one present in the element wins)
MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "ports": ("containerPort", "port"),
    "imagePullSecrets": ("name",),
    "conditions": ("type",),
    "hostAliases": ("ip",),
    "ownerReferences": ("uid",),
    "containerStatuses": ("name",),
    "initContainerStatuses": ("name",),
    "secrets": ("name",),
}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _merge_key(field: str, items: list[Any]) -> str | None:
    for candidate in MERGE_KEYS.get(field, ()):
        if all(isinstance(item, dict) and candidate in item for item in items):
            return candidate
    return None


def _merge_list(field: str, target: Any, patch: list[Any]) -> list[Any]:
    key = _merge_key(field, patch)
    if key is None or not isinstance(target, list):
        return [
            strategic_merge(None, item) if isinstance(item, dict) else clone(item) for item in patch
        ]
    result = [clone(item) for item in target]
    for item in patch:
        index = next(
            (
                i
                for i, old in enumerate(result)
                if isinstance(old, dict) and old.get(key) == item[key]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            result.append(strategic_merge(None, item))
        else:
            result[index] = strategic_merge(result[index], item)
    return result


def strategic_merge(target: Any, patch: Any) -> Any:
    """Apply a strategic merge patch to ``target`` (which is not modified)."""
    if not isinstance(patch, dict):
        return clone(patch)
    if patch.get("$patch") == "replace":
        return {k: clone(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            remove = set(value or [])
            result[field] = [v for v in result.get(field) or [] if v not in remove]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        else:
            merged = strategic_merge(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    return result


# --- JSON patch ------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> tuple[Any, str]:
    if not parts:
        raise PatchError("cannot operate on the document root")
    current = doc
    for part in parts[:-1]:
        current = _child(current, part)
    return current, parts[-1]


def _child(container: Any, part: str) -> Any:
    try:
        if isinstance(container, list):
            return container[int(part)]
        return container[part]
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise PatchError(f"path element {part!r} not found") from exc


def _get(doc: Any, path: str) -> Any:
    current = doc
    for part in _pointer(path):
        current = _child(current, part)
    return current


def _add(doc: Any, path: str, value: Any) -> None:
    parent, last = _parent(doc, _pointer(path))
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if index > len(parent):
            raise PatchError(f"index {index} out of range")
        parent.insert(index, value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise PatchError(f"cannot add to {path!r}")


def _remove(doc: Any, path: str) -> Any:
    parent, last = _parent(doc, _pointer(path))
    try:
        if isinstance(parent, list):
            return parent.pop(int(last))
        return parent.pop(last)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise PatchError(f"unable to remove nonexistent key: {last}") from exc


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 operations applied to a copy of ``target``."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = clone(target)
    for op in operations:
        kind, path = op.get("op"), op.get("path", "")
        if kind == "add":
            _add(doc, path, clone(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _remove(doc, path)
            _add(doc, path, clone(op.get("value")))
        elif kind == "move":
            _add(doc, path, _remove(doc, op["from"]))
        elif kind == "copy":
            _add(doc, path, clone(_get(doc, op["from"])))
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise PatchError(f"testing value {path} failed")
        else:
            raise PatchError(f"unexpected kind: {kind}")
    return doc
