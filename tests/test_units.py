"""Unit parsing: explicit units, SI floats, GB != GiB, bare numbers refused."""

import pytest

from llmperf.units import parse_count, parse_quantity


@pytest.mark.parametrize("text,dim,expected", [
    ("3.35 TB/s", "bytes_per_s", 3.35e12),
    ("80 GB", "bytes", 80e9),
    ("80 GiB", "bytes", 80 * 2**30),
    ("50 MB", "bytes", 50e6),
    ("989.4 TFLOP/s", "flop_per_s", 989.4e12),
    ("1978.9 TOP/s", "flop_per_s", 1978.9e12),
    ("1980 MHz", "hertz", 1.98e9),
    ("700 W", "watts", 700.0),
    ("2.5 USD/h", "usd_per_hour", 2.5),
    ("5 us", "seconds", 5e-6),
])
def test_parse_quantity(text, dim, expected):
    assert parse_quantity(text, dim) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("value,dim", [(80, "bytes"), ("80", "bytes"), ("80 GB/s", "bytes"),
                                       ("3 TFLOP", "flop_per_s"), ("-1 GB", "bytes"),
                                       ("inf GB", "bytes"), (True, "bytes")])
def test_bad_quantities_are_refused(value, dim):
    with pytest.raises(ValueError):
        parse_quantity(value, dim)


def test_counts_are_binary_for_lengths():
    assert parse_count("2k") == 2048
    assert parse_count("32K") == 32768
    assert parse_count("1M") == 1024**2
    assert parse_count("100") == 100
    for bad in ("1.5", "-3", "abc", "2kk"):
        with pytest.raises(ValueError):
            parse_count(bad)
