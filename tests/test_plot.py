"""Charts: the roofline is checked against the spec numbers, the other charts for their
structure, and the plotting commands for the files they write (and do not write on errors)."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from llmperf import Workload, load_hardware, load_model
from llmperf.cli import app
from llmperf.estimators import tables
from llmperf.estimators.sweep import sweep_frame

plot = pytest.importorskip("llmperf.plot")

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def specs():
    return load_model("llama-3.1-8b"), load_hardware("h100-sxm5-80gb")


def _lines(ax, gid):
    return [line for line in ax.lines if line.get_gid() == gid]


@pytest.mark.parametrize("phase", ["decode", "prefill"])
def test_roofline_ceilings_slope_and_points(specs, phase):
    model, hw = specs
    ops = tables.ops_table(model, hw, Workload(), phase, batch=1, prompt_len=1024)
    fig, (ax,) = plot.figure()
    plot.roofline(ax, ops, hw)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"

    (bf16,) = _lines(ax, "ceiling:bf16")
    assert np.allclose(bf16.get_ydata(), hw.peak.bf16)              # horizontal at the peak
    (fp32,) = _lines(ax, "ceiling:fp32")
    assert np.allclose(fp32.get_ydata(), hw.peak.fp32)              # vector ceiling
    (ridge,) = _lines(ax, "ridge:bf16")
    assert ridge.get_xdata()[0] == pytest.approx(hw.peak.bf16 / hw.memory_bandwidth_bytes_per_s)

    (memory,) = _lines(ax, "memory")
    x, y = np.asarray(memory.get_xdata()), np.asarray(memory.get_ydata())
    assert np.allclose(y / x, hw.memory_bandwidth_bytes_per_s)      # slope = bandwidth
    assert y.max() == pytest.approx(hw.peak.bf16)                   # meets the top ceiling

    shown, hidden = plot.roofline_points(ops)
    points = sum(len(c.get_offsets()) for c in ax.collections if str(c.get_gid()).startswith("ops:"))
    assert points == len(shown) == len(ops) - len(hidden)          # one point per op
    assert set(hidden["op"]) <= {"embed_tokens", "kv_cache_write"}  # no FLOPs: named instead
    # with the ideal calibration every op sits on the roof: min(peak, bandwidth x intensity)
    peak = shown["compute_dtype"].map(lambda d: hw.vector_flop_per_s if d == "fp32" else hw.peak_flop_per_s(d))
    roof = np.minimum(peak, hw.memory_bandwidth_bytes_per_s * shown["intensity"])
    assert np.allclose(shown["achieved_flop_per_s"], roof, rtol=1e-6)


def test_roofline_adds_the_compute_dtype_ceiling(specs):
    model, hw = specs
    ops = tables.ops_table(model, hw, Workload(weights="fp8", activations="fp8"), "prefill")
    fig, (ax,) = plot.figure()
    plot.roofline(ax, ops, hw)
    (fp8,) = _lines(ax, "ceiling:fp8")
    assert np.allclose(fp8.get_ydata(), hw.peak.fp8)
    assert _lines(ax, "ceiling:bf16")  # attention still runs in bf16


def test_breakdown_bars_sum_to_100(specs):
    model, hw = specs
    steps = {p: tables.ops_table(model, hw, Workload(), p, batch=4) for p in ("prefill", "decode")}
    fig, (ax,) = plot.figure()
    plot.breakdown(ax, steps)
    heights = np.zeros(2)
    for patch in ax.patches:
        heights[round(patch.get_x() + patch.get_width() / 2)] += patch.get_height()
    assert np.allclose(heights, 100.0)


def test_memory_chart_stacks_and_capacity(specs):
    model, hw = specs
    frame = tables.memory_table(model, hw, batch=[8], context_len=tables.context_grid(model, points=12))
    fig, (ax,) = plot.figure()
    plot.memory(ax, frame)
    (cap,) = _lines(ax, "capacity")
    assert cap.get_ydata()[0] == pytest.approx(hw.memory_capacity_bytes / 1e9)
    assert len(ax.collections) == 3  # weights, KV cache, activations


def test_frontier_one_line_per_combination():
    frame = sweep_frame(["llama-3.1-8b"], ["h100-sxm", "h200"], batch=[1, 8, 64],
                        weights=["bf16", "fp8"])
    fig, (ax,) = plot.figure()
    plot.frontier(ax, frame)
    assert len(ax.lines) == 4 and ax.get_xscale() == "log"


def test_save_is_atomic_png(tmp_path, specs):
    fig, (ax,) = plot.figure()
    ax.plot([1, 2], [1, 2])
    path = plot.save(fig, tmp_path / "x.png")
    assert path.read_bytes()[:8] == PNG and [p.name for p in tmp_path.iterdir()] == ["x.png"]


@pytest.mark.parametrize("args", [
    ["roofline", "--phase", "both"],
    ["roofline", "--phase", "prefill", "--weights", "fp8", "--activations", "fp8"],
    ["plot", "breakdown", "--batch", "8"],
    ["plot", "memory", "--batch", "8", "--max-context", "32k"],
    ["plot", "frontier", "--batch", "1,4,16"],
])
def test_plot_commands_write_charts(tmp_path, args):
    out = tmp_path / "chart.png"
    cmd = args[:2] if args[0] == "plot" else args[:1]
    result = CliRunner().invoke(app, cmd + ["-m", "llama-3.1-8b", "-g", "h100-sxm"]
                                + args[len(cmd):] + ["--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == PNG


def test_plot_command_prints_data_in_a_format(tmp_path):
    result = CliRunner().invoke(app, ["roofline", "-m", "llama-3.1-8b", "-g", "h100-sxm",
                                      "--out", str(tmp_path / "r.svg"), "--format", "json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert rows[0]["phase"] == "decode" and (tmp_path / "r.svg").read_text().startswith("<?xml")


@pytest.mark.parametrize("args,needle", [
    (["roofline", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--phase", "train"], "--phase"),
    (["roofline", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--batch", "0"], "batch"),
    (["plot", "memory", "-m", "nope", "-g", "h100-sxm"], "unknown model"),
])
def test_plot_errors_leave_no_file(tmp_path, args, needle):
    out = tmp_path / "chart.png"
    result = CliRunner().invoke(app, args + ["--out", str(out)])
    assert result.exit_code == 2 and needle in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_chart_suffix_checked(tmp_path):
    result = CliRunner().invoke(app, ["roofline", "-m", "llama-3.1-8b", "-g", "h100-sxm",
                                      "--out", str(tmp_path / "chart.txt")])
    assert result.exit_code == 2 and ".png" in result.stderr


def test_roofline_draws_measured_kernel_points_under_the_roof():
    """With a measured calibration the chart shows what our kernels achieved on this GPU, and
    every measured point sits under its ceiling (FLOP/s <= peak, <= bandwidth x intensity)."""
    import matplotlib

    matplotlib.use("Agg")
    from llmperf import Step, Workload, load_hardware, load_model, ops_frame, plot
    from llmperf.calibration_io import resolve_calibration

    hw = load_hardware("h100-sxm")
    cal = resolve_calibration("auto", hw)
    ops = ops_frame(load_model("llama-3.1-8b"), hw, Workload(), Step.prefill(1, 512), cal)
    fig, (ax,) = plot.figure(1)
    rows = cal.rows[cal.rows["kernel_source"] == "triton"]
    plot.roofline(ax, ops, hw, measured=rows)
    drawn = [c for c in ax.collections if str(c.get_gid()).startswith("measured:")]
    assert {c.get_gid() for c in drawn} >= {"measured:gemm", "measured:attention_decode"}
    for c in drawn:
        x, y = c.get_offsets().T
        assert (y <= hw.peak.bf16 * 1.0001).all()
        assert (y <= hw.memory_bandwidth_bytes_per_s * x * 1.0001).all()
