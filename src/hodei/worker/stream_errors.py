"""How a stream to the control plane fails, whatever carries it (gRPC, the local socket).

The agent only distinguishes two outcomes: the stream broke (:class:`ConnectionLost`:
reconnect, with backoff) or the control plane refused this worker
(:class:`Rejected`: reconnecting cannot help). Which gRPC status codes mean a refusal is
decided here once, for both transports.
"""

from __future__ import annotations

__all__ = ["REJECTING_CODES", "ConnectionLost", "Rejected", "ended", "failure"]

# gRPC status code names that end the stream for good.
REJECTING_CODES = frozenset(
    {"UNAUTHENTICATED", "PERMISSION_DENIED", "NOT_FOUND", "FAILED_PRECONDITION"}
)


class ConnectionLost(Exception):
    """The stream broke or could not be opened; try again later."""


class Rejected(Exception):
    """The control plane refused this worker (bad or used token, unknown worker)."""


def failure(code: str, details: str) -> Exception:
    """The exception for a stream that ended with gRPC status ``code`` (its name)."""
    text = f"{code}: {details}"
    return Rejected(text) if code in REJECTING_CODES else ConnectionLost(text)


def ended(code: str, details: str) -> Exception:
    """The exception for a stream the control plane closed with status ``code`` (its
    name) after its last message."""
    if code in REJECTING_CODES:
        return Rejected(f"{code}: {details}")
    return ConnectionLost(f"stream ended: {code}: {details}")
