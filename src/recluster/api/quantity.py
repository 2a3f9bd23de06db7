"""Sizes, in one place: Kubernetes quantities ("4Gi", "500m", "1e3") and database memory sizes ("100MB").

Kubernetes quantities follow k8s.io/apimachinery/pkg/api/resource: a signed decimal number and one
suffix, binary (Ki..Ei), decimal (n, u, m, "", k, M..E) or a decimal exponent (e3, E-2). Parsing is
exact (Decimal), never float.

Database memory sizes (REDB `memorySize`) are written the Redis way, "100MB", "0.1GB", "1GB". Like
redis.conf, a unit that ends in "B" is binary (1KB = 1024 bytes, 1GB = 1024**3), which is also how
Redis Enterprise reads the REDB field. Plain Kubernetes quantities ("512Mi", "1G") are accepted too.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

# The exact grammar of resource.Quantity, also used as the CRD pattern.
QUANTITY_PATTERN = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"  # noqa: E501
_QUANTITY_RE = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))?$"
)

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}

# REDB memory sizes: a number and an optional unit, case-insensitive like redis.conf ("100mb").
MEMORY_SIZE_PATTERN = r"^([0-9]+(\.[0-9]+)?|\.[0-9]+) ?([KkMmGgTtPpEe][Ii]|[KkMmGgTt]?[Bb]|[KkMmGgTtPpEe])?$"
_MEMORY_RE = re.compile(
    r"^(?P<number>[0-9]+(?:\.[0-9]+)?|\.[0-9]+) ?"
    r"(?P<unit>[KkMmGgTtPpEe][Ii]|[KkMmGgTt]?[Bb]|[KkMmGgTtPpEe])?$"
)
_REDIS_UNITS = {"B": 0, "KB": 1, "MB": 2, "GB": 3, "TB": 4}


class QuantityError(ValueError):
    """A string that is not a valid quantity. The message names the value and the expected syntax."""


def parse_quantity(value: str | int | float) -> Decimal:
    """The exact value of a Kubernetes quantity: "4Gi" -> 4294967296, "500m" -> 0.5, "1e3" -> 1000."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a Kubernetes quantity")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    match = _QUANTITY_RE.match(value.strip()) if isinstance(value, str) else None
    if match is None or value.strip() != value:
        raise QuantityError(f"{value!r} is not a Kubernetes quantity (examples: 4Gi, 500m, 2, 1.5G)")
    number = Decimal(match["number"])
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * (Decimal(1024) ** _BINARY[suffix])
    if suffix in _DECIMAL:
        return number.scaleb(_DECIMAL[suffix])
    try:
        exponent = Decimal(suffix[1:])
    except InvalidOperation as error:  # pragma: no cover - the regex admits only numbers here
        raise QuantityError(f"{value!r} has an invalid exponent") from error
    if exponent != exponent.to_integral_value():
        raise QuantityError(f"{value!r} has a fractional exponent")
    return number.scaleb(int(exponent))


def quantity_bytes(value: str | int | float) -> int:
    """A quantity of bytes as an integer, rounded up the way Kubernetes rounds (`Value()`)."""
    return int(parse_quantity(value).to_integral_value(rounding=ROUND_CEILING))


def is_quantity(value: object) -> bool:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return False
    try:
        parse_quantity(value)
    except QuantityError:
        return False
    return True


def format_bytes(size: int) -> str:
    """The shortest exact Kubernetes quantity for a byte count: 4294967296 -> "4Gi", 1500 -> "1500"."""
    if size < 0:
        raise ValueError("a size in bytes cannot be negative")
    for suffix, power in sorted(_BINARY.items(), key=lambda item: -item[1]):
        unit = 1024**power
        if size and size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


def parse_memory_size(value: str) -> int:
    """Bytes of a REDB memory size. "100MB" -> 104857600 (a unit ending in B is binary, as in redis.conf),
    "1Gi" -> 1073741824, "1G" -> 1000000000 (a bare letter is decimal, as in redis.conf and Kubernetes).
    Fractions round up to a whole byte."""
    match = _MEMORY_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise QuantityError(f"{value!r} is not a memory size (examples: 100MB, 0.5GB, 1GB, 512Mi)")
    number = Decimal(match["number"])
    unit = (match["unit"] or "B").upper()
    if unit in _REDIS_UNITS:
        exact = number * (Decimal(1024) ** _REDIS_UNITS[unit])
    elif unit.endswith("I"):
        exact = number * (Decimal(1024) ** _BINARY[unit[0] + "i"])
    else:
        exact = number.scaleb(_DECIMAL["k" if unit == "K" else unit])
    return int(exact.to_integral_value(rounding=ROUND_CEILING))


def format_memory_size(size: int) -> str:
    """The shortest exact Redis-style memory size: 104857600 -> "100MB"; parse_memory_size round-trips it."""
    if size < 0:
        raise ValueError("a size in bytes cannot be negative")
    for unit, power in sorted(_REDIS_UNITS.items(), key=lambda item: -item[1]):
        scale = 1024**power
        if size and size % scale == 0:
            return f"{size // scale}{unit}"
    return f"{size}B"
