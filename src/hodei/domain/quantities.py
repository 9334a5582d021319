"""Kubernetes resource quantities (``100m``, ``0.5``, ``128Mi``, ``1e3``), parsed without I/O.

Hodei validates quantities itself, before a pod is ever sent, so a typo such as
``--cpu abc`` or ``HODEI_K8S_DEFAULT_CPU_REQUEST=abc`` is reported with the accepted
forms instead of surfacing later as an API server 422.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_PATTERN = re.compile(
    r"^(?P<num>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$"
)

ACCEPTED_FORMS = (
    "a Kubernetes quantity: a number with an optional suffix "
    "(m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei, or an exponent like 1e3), "
    "e.g. 100m, 0.5, 2, 128Mi, 1Gi"
)


class QuantityError(ValueError):
    """A string that is not a valid Kubernetes quantity."""


def parse_quantity(text: str) -> Decimal:
    """Return the quantity's value in base units (cores, bytes) as a Decimal."""
    match = _PATTERN.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise QuantityError(f"{text!r} is not {ACCEPTED_FORMS}")
    try:
        number = Decimal(match["num"])
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise QuantityError(f"{text!r} is not {ACCEPTED_FORMS}") from exc
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        value = number * _BINARY[suffix]
    elif suffix in _DECIMAL:
        value = number * _DECIMAL[suffix]
    else:
        value = number * (Decimal(10) ** int(suffix[1:]))
    if value < 0:
        raise QuantityError(f"{text!r} is negative; resource quantities must be ≥ 0")
    return value


def cpu_millicores(text: str) -> int:
    """CPU quantity as whole millicores, rounded up as Kubernetes does (``0.1`` → 100)."""
    value = parse_quantity(text) * 1000
    return int(value.to_integral_value(rounding="ROUND_CEILING"))


def memory_bytes(text: str) -> int:
    """Memory quantity as whole bytes, rounded up (``128Mi`` → 134217728)."""
    value = parse_quantity(text)
    return int(value.to_integral_value(rounding="ROUND_CEILING"))


def validate_quantity(text: str) -> str:
    """Return ``text`` unchanged if it parses, else raise :class:`QuantityError`."""
    parse_quantity(text)
    return text
