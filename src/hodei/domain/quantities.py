"""Kubernetes resource quantities (``100m``, ``0.5``, ``128Mi``, ``1e3``), parsed without I/O.

Hodei validates quantities itself, before a pod is ever sent, so a typo such as
``--cpu abc`` or ``HODEI_K8S_DEFAULT_CPU_REQUEST=abc`` is reported with the accepted
forms instead of surfacing later as an API server 422.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, InvalidOperation, Overflow, localcontext

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
    r"(?P<num>[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?"
)
# Bounds that keep every accepted quantity exact and representable: Kubernetes keeps a
# quantity's value as a 64-bit count of its smallest unit (milli-units for CPU), so
# values whose thousandths do not fit an int64 are refused, as are absurd exponents and
# texts longer than any real quantity (which also keeps parsing cheap).
MAX_TEXT_LENGTH = 64
MAX_EXPONENT = 100
MAX_VALUE = Decimal(2**63 - 1) / 1000

ACCEPTED_FORMS = (
    "a Kubernetes quantity: a number with an optional suffix "
    "(m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei, or an exponent like 1e3), "
    "e.g. 100m, 0.5, 2, 128Mi, 1Gi; at most 64 characters and 9223372036854775.807"
)


class QuantityError(ValueError):
    """A string that is not a valid Kubernetes quantity."""


def parse_quantity(text: str) -> Decimal:
    """Return the quantity's value in base units (cores, bytes) as a Decimal.

    Raises :class:`QuantityError` for anything but a whole Kubernetes quantity (no
    surrounding spaces, no trailing newline), a negative one, or one beyond the bounds
    above (``1e999999999`` is refused, not overflowed)."""
    fits = isinstance(text, str) and len(text) <= MAX_TEXT_LENGTH
    match = _PATTERN.fullmatch(text) if fits else None
    if match is None:
        raise QuantityError(f"{_shown(text)} is not {ACCEPTED_FORMS}")
    suffix = match["suffix"] or ""
    exponent = int(suffix[1:]) if suffix[:1] in ("e", "E") else 0
    if abs(exponent) > MAX_EXPONENT:
        raise QuantityError(f"{text!r} is out of range: exponents go from -100 to 100")
    with localcontext(_EXACT):
        number = Decimal(match["num"])
        if suffix in _BINARY:
            value = number * _BINARY[suffix]
        elif suffix in _DECIMAL:
            value = number * _DECIMAL[suffix]
        else:
            value = number.scaleb(exponent)
    if value < 0:
        raise QuantityError(f"{text!r} is negative; resource quantities must be ≥ 0")
    if value > MAX_VALUE:
        raise QuantityError(f"{text!r} is too large: at most {MAX_VALUE} base units")
    return value


# Enough digits that no accepted text is rounded (64 characters of digits, times 2**60).
_EXACT = Context(prec=200, Emax=1000, Emin=-1000, traps=[InvalidOperation, Overflow])


def _shown(text: object) -> str:
    shown = repr(text)
    return shown if len(shown) <= 80 else shown[:77] + "..."


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
