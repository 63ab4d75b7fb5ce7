"""``llmperf validate``: measure a model end to end on this GPU and compare with the predictions.

    llmperf validate -m llama-3.1-8b -g h100-sxm --out measured.csv        # on the GPU
    llmperf validate -m llama-3.1-8b -g h100-sxm --measurements measured.csv   # anywhere

Measuring builds llmperf's pure-PyTorch reference decoder with random bf16 weights
(``kernels/reference_model.py``) and times prefill and CUDA-graph decode steps
(``kernels/measure_e2e.py``); the comparison uses ``llmperf.validation`` (roofline, calibrated and
transferred predictions). The measurements are never used to fit anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from llmperf.cli import options as o
from llmperf.cli._common import choice, cli_errors, fail, output_format


def validate(model: o.Model, gpu: o.Gpu,
             grid: Annotated[str, typer.Option("--grid", metavar="quick|full",
                                               help="Time budget of the measurement.")] = "quick",
             impl: Annotated[str, typer.Option("--impl", metavar="reference|hf",
                                               help="Measure our reference decoder or the Hugging Face "
                                                    "transformers model of the same config.")] = "reference",
             measurements: Annotated[Optional[Path], typer.Option(
                 "--measurements", metavar="FILE",
                 help="Compare a CSV measured earlier instead of measuring now.")] = None,
             format: o.Format = None, out: o.Out = None):
    """Measure prefill/decode latency on this GPU and report llmperf's error against it.

    Measures our reference decoder (--impl reference) or the transformers model of the same
    config (--impl hf), each with this host's eager launch rate, and prints median and p90
    |predicted / measured - 1| per phase for the roofline, calibrated and transferred
    predictions."""
    import pandas as pd

    from llmperf.cli.render import emit, frame_table
    from llmperf.estimators import sweep
    from llmperf.validation import predict, summary

    m, hw = sweep.as_model(model), sweep.as_hardware(gpu)
    grid = choice(grid, ("quick", "full"), "--grid")
    impl = choice(impl, ("reference", "hf"), "--impl")
    if measurements is None:
        try:
            import torch

            from llmperf_kernels import measure_e2e
        except ImportError:
            fail("validate needs torch and triton: pip install -e \".[kernels]\" on the GPU machine")
        if not torch.cuda.is_available():
            fail("no CUDA GPU is visible; run `llmperf validate` on the GPU, or pass --measurements FILE")
        measurements = Path(out or f"validation_{m.name}_{hw.name}.csv")
        measure_e2e.main(["--out", str(measurements), "--models", m.name, "--impl", impl,
                          "--budget-s", "300" if grid == "quick" else "1500"])
        out = None
    if not measurements.exists():
        fail(f"measurements file '{measurements}' does not exist")
    rows = pd.read_csv(measurements)
    rows = rows[(rows["model"] == m.name) & (rows["hardware"] == hw.name)]
    if rows.empty:
        fail(f"{measurements} has no rows for {m.name} on {hw.name}")
    frame = summary(predict(rows), ["phase", "method"])
    emit(frame, output_format(format, out), out,
         lambda: frame_table(frame, list(frame.columns),
                             title=f"{m.name} on {hw.name}: |predicted/measured - 1| (%)"))


def register(app: typer.Typer) -> None:
    app.command()(cli_errors(validate))
