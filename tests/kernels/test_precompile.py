"""The parallel pre-compilation of the calibration sweep (kernels/precompile.py), on CPU: it
covers every work item of the timed sweep, and its recorder stand-in keeps nothing."""

from llmperf_kernels.calibrate import ATTENTION_HEADS, GRIDS, gemm_shapes
from llmperf_kernels.precompile import _CompileOnly, work_items


def test_work_items_cover_the_sweep_once():
    items = work_items(GRIDS["quick"])
    assert [s for kind, s in items if kind == "gemm"] == gemm_shapes(GRIDS["quick"]["models"])
    assert [h for kind, h in items if kind == "attention"] == list(ATTENTION_HEADS)
    assert [kind for kind, _ in items].count("paged") == 1
    assert len(items) == len(set(items))


def test_compile_only_recorder_runs_once_and_keeps_nothing():
    calls = []
    rec = _CompileOnly()
    rec.add("triton", "gemm", "gemm", "bf16", 1.0, 1.0, lambda: calls.append(1), m=1)
    rec.add("triton", "gemm", "gemm", "bf16", 1.0, 1.0, lambda: 1 / 0, m=2)  # skipped, not raised
    rec.progress("ignored")
    assert calls == [1] and rec.rows == [] and rec.failures == []
