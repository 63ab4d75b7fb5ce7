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


def test_w4_only_items_and_sweep(monkeypatch):
    """``--mode w4`` pre-compiles one W4A16 item per GEMM shape and its sweep times only W4A16 rows
    (the quick grid's shapes, K % 128 == 0) at every token count of the grid, decode to prefill."""
    from llmperf_kernels.calibrate import M_W4_QUICK, PARTIAL_MODES, sweep_w4

    from llmperf_kernels.calibrate import w4_shapes

    shapes = w4_shapes(GRIDS["quick"]["models"])
    assert work_items(GRIDS["quick"], w4_only=True) == [("w4", s) for s in shapes]
    # every layer GEMM but the 16-bit lm_heads (vocab x hidden)
    assert set(gemm_shapes(GRIDS["quick"]["models"])) - set(shapes) == {(128256, 2048), (128256, 4096), (152064, 3584)}
    assert PARTIAL_MODES["w4"] is sweep_w4
    assert GRIDS["quick"]["m_w4"] == M_W4_QUICK and max(M_W4_QUICK) >= 16384 and min(M_W4_QUICK) == 1

    class Rec(_CompileOnly):
        def __init__(self):
            self.seen = []

        def add(self, source, kind, name, dtype, flops, nbytes, fn, graph=True, **shape):
            self.seen.append((name, dtype, shape["m"], shape["n"], shape["k"]))

    import torch

    import llmperf_kernels.calibrate as cal
    monkeypatch.setattr(cal, "_rand", lambda *shape, dtype=torch.bfloat16: torch.randn(*shape).to(dtype))
    rec = Rec()
    sweep_w4(rec, {**GRIDS["quick"], "shapes": [(48, 256), (40, 200)], "m_w4": (1, 20)})
    assert rec.seen == [("gemm_w4a16", "w4a16", m, 48, 256) for m in (1, 20)]  # K = 200: no int4 groups


def test_w4_shapes_keep_model_order():
    """``--mode w4 --models llama-3.1-8b`` times that model's four layer shapes (qkv, o, gate_up, down),
    which also lead the quick grid's list, so a sweep cut short keeps the main example's shapes."""
    from llmperf_kernels.calibrate import w4_shapes

    llama = [(6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336)]
    assert w4_shapes(("llama-3.1-8b",)) == llama
    assert w4_shapes(GRIDS["quick"]["models"])[:4] == llama


def test_calibrate_module_without_gpu_is_one_line(tmp_path):
    """``python -m llmperf_kernels.calibrate`` on a machine without a GPU: one line naming the problem,
    exit code 2, no traceback, nothing written."""
    import subprocess
    import sys

    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the sweep would run")
    out = tmp_path / "w4.csv"
    r = subprocess.run([sys.executable, "-m", "llmperf_kernels.calibrate", "--mode", "w4", "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == ["llmperf_kernels.calibrate: no CUDA GPU is visible: run the calibration "
                                             "on the GPU to calibrate"]
    assert not out.exists() and not (tmp_path / "w4.csv.partial").exists()
