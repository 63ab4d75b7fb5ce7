"""The core's shared FLOP/byte formulas (llmperf.ops.formulas), imported for the kernel harness.

If the llmperf package cannot be imported as a whole (e.g. a dependency of another core module
is missing on a bare GPU machine), the SAME source file llmperf/ops/formulas.py is loaded on its
own, so "achieved vs peak" keeps one definition.
"""

from __future__ import annotations

try:
    from llmperf.ops.formulas import (attention_flops, attention_io_bytes, causal_pairs,  # noqa: F401
                                      gemm_bytes, gemm_flops)
except ImportError:  # pragma: no cover - exercised only where llmperf's deps are missing
    import importlib.util
    import pathlib
    import warnings

    _path = pathlib.Path(__file__).resolve().parent.parent / "llmperf" / "ops" / "formulas.py"
    _spec = importlib.util.spec_from_file_location("_llmperf_formulas", _path)
    _mod = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_mod)
    warnings.warn(f"llmperf not importable; loaded {_path} directly", stacklevel=2)
    attention_flops, attention_io_bytes, causal_pairs = _mod.attention_flops, _mod.attention_io_bytes, _mod.causal_pairs
    gemm_bytes, gemm_flops = _mod.gemm_bytes, _mod.gemm_flops
