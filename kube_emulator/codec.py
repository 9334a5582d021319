"""Request bodies in, JSON out.

Bodies arrive as JSON, YAML or Kubernetes protobuf (kubectl's ``create`` family), and
PATCH bodies carry their patch type in the Content-Type. Responses are always JSON,
which every client (kubectl included) accepts.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from aiohttp import web

from . import errors

PROTOBUF = "application/vnd.kubernetes.protobuf"
PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}


def media_type(request: web.Request) -> str:
    """The Content-Type without parameters, lower-cased."""
    return (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()


def decode(body: bytes, content_type: str) -> Any:
    """Parse a body by media type; 415 for unknown types, 400 for malformed bodies."""
    try:
        if content_type in ("application/json", "") or content_type.endswith("+json"):
            return json.loads(body or b"null")
        if content_type in ("application/yaml", "application/apply-patch+yaml", "text/yaml"):
            return yaml.safe_load(body.decode() or "null")
    except (ValueError, yaml.YAMLError) as exc:
        raise errors.bad_request(f"error decoding request body: {exc}") from exc
    if content_type == PROTOBUF:
        from .protobuf_codec import ProtobufError, decode_object

        try:
            return decode_object(body)
        except ProtobufError as exc:
            raise errors.bad_request(f"error decoding protobuf body: {exc}") from exc
    raise errors.unsupported_media_type(content_type)


async def read_object(request: web.Request) -> dict[str, Any]:
    """The request body as an object (a JSON object, not a list or scalar)."""
    body = decode(await request.read(), media_type(request))
    if not isinstance(body, dict):
        raise errors.bad_request("the request body must be an object")
    return body


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(obj, separators=(",", ":")).encode()


def respond(obj: Any, status: int = 200) -> web.Response:
    """A JSON response."""
    return web.Response(body=dumps(obj), status=status, content_type="application/json")


def error_response(error: errors.ApiError) -> web.Response:
    """The ``kind: Status`` response of an API error."""
    response = respond(error.status(), error.code)
    response.headers.update(error.headers)
    return response


def success_status(details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``Status`` with ``status: Success`` (deletecollection, some deletes)."""
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
    }
    if details is not None:
        status["details"] = details
    return status
