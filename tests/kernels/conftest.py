"""Kernel tests run on the GPU when CUDA is present, else in Triton's CPU interpreter.

TRITON_INTERPRET must be set before triton is imported anywhere, hence at conftest import. The
repo root leaves sys.path, as in tests/conftest.py (GPU calls run this directory alone with
--confcutdir): its kernels/ would shadow the PyPI package "kernels" that transformers >= 5 imports.
"""

import os
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT]

try:
    import torch
    _HAS_CUDA = torch.cuda.is_available()
except ImportError:  # pragma: no cover - CI without torch skips the module below
    _HAS_CUDA = False

if not _HAS_CUDA:
    os.environ["TRITON_INTERPRET"] = "1"
# No autotuning in tests (first candidate per key); tests that force other configs (TMA variants)
# cover those code paths, and the benchmark checks the tuned choice against the library result.
os.environ.setdefault("LLMPERF_KERNELS_TUNE", "0")

import pytest  # noqa: E402

pytest.importorskip("torch")
pytest.importorskip("triton")


@pytest.fixture
def device():
    return "cuda" if _HAS_CUDA else "cpu"
