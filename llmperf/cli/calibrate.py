"""``llmperf calibrate``: measure the bundled kernels on this GPU, or report a calibration's fit.

    llmperf calibrate -g h100-sxm --quick --out hardware/calibration/h100-sxm5-80gb.csv
    llmperf calibrate -g h100-sxm --report hardware/calibration/h100-sxm5-80gb.csv

Measuring needs torch + triton and a CUDA GPU (``pip install -e ".[kernels]"``); they are
imported only when this command measures. ``--report`` runs anywhere: it refits the curves with
k-fold cross-validation and prints the held-out error per op kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from llmperf.cli import options as o
from llmperf.cli._common import cli_errors, fail, output_format


def calibrate(gpu: o.Gpu,
              quick: Annotated[bool, typer.Option("--quick", help="Small grid (< 5 min on an H100).")] = False,
              full: Annotated[bool, typer.Option("--full", help="Every bundled shape (slow).")] = False,
              report: Annotated[Optional[Path], typer.Option(
                  "--report", metavar="FILE", help="Print the held-out fit error of a calibration CSV.")] = None,
              compile_jobs: Annotated[Optional[int], typer.Option(
                  "--compile-jobs", metavar="N",
                  help="Processes that compile the Triton kernels before the timed sweep "
                       "(default: half the CPU cores, at most 8; 0 or 1: compile while timing).")] = None,
              format: o.Format = None, out: o.Out = None):
    """Measure kernel efficiencies on this GPU, or report a calibration's held-out error.

    Checks each kernel against its reference, then times GEMMs (bf16, fp8, W4A16; Triton and
    cuBLAS), prefill and decode attention (Triton and SDPA), copy/RMSNorm bandwidth and the
    launch floor. Writes one CSV row per measurement (SI units, device/driver/versions/date);
    while it runs, every finished stage is saved to OUT.partial (kept if the run is cut short)."""
    from llmperf.cli.render import emit, frame_table
    from llmperf.estimators import sweep

    hw = sweep.as_hardware(gpu)
    if report is not None:
        from llmperf.calibration_fit import held_out_errors
        from llmperf.calibration_report import achieved_peaks, error_summary
        from llmperf.calibration_table import load_calibration_csv

        rows = load_calibration_csv(report, hw.name)
        frame = error_summary(held_out_errors(rows, hw))
        peaks = achieved_peaks(rows, hw)
        emit(frame, output_format(format, out), out,
             lambda: [frame_table(frame, list(frame.columns),
                                  title=f"held-out |error| of {report.name} (5-fold)"),
                      frame_table(_readable(peaks), ["what", "kernel_source", "measured",
                                                     "datasheet", "fraction", "shape"],
                                  title="measured peaks beside the datasheet")])
        return
    if quick and full:
        fail("choose one of --quick and --full")
    if compile_jobs is not None and compile_jobs < 0:
        fail(f"--compile-jobs must be 0 or more, got {compile_jobs}")
    if compile_jobs is None:
        import os

        compile_jobs = min(8, (os.cpu_count() or 2) // 2)
    try:
        import torch

        from llmperf_kernels import calibrate as sweep_kernels
    except ImportError:
        fail("calibrate needs torch and triton: pip install -e \".[kernels]\" on the GPU machine")
    if not torch.cuda.is_available():
        fail("no CUDA GPU is visible; run `llmperf calibrate` on the GPU you want to calibrate")
    device = torch.cuda.get_device_name()
    if not sweep_kernels.device_matches(device, hw):
        fail(f"this GPU is '{device}', not {hw.name}; pass the matching -g")
    target = out or Path("hardware/calibration") / f"{hw.name}.csv"
    import contextlib
    import sys
    import time

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    stages = sweep_kernels.stage_count("full" if full else "quick") - (0 if compile_jobs > 1 else 1)
    partial = target.with_name(target.name + ".partial")
    interactive = sys.stdout.isatty()
    start = time.perf_counter()
    with (Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeElapsedColumn()) if interactive else contextlib.nullcontext()) as bar:
        task = bar.add_task("checking kernels", total=stages) if interactive else None

        def progress(message: str) -> None:
            if interactive:
                bar.update(task, advance=1, description=message[:60])
            else:  # a log: one timed line per stage
                typer.echo(f"[{time.perf_counter() - start:6.0f} s] {message}")

        frame, checks, failures = sweep_kernels.run(hw.name, "full" if full else "quick", progress,
                                                    checkpoint=partial, precompile_workers=compile_jobs)
    from llmperf.cli._common import write_text

    write_text(target, frame.to_csv(index=False))
    partial.unlink(missing_ok=True)
    typer.echo("\n".join(checks))
    if failures:
        typer.echo(f"{len(failures)} shapes failed, first: {failures[0]}")
    typer.echo(f"wrote {target}: {len(frame)} measurements")


def _readable(peaks):
    """Peaks with their units written out (rendering only; the CSV/JSON keep SI numbers)."""
    from llmperf.cli import fmt

    def show(value, unit):
        if value != value:
            return "—"
        return fmt.seconds(value) if unit == "s" else fmt.si(value, unit)

    return peaks.assign(
        measured=[show(v, u) for v, u in zip(peaks["measured"], peaks["unit"])],
        datasheet=[show(v, u) for v, u in zip(peaks["datasheet"], peaks["unit"])],
        fraction=[f"{v:.0%}" if v == v else "—" for v in peaks["fraction"]])


def register(app: typer.Typer) -> None:
    app.command()(cli_errors(calibrate))
