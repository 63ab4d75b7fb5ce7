"""Shared fixtures: bundled specs loaded once."""

import pytest

from llmperf import load_hardware, load_model


@pytest.fixture(scope="session")
def h100():
    return load_hardware("h100-sxm5-80gb")


@pytest.fixture(scope="session")
def llama8b():
    return load_model("llama-3.1-8b")
