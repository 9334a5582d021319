"""Small helpers on JSON-shaped objects: copying, timestamps, names."""

from __future__ import annotations

import random
import re
import string
import time
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

T = TypeVar("T")

_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the apiserver's, no vowels
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def clone(value: T) -> T:
    """Deep copy of a JSON value (faster than copy.deepcopy for plain dicts/lists)."""
    return cast(T, _clone(value))


def _clone(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clone(item) for item in value]
    return value


def rfc3339(ts: float | None = None) -> str:
    """Seconds-precision UTC time as the API serializes metav1.Time."""
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def generate_name(prefix: str, rng: random.Random | None = None) -> str:
    """``prefix`` plus five random characters, as generateName does."""
    pick = (rng or random).choice
    return prefix + "".join(pick(_GENERATE_ALPHABET) for _ in range(5))


def subdomain_error(name: str) -> str | None:
    """The apiserver's message when ``name`` is not an RFC 1123 subdomain, else None."""
    if len(name) <= 253 and DNS_SUBDOMAIN.match(name):
        return None
    return (
        f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
        "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
        "character (e.g. 'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    )


def label_error(name: str) -> str | None:
    """The apiserver's message when ``name`` is not an RFC 1123 label, else None."""
    if len(name) <= 63 and DNS_LABEL.match(name):
        return None
    return (
        f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case '
        "alphanumeric characters or '-', and must start and end with an alphanumeric "
        "character (e.g. 'my-name',  or '123-abc', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    )


def random_suffix(length: int = 5) -> str:
    """Lower-case alphanumerics for generated identifiers."""
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(length))
