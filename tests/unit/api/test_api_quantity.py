"""The quantity and memory-size parsers: known values and round trips."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.api.quantity import (
    QuantityError,
    format_bytes,
    format_memory_size,
    is_quantity,
    parse_memory_size,
    parse_quantity,
    quantity_bytes,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4Gi", Decimal(4 * 1024**3)),
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        ("1.5G", Decimal(1_500_000_000)),
        ("1e3", Decimal(1000)),
        ("1E-2", Decimal("0.01")),
        (".5Ki", Decimal(512)),
        ("+1k", Decimal(1000)),
        ("-1", Decimal(-1)),
        ("100n", Decimal("0.0000001")),
        ("3Ei", Decimal(3 * 1024**6)),
        (7, Decimal(7)),
    ],
)
def test_known_quantities(text: str | int, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text", ["", "Gi", "4GB", "4 Gi", " 4Gi", "4gi", "1.2.3", "4Ki5", "e3", "1e1.5", "--1"]
)
def test_invalid_quantities(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)
    assert not is_quantity(text)


def test_booleans_are_not_quantities() -> None:
    assert not is_quantity(True)


def test_quantity_bytes_rounds_up() -> None:
    assert quantity_bytes("1500m") == 2
    assert quantity_bytes("1Mi") == 1048576


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("100MB", 100 * 1024**2),
        ("100mb", 100 * 1024**2),
        ("0.1GB", 107374183),
        ("1GB", 1024**3),
        ("1 GB", 1024**3),
        ("512Mi", 512 * 1024**2),
        ("1G", 10**9),
        ("1k", 1000),
        ("1024", 1024),
        (".5KB", 512),
    ],
)
def test_known_memory_sizes(text: str, size: int) -> None:
    assert parse_memory_size(text) == size


@pytest.mark.parametrize("text", ["", "MB", "100 MiB", "-1MB", "1XB", "1.GB"])
def test_invalid_memory_sizes(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_memory_size(text)


@given(st.integers(min_value=0, max_value=2**70))
def test_format_bytes_round_trips(size: int) -> None:
    assert quantity_bytes(format_bytes(size)) == size


@given(st.integers(min_value=0, max_value=2**50))
def test_format_memory_size_round_trips(size: int) -> None:
    assert parse_memory_size(format_memory_size(size)) == size


@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(["", "Ki", "Mi", "Gi", "Ti", "k", "M", "G", "T", "m"]),
)
def test_suffix_multiplies(number: int, suffix: str) -> None:
    factor = {"": 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "k": 10**3, "M": 10**6}
    factor |= {"G": 10**9, "T": 10**12}
    if suffix == "m":
        assert parse_quantity(f"{number}m") * 1000 == number
    else:
        assert parse_quantity(f"{number}{suffix}") == number * factor[suffix]


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=-5, max_value=12))
def test_exponent_form(number: int, exponent: int) -> None:
    assert parse_quantity(f"{number}e{exponent}") == Decimal(number).scaleb(exponent)
