"""Shared fixtures: bundled specs loaded once.

Also: the repo root leaves sys.path. `python -m pytest` puts the working directory first, where
the repo's ``kernels/`` directory (installed as ``llmperf_kernels``) would shadow the PyPI package
``kernels`` (Hugging Face hub kernels, which transformers >= 5 imports when it is installed:
"cannot import name 'CUDAProperties' from 'kernels'"). Nothing imports from the root: the
package is installed, tests/ and tests/kernels/ hold their helpers.
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT]

import pytest  # noqa: E402

from llmperf import load_hardware, load_model  # noqa: E402


@pytest.fixture(scope="session")
def h100():
    return load_hardware("h100-sxm5-80gb")


@pytest.fixture(scope="session")
def llama8b():
    return load_model("llama-3.1-8b")
