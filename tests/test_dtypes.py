"""Number formats: exact bytes including scales."""

import pytest

from llmperf.dtypes import kv_format, weight_format
from llmperf.errors import LlmperfError


def test_int4_group128_is_4_125_bits():
    # 4 data bits + one 16-bit scale per 128 elements = 4 + 16/128 (DESIGN.md rule 3).
    assert weight_format("int4").bits_per_element(4096) == pytest.approx(4.125)
    assert weight_format("int4").bytes_for(14336, 4096) == 14336 * 4096 * 4 / 8 + 14336 * 32 * 2


def test_group_rounds_up_on_ragged_rows():
    # a row of 200 elements needs 2 groups of 128 -> 2 scales
    assert weight_format("int4").bytes_for(1, 200) == 200 * 0.5 + 2 * 2


def test_per_channel_int8_and_per_tensor_fp8():
    assert weight_format("int8").bytes_for(10, 64) == 10 * 64 + 10 * 2
    assert weight_format("fp8").bytes_for(10, 64) == 10 * 64 + 4


def test_kv_formats():
    assert kv_format("fp8").bytes_for(8, 128) == 8 * 128
    assert kv_format("int4").bytes_for(8, 128) == 8 * 64 + 8 * 2


def test_unknown_dtype_names_the_flag():
    with pytest.raises(LlmperfError, match="--weights"):
        weight_format("int3")
