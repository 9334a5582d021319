"""`kind: Status` errors shaped like kube-apiserver's.

Every failure the emulator reports goes through `ApiError`, which carries the HTTP code,
the `reason` word and the `details` block exactly as the real server builds them in
``k8s.io/apimachinery/pkg/api/errors``, so clients branch on the same fields.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An API failure that renders as a ``kind: Status`` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        """The ``Status`` object for the response body."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": kind} if name else {"kind": kind}
    if group:
        details["group"] = group
    return details


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    """404 ``pods "x" not found``."""
    return ApiError(
        404,
        "NotFound",
        f'{_qualified(resource, group)} "{name}" not found',
        details=_details(name, group, resource),
    )


def already_exists(resource: str, name: str, group: str = "") -> ApiError:
    """409 ``pods "x" already exists``."""
    return ApiError(
        409,
        "AlreadyExists",
        f'{_qualified(resource, group)} "{name}" already exists',
        details=_details(name, group, resource),
    )


def conflict(resource: str, name: str, group: str = "") -> ApiError:
    """409 Conflict for a stale resourceVersion on update."""
    message = (
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": '
        "the object has been modified; please apply your changes to the latest version "
        "and try again"
    )
    return ApiError(409, "Conflict", message, details=_details(name, group, resource))


def invalid(kind: str, name: str, causes: list[tuple[str, str, str]], group: str = "") -> ApiError:
    """422 Invalid; ``causes`` are (field, reason type, message) like field.Error."""
    rendered = ", ".join(f"{field}: {text}" for field, _, text in causes)
    qualified = f"{kind}.{group}" if group else kind
    message = f'{qualified} "{name}" is invalid: {rendered}'
    if len(causes) > 1:
        message = f'{qualified} "{name}" is invalid: [{rendered}]'
    details = _details(name, group, kind)
    details["causes"] = [
        {"reason": reason, "message": text, "field": field} for field, reason, text in causes
    ]
    return ApiError(422, "Invalid", message, details=details)


def forbidden(
    user: str, verb: str, resource: str, group: str, namespace: str | None, name: str = ""
) -> ApiError:
    """403 with the authorizer's message shape."""
    scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    message = (
        f"{_qualified(resource.split('/')[0], group)}{' ' + repr_name(name) if name else ''}"
        f' is forbidden: User "{user}" cannot {verb} resource "{resource}" in API group'
        f' "{group}"{scope}'
    )
    details = _details(name, group, resource.split("/")[0])
    return ApiError(403, "Forbidden", message, details=details)


def repr_name(name: str) -> str:
    """Quote a name the way Go's %q does for plain names."""
    return f'"{name}"'


def expired(message: str) -> ApiError:
    """410 Expired (too old resource version, bad continue token)."""
    return ApiError(410, "Expired", message)


def bad_request(message: str) -> ApiError:
    """400 BadRequest."""
    return ApiError(400, "BadRequest", message)


def unsupported_media_type(content_type: str) -> ApiError:
    """415 for a body the server cannot decode."""
    del content_type  # the real message lists what is accepted, not what was sent
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml, application/vnd.kubernetes.protobuf",
    )


def method_not_allowed(verb: str) -> ApiError:
    """405 for a verb the resource does not support."""
    del verb
    return ApiError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


def unauthorized() -> ApiError:
    """401 for a missing or unknown bearer token."""
    return ApiError(401, "Unauthorized", "Unauthorized")
