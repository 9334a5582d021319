from decimal import Decimal

import pytest

from hodei.domain.quantities import (
    QuantityError,
    cpu_millicores,
    memory_bytes,
    parse_quantity,
    validate_quantity,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Decimal("0.1")),
        ("0.5", Decimal("0.5")),
        ("2", Decimal(2)),
        ("128Mi", Decimal(134217728)),
        ("1Gi", Decimal(2**30)),
        ("1e3", Decimal(1000)),
        ("1k", Decimal(1000)),
        (".5", Decimal("0.5")),
        ("1E2", Decimal(100)),
    ],
)
def test_parse(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


def test_cpu_and_memory_round_up() -> None:
    assert cpu_millicores("0.1") == 100
    assert cpu_millicores("1") == 1000
    assert cpu_millicores("0.0001") == 1
    assert memory_bytes("128Mi") == 134217728
    assert memory_bytes("1.5") == 2


@pytest.mark.parametrize("text", ["abc", "", "1Qi", "Mi", "1.2.3", "-1", "1 Gi"])
def test_invalid_quantities_list_accepted_forms(text: str) -> None:
    with pytest.raises(QuantityError, match=r"Kubernetes quantity|negative"):
        validate_quantity(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1e999999999", "out of range: exponents go from -100 to 100"),
        ("1e-999999999", "out of range"),
        ("9223372036854776", "too large: at most 9223372036854775.807"),
        ("9Pi", "too large"),
        ("1Gi\n", "is not a Kubernetes quantity"),
        (" 1Gi", "is not a Kubernetes quantity"),
        ("1" * 65, "is not a Kubernetes quantity"),
    ],
)
def test_quantities_are_bounded_and_whole(text: str, message: str) -> None:
    with pytest.raises(QuantityError, match=message):
        parse_quantity(text)


def test_quantities_at_the_bounds_are_exact() -> None:
    assert parse_quantity("9223372036854775.807") == Decimal("9223372036854775.807")
    assert parse_quantity("0e100") == 0
    assert parse_quantity("7Pi") == Decimal(7 * 2**50)
    assert parse_quantity("123456789012345678901234567890e-20") == Decimal(
        "1234567890.12345678901234567890"
    )
