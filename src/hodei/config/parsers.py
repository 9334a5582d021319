"""Parsers for single variable values. Each returns the typed value or raises ValueError
whose text says what is accepted; :mod:`hodei.config.settings` adds the variable's name."""

from __future__ import annotations

from hodei.domain.names import check_dns_label, check_dns_subdomain
from hodei.domain.quantities import ACCEPTED_FORMS, QuantityError, validate_quantity

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("accepted: 1, 0, true, false, yes, no, on, off")


def quantity(text: str) -> str:
    try:
        return validate_quantity(text.strip())
    except QuantityError:
        raise ValueError(f"accepted: {ACCEPTED_FORMS}") from None


# Kubernetes' name rules live in the domain, with the job spec's.
dns_label = check_dns_label
dns_subdomain = check_dns_subdomain


def name_list(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    for name in names:
        dns_subdomain(name)
    return names


def positive_int(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError("accepted: a whole number ≥ 1") from None
    if value < 1:
        raise ValueError("accepted: a whole number ≥ 1")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError("accepted: a whole number ≥ 0") from None
    if value < 0:
        raise ValueError("accepted: a whole number ≥ 0")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError("accepted: a number of seconds > 0, e.g. 300 or 2.5") from None
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError("accepted: a number of seconds > 0, e.g. 300 or 2.5")
    return value


def host_port(text: str) -> str:
    scheme, sep, rest = text.strip().partition("://")
    if sep:
        # gRPC targets are bare HOST:PORT; TLS is chosen by the TLS variables, not a scheme.
        example = rest or "127.0.0.1:50051"
        raise ValueError(f"a scheme ({scheme}://) is not accepted: give HOST:PORT, e.g. {example}")
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("accepted: HOST:PORT, e.g. 0.0.0.0:50051, 127.0.0.1:0 or [::]:50051")
    return text.strip()


def non_empty(text: str) -> str:
    if not text.strip():
        raise ValueError("accepted: a non-empty string")
    return text.strip()


def database_url(text: str) -> str:
    url = text.strip()
    if url == "memory://" or (url.startswith("sqlite://") and len(url) > len("sqlite://")):
        return url
    raise ValueError(
        "accepted: sqlite:///ABSOLUTE/PATH.db, sqlite://RELATIVE/PATH.db, "
        "sqlite://:memory: or memory://"
    )
