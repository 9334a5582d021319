"""List responses: selectors, ``limit``/``continue`` paging and list envelopes."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any

from .. import errors
from ..resources import ResourceType

Predicate = Callable[[Mapping[str, Any]], bool]

_CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list."
)


def encode_continue(rv: int, last_key: tuple[str, str]) -> str:
    """An opaque continue token: the list's version and where the page ended."""
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": "/".join(last_key) + "\x00"})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_continue(token: str) -> tuple[int, str]:
    """(resourceVersion, start key) of a token; 400 when it is not one of ours."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise errors.bad_request(f"continue key is not valid: {exc}") from exc


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])


def page(
    objects: list[dict[str, Any]],
    *,
    predicate: Predicate,
    limit: int,
    continue_token: str | None,
    current_rv: int,
    oldest_rv: int,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Select and page ``objects`` (already in key order); returns (items, list metadata)."""
    list_rv = current_rv
    if continue_token:
        token_rv, start = decode_continue(continue_token)
        if token_rv < oldest_rv:
            raise errors.expired(_CONTINUE_TOO_OLD)
        list_rv = token_rv
        objects = [obj for obj in objects if "/".join(_key(obj)) + "\x00" > start]
    selected = [obj for obj in objects if predicate(obj)]
    metadata: dict[str, Any] = {"resourceVersion": str(list_rv)}
    if limit > 0 and len(selected) > limit:
        metadata["continue"] = encode_continue(list_rv, _key(selected[limit - 1]))
        metadata["remainingItemCount"] = len(selected) - limit
        selected = selected[:limit]
    return selected, metadata


def list_body(
    rtype: ResourceType, items: list[dict[str, Any]], metadata: dict[str, Any]
) -> dict[str, Any]:
    """The ``<Kind>List`` envelope; items carry no apiVersion/kind, as the apiserver sends."""
    stripped = [{k: v for k, v in obj.items() if k not in ("apiVersion", "kind")} for obj in items]
    return {
        "kind": f"{rtype.kind}List",
        "apiVersion": rtype.api_version,
        "metadata": metadata,
        "items": stripped,
    }
