"""Parse quantities with explicit units into SI floats.

Spec files carry units (``3.35 TB/s``, ``80 GB``, ``989.4 TFLOP/s``); inside the package every
value is an SI float whose name carries the unit (``memory_bandwidth_bytes_per_s``). A bare number
in a dimensional field is an error. Decimal prefixes are powers of 1000 and binary prefixes
powers of 1024 (IEC 80000-13): ``GB`` != ``GiB``.
"""

from __future__ import annotations

import re

_DECIMAL = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50}

# dimension -> {unit suffix (after the prefix) -> SI factor of the suffix}
_UNITS: dict[str, dict[str, float]] = {
    "bytes": {"B": 1.0},
    "bytes_per_s": {"B/s": 1.0},
    "flop_per_s": {"FLOP/s": 1.0, "FLOPS": 1.0, "OP/s": 1.0, "OPS": 1.0},
    "watts": {"W": 1.0},
    "hertz": {"Hz": 1.0},
    "seconds": {"s": 1.0},
    "usd_per_hour": {"USD/h": 1.0, "$/h": 1.0},
}
_TIME_PREFIX = {"ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\s].*?)?\s*$")


def _unit_factor(unit: str, dimension: str) -> float | None:
    if dimension == "seconds" and unit in _TIME_PREFIX:
        return _TIME_PREFIX[unit]
    for suffix, base in _UNITS[dimension].items():
        if unit.endswith(suffix):
            prefix = unit[: -len(suffix)]
            if prefix in _BINARY and dimension in ("bytes", "bytes_per_s"):
                return base * _BINARY[prefix]
            if prefix in _DECIMAL:
                return base * _DECIMAL[prefix]
    return None


def allowed_units(dimension: str) -> str:
    """A short human list of accepted units for a dimension (for error messages)."""
    examples = {
        "bytes": "B, KB, MB, GB, TB, KiB, MiB, GiB",
        "bytes_per_s": "GB/s, TB/s, GiB/s",
        "flop_per_s": "TFLOP/s, PFLOP/s, TOP/s (integer ops)",
        "watts": "W, kW",
        "hertz": "MHz, GHz",
        "seconds": "s, ms, us, ns",
        "usd_per_hour": "USD/h",
    }
    return examples[dimension]


def parse_quantity(value: object, dimension: str) -> float:
    """Parse ``"3.35 TB/s"`` for dimension ``bytes_per_s`` into ``3.35e12``.

    Raises ``ValueError`` (with the accepted units) for a bare number, an unknown unit or a
    negative/non-finite value. Numbers already given as SI floats are not accepted from spec
    files: the unit must be written.
    """
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"needs a unit, e.g. '{value} {allowed_units(dimension).split(',')[0]}'"
                         f" (accepted: {allowed_units(dimension)})")
    m = _QUANTITY.match(value)
    if not m or m.group(2) is None:
        raise ValueError(f"{value!r} needs a unit (accepted: {allowed_units(dimension)})")
    number, unit = float(m.group(1)), m.group(2).strip()
    factor = _unit_factor(unit, dimension)
    if factor is None:
        raise ValueError(f"unknown unit {unit!r} in {value!r} (accepted: {allowed_units(dimension)})")
    result = number * factor
    if not (result >= 0.0) or result == float("inf"):
        raise ValueError(f"{value!r} must be a finite, non-negative quantity")
    return result


def parse_count(text: str) -> int:
    """Parse a token count such as ``2048``, ``2k``, ``32K`` or ``1M`` (k = 1024 for lengths).

    Context lengths are conventionally binary (``32k`` = 32768 tokens, as in model cards).
    """
    s = str(text).strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmM]?)", s)
    if not m:
        raise ValueError(f"'{text}' is not a count (write e.g. 2048, 2k or 1M)")
    scale = {"": 1, "k": 1024, "K": 1024, "m": 1024**2, "M": 1024**2}[m.group(2)]
    value = float(m.group(1)) * scale
    if value != int(value):
        raise ValueError(f"'{text}' is not a whole number of tokens")
    return int(value)
