"""``llmperf roofline`` and ``llmperf plot breakdown|memory|frontier``: charts to a file.

Each command builds its frame with one library call, draws it with :mod:`llmperf.plot` (which
is imported only here, inside the commands, so matplotlib never loads for other commands) and
writes the chart atomically. ``--format csv|json|table`` also prints the plotted data.
"""

from pathlib import Path
from typing import Annotated, Optional

import typer

from llmperf.cli import options as o
from llmperf.cli._common import (choice, cli_errors, parse_length, parse_lengths, parse_names,
                                 parse_optional_length, workload)

ChartOut = Annotated[Path, typer.Option(
    "--out", metavar="FILE", help="Chart file: .png, .svg or .pdf (created only on success).")]
DataFormat = Annotated[Optional[str], typer.Option(
    "--format", "-f", metavar="table|csv|json", help="Also print the plotted data: table, csv or json.")]
Labels = Annotated[int, typer.Option("--labels", metavar="N", help="Name the N ops with the most time.")]
FRONTIER_BATCHES = "1,2,4,8,16,32,64,128,256"


def _check_chart_path(out: Path) -> None:
    from llmperf.errors import LlmperfError

    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise LlmperfError(f"--out must end in .png, .svg or .pdf, got '{out.name}'")
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise LlmperfError(f"cannot write '{out}': directory '{out.parent}' does not exist")


def _finish(fig, out: Path, data, fmt_name: Optional[str], table) -> None:
    import typer as _typer

    from llmperf import plot

    plot.save(fig, out)
    _typer.echo(f"wrote {out}", err=True)
    if fmt_name is not None:
        from llmperf.cli.render import emit

        emit(data, choice(fmt_name, ("table", "csv", "json"), "--format"), None, table)


def _specs(model: str, gpu: str):
    from llmperf.estimators import sweep

    return sweep.as_model(model), sweep.as_hardware(gpu)


def roofline(model: o.Model, gpu: o.Gpu, out: ChartOut,
             phase: Annotated[str, typer.Option(
                 "--phase", metavar="decode|prefill|both", help="decode (at --context), prefill (of --prompt) or both "
                                 "(two panels).")] = "decode",
             batch: o.Batch = "1", prompt: o.Prompt = "1024", output: o.Output = "256",
             context: o.Context = None, weights: o.Weights = "bf16",
             activations: o.Activations = "bf16", kv: o.Kv = "bf16", tp: o.Tp = "1", pp: o.Pp = "1",
             attention: o.Attention = "flash", calibration: o.Calibration = "auto",
             engine: o.Engine = "fused",
             allow_long_context: o.AllowLong = False, labels: Labels = 5,
             format: DataFormat = None):
    """Roofline chart of one step, every op a point.

    The memory slope, a ceiling per dtype (bf16, the compute dtype in use, fp32 vector) with
    its ridge point, and every op of the step at (FLOP/byte, attained FLOP/s)."""
    _check_chart_path(out)
    import pandas as pd

    from llmperf import plot
    from llmperf.cli.views import ops_table as ops_view
    from llmperf.estimators import sweep, tables

    m, g = _specs(model, gpu)
    wl = workload(weights, activations, kv, tp, attention, engine, pp)
    phase = choice(phase, ("prefill", "decode", "both"), "--phase")
    phases = ["prefill", "decode"] if phase == "both" else [phase]
    cal = sweep.resolve_calibration(calibration, g)
    frames = [tables.ops_table(m, g, wl, p, batch=parse_length(batch, "--batch"),
                               prompt_len=parse_length(prompt, "--prompt"),
                               output_len=parse_length(output, "--output"),
                               context_len=parse_optional_length(context, "--context"),
                               calibration=cal,
                               allow_long_context=allow_long_context) for p in phases]
    # measured kernel points of a calibration measured on this very GPU (not transferred ones)
    rows = getattr(cal, "rows", None)
    measured = (rows[rows["kernel_source"] == cal.kernel_source]
                if rows is not None and cal.name.startswith("calibrated:") else None)
    fig, axes = plot.figure(len(frames), width_in=8.0, height_in=5.5, sharey=True)
    for ax, frame in zip(axes, frames):
        plot.roofline(ax, frame, g, label_top=labels, measured=measured)
    data = pd.concat(frames, ignore_index=True)
    _finish(fig, out, data, format, lambda: [ops_view(f) for f in frames])


