"""Human formatting of SI values (``12.4 ms``, ``16.1 GB``, ``3.35 TB/s``): rendering only.

Values inside llmperf are SI floats whose column name carries the unit (DESIGN.md rules 3, 8);
this module turns a (column name, value) pair into text. Decimal prefixes throughout (1 GB =
1e9 bytes), matching the hardware datasheets the specs quote. No third-party imports.
"""

from __future__ import annotations

import math

_UP = ["", "k", "M", "G", "T", "P", "E"]
_DOWN = [("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)]


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def sig(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits and no exponent (``12.4``, ``989``, ``0.5``)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(digits - 1 - int(math.floor(math.log10(abs(value)))), 0)
    return f"{value:.{decimals}f}"


def si(value: float, unit: str, digits: int = 3) -> str:
    """Scale by powers of 1000: ``si(1.6e10, "B") == "16.1 GB"``."""
    if _is_missing(value):
        return "—"
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}"
    exp = min(max(int(math.floor(math.log10(abs(value)) / 3)), 0), len(_UP) - 1)
    scaled = value / 1000.0**exp
    if abs(float(sig(scaled, digits))) >= 1000 and exp < len(_UP) - 1:  # 999.96 k -> 1.00 M
        exp, scaled = exp + 1, float(sig(scaled, digits)) / 1000.0
    return f"{sig(scaled, digits)} {_UP[exp]}{unit}"


def seconds(value: float) -> str:
    """``0.0124`` -> ``12.4 ms``; ``75.0`` -> ``75.0 s``."""
    if _is_missing(value):
        return "—"
    for unit, scale in _DOWN:
        if abs(value) >= scale or unit == "ns":
            return f"{sig(value / scale)} {unit}"
    return f"{value:g} s"


def count(value: float) -> str:
    """Parameter-style counts: ``8.03e9`` -> ``8.03B``, ``1.2e6`` -> ``1.20M``."""
    if _is_missing(value):
        return "—"
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{sig(value / scale)}{suffix}"
    return f"{value:g}" if float(value).is_integer() else sig(value)


def integer(value: float) -> str:
    """Token counts and batch sizes: ``32768.0`` -> ``32,768``."""
    if _is_missing(value):
        return "—"
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def usd(value: float) -> str:
    if _is_missing(value):
        return "—"
    return f"${value:,.2f}" if abs(value) >= 1 else f"${sig(value)}"


def _plain(value) -> str:
    if _is_missing(value):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return integer(value) if value.is_integer() and abs(value) < 1e15 else sig(value)
    return str(value)


# (suffix of the column name, formatter), most specific first.
_BY_SUFFIX = [
    ("_tokens_per_s", lambda v: f"{count(v)} tok/s"),
    ("_bytes_per_token", lambda v: si(v, "B/token")),
    ("_bytes_per_s", lambda v: si(v, "B/s")),
    ("_flop_per_s", lambda v: si(v, "FLOP/s")),
    ("_flop_per_byte", lambda v: sig(v) if not _is_missing(v) else "—"),
    ("_bytes", lambda v: si(v, "B")),
    ("_flops", lambda v: si(v, "FLOP")),
    ("flops", lambda v: si(v, "FLOP")),
    ("_usd_per_hour", lambda v: f"{usd(v)}/h" if not _is_missing(v) else "—"),
    ("_share", lambda v: f"{100 * v:.1f} %" if not _is_missing(v) else "—"),
    ("_s", seconds),
]
_COUNT_PREFIX = ("params",)
_COST_PREFIX = ("cost_usd",)


def cell(column: str, value) -> str:
    """Text of one value, chosen by the unit its column name carries."""
    if isinstance(value, (bool, str)) or _is_missing(value):
        return _plain(value)
    if column.startswith(_COST_PREFIX):
        return usd(value)
    if column.startswith(_COUNT_PREFIX):
        return count(value)
    for suffix, fmt in _BY_SUFFIX:
        if column.endswith(suffix):
            return fmt(float(value))
    return _plain(float(value) if isinstance(value, (int, float)) else value)