def breakdown(model: o.Model, gpu: o.Gpu, out: ChartOut, batch: o.Batch = "1",
              prompt: o.Prompt = "1024", output: o.Output = "256", context: o.Context = None,
              weights: o.Weights = "bf16", activations: o.Activations = "bf16", kv: o.Kv = "bf16",
              tp: o.Tp = "1", pp: o.Pp = "1", attention: o.Attention = "flash",
              calibration: o.Calibration = "auto", engine: o.Engine = "fused",
              allow_long_context: o.AllowLong = False, format: DataFormat = None):
    """Time by op kind, prefill vs decode (stacked bars)."""
    _check_chart_path(out)
    import pandas as pd

    from llmperf import plot
    from llmperf.cli.views import ops_table as ops_view
    from llmperf.estimators import sweep, tables

    m, g = _specs(model, gpu)
    wl = workload(weights, activations, kv, tp, attention, engine, pp)
    steps = {p: tables.ops_table(m, g, wl, p, batch=parse_length(batch, "--batch"),
                                 prompt_len=parse_length(prompt, "--prompt"),
                                 output_len=parse_length(output, "--output"),
                                 context_len=parse_optional_length(context, "--context"),
                                 calibration=sweep.resolve_calibration(calibration, g),
                                 allow_long_context=allow_long_context)
             for p in ("prefill", "decode")}
    fig, (ax,) = plot.figure(1, width_in=6.5, height_in=5.0)
    plot.breakdown(ax, steps)
    data = pd.concat(steps.values(), ignore_index=True)
    _finish(fig, out, data, format, lambda: [ops_view(f) for f in steps.values()])


def memory(model: o.Model, gpu: o.Gpu, out: ChartOut, batch: o.Batch = "1",
           max_context: Annotated[Optional[str], typer.Option(
               "--max-context", metavar="TOKENS", help="Right end of the context axis [default: the model's "
                                     "max_position_embeddings].")] = None,
           weights: o.Weights = "bf16", activations: o.Activations = "bf16", kv: o.Kv = "bf16",
           tp: o.Tp = "1", pp: o.Pp = "1", allow_long_context: o.AllowLong = False,
           format: DataFormat = None):
    """Memory vs context (stacked) against the capacity.

    Weights, KV cache and activations for one batch size."""
    _check_chart_path(out)
    from llmperf import plot
    from llmperf.cli.render import frame_table
    from llmperf.estimators import tables

    m, g = _specs(model, gpu)
    grid = tables.context_grid(m, hi=parse_optional_length(max_context, "--max-context"))
    frame = tables.memory_table(m, g, workload(weights, activations, kv, tp, pipeline_parallel=pp),
                                batch=[parse_length(batch, "--batch")], context_len=grid,
                                allow_long_context=allow_long_context)
    fig, (ax,) = plot.figure(1)
    plot.memory(ax, frame)
    _finish(fig, out, frame, format, lambda: frame_table(frame))


def frontier(model: o.Models, gpu: o.Gpus, out: ChartOut, batch: o.Batches = FRONTIER_BATCHES,
             prompt: o.Prompt = "1024", output: o.Output = "256", context: o.Context = None,
             weights: o.WeightsList = "bf16", activations: o.ActivationsList = "bf16",
             kv: o.KvList = "bf16", tp: o.Tp = "1", pp: o.Pp = "1", attention: o.Attention = "flash",
             calibration: o.Calibration = "auto", allow_long_context: o.AllowLong = False,
             format: DataFormat = None):
    """Throughput vs TPOT over batch, one line per GPU/dtype.

    Output tokens/s per device against TPOT; hollow points do not fit in memory."""
    _check_chart_path(out)
    from llmperf import plot
    from llmperf.cli.commands import SWEEP_TABLE
    from llmperf.cli.render import frame_table
    from llmperf.estimators.sweep import sweep_frame

    ctx = parse_optional_length(context, "--context")
    frame = sweep_frame(
        parse_names(model, "-m"), parse_names(gpu, "-g"), batch=parse_lengths(batch, "--batch"),
        prompt_len=[parse_length(prompt, "--prompt")], output_len=[parse_length(output, "--output")],
        context_len=None if ctx is None else [ctx], weights=parse_names(weights, "--weights"),
        activations=parse_names(activations, "--activations"), kv_cache=parse_names(kv, "--kv"),
        tensor_parallel=[parse_length(tp, "--tp")], pipeline_parallel=[parse_length(pp, "--pp")],
        attention=choice(attention, ("flash", "naive"), "--attention"), calibration=calibration,
        allow_long_context=allow_long_context)
    fig, (ax,) = plot.figure(1)
    plot.frontier(ax, frame)
    _finish(fig, out, frame, format, lambda: frame_table(frame, SWEEP_TABLE))


def register(app: typer.Typer) -> None:
    """Add ``roofline`` and the ``plot`` group to ``app``."""
    app.command()(cli_errors(roofline))
    group = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                        help="Charts: breakdown, memory, frontier.")
    for fn in (breakdown, memory, frontier):
        group.command()(cli_errors(fn))
    app.add_typer(group, name="plot")
