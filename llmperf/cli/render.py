"""Rendering of llmperf's DataFrames: rich tables for people, CSV and JSON for programs.

Nothing here computes an estimate; values are only formatted (:mod:`llmperf.cli.fmt`). JSON
never contains NaN or infinity (they become ``null``); integral float columns such as batch and
token counts are written as integers in CSV and JSON.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

from llmperf.cli import fmt
from llmperf.cli._common import write_text

# Short headers for the table view (cells carry their units).
LABELS = {
    "throughput_tokens_per_s": "throughput", "decode_tokens_per_s": "decode tok/s",
    "prefill_tokens_per_s": "prefill tok/s", "kv_cache_bytes_per_token": "KV cache",
    "cost_usd_per_1m_output_tokens": "$/1M out", "cost_usd_per_1m_input_tokens": "$/1M in",
    "total_memory_bytes": "memory", "weight_bytes": "weights", "kv_cache_bytes": "KV cache",
    "activation_bytes": "activations", "memory_capacity_bytes": "capacity",
    "memory_bandwidth_bytes_per_s": "bandwidth", "peak_bf16_flop_per_s": "bf16 peak",
    "peak_fp8_flop_per_s": "fp8 peak", "peak_fp32_flop_per_s": "fp32 vector",
    "ridge_bf16_flop_per_byte": "ridge FLOP/B", "interconnect_bytes_per_s": "link (1 dir)",
    "price_usd_per_hour": "price", "max_position_embeddings": "max pos",
    "arithmetic_intensity_flop_per_byte": "FLOP/B", "request_latency_s": "latency",
    "max_context_len": "max context", "max_batch": "max batch", "params_total": "params", "params_active": "active",
    "num_attention_heads": "heads", "num_experts": "experts", "num_kv_heads": "kv heads", "num_layers": "layers",
    "tensor_parallel": "tp", "pipeline_parallel": "pp", "prompt_len": "prompt",
    "cached_prompt_len": "cached", "output_len": "output",
    "context_len": "context", "ttft_s": "TTFT", "tpot_s": "TPOT", "time_s": "time",
    "total_time_s": "time", "time_share": "share", "compute_dtype": "dtype", "count": "n",
    "memory_bytes": "bytes",
}

INT_COLUMNS = {
    "batch", "prompt_len", "cached_prompt_len", "output_len", "context_len", "tensor_parallel",
    "pipeline_parallel", "speculative_tokens", "params_total",
    "params_active", "max_batch", "max_context_len", "max_position_embeddings", "count",
}


def _py(value):
    """A JSON-safe Python value: numpy scalars unwrapped, NaN/inf -> None."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _with_ints(frame):
    """Integral float columns of counts as int64 (``1.0`` -> ``1``) for CSV/JSON."""
    out = frame.copy()
    for col in out.columns:
        if col in INT_COLUMNS and out[col].dtype.kind == "f":
            values = out[col]
            if values.notna().all() and (values == values.round()).all():
                out[col] = values.astype("int64")
    return out


def records(frame) -> list[dict]:
    return [{k: _py(v) for k, v in row.items()} for row in _with_ints(frame).to_dict("records")]


def to_json(frame, single: bool = False) -> str:
    """A list of row objects, or with ``single`` the first row as one object."""
    rows = records(frame)
    return json.dumps(rows[0] if single else rows, indent=2, allow_nan=False) + "\n"


def to_csv(frame) -> str:
    return _with_ints(frame).to_csv(index=False)


def console(file=None, width: int | None = None):
    from rich.console import Console

    if file is not None:
        return Console(file=file, width=width or 160, color_system=None, soft_wrap=False)
    import os
    import sys

    if width is None and not sys.stdout.isatty() and "COLUMNS" not in os.environ:
        width = 160  # piped or captured: no terminal to fit, keep rows on one line
    return Console(width=width, soft_wrap=False)


def frame_table(frame, columns: list[str] | None = None, title: str | None = None,
                fold_constants: bool = True, sections: str | None = None):
    """A rich Table of ``frame``; columns constant over every row move into the caption.

    sections: a column whose value, when it changes, opens a titled section of rows (shown as
    a bold row instead of a repeated column).
    """
    from rich import box
    from rich.table import Table

    columns = [c for c in (columns or list(frame.columns)) if c in frame.columns
               and not (len(frame) > 1 and frame[c].isna().all())]  # all-null: nothing to show
    constant = []
    if fold_constants and len(frame) > 1:
        constant = [c for c in columns if frame[c].astype(str).nunique() == 1
                    and not c.endswith(("_s", "_bytes", "fits"))]
    shown = [c for c in columns if c not in constant] or columns
    caption = " · ".join(f"{LABELS.get(c, c)} {fmt.cell(c, frame[c].iloc[0])}" for c in constant)
    table = Table(title=title, caption=caption or None, caption_justify="left",
                  title_justify="left", box=box.SIMPLE_HEAD)
    cells = {c: [fmt.cell(c, v) for v in frame[c]] for c in shown}
    for col in shown:
        label = LABELS.get(col, col)
        if _numeric(frame[col]):  # numbers never truncate; names may
            width = max([len(label)] + [len(t) for t in cells[col]])
            table.add_column(label, justify="right", no_wrap=True, min_width=width)
        else:  # short words (kind, dtype, bound) stay whole; long names may be cut
            longest = max([len(label)] + [len(t) for t in cells[col]])
            table.add_column(label, no_wrap=True, overflow="ellipsis",
                             min_width=longest if longest <= 14 else None,
                             max_width=None if longest <= 24 else 24)
    previous = None
    for i in range(len(frame)):
        if sections is not None and frame[sections].iloc[i] != previous:
            previous = frame[sections].iloc[i]
            table.add_row(f"[bold]{previous}[/bold]", *[""] * (len(shown) - 1))
        table.add_row(*(cells[c][i] for c in shown))
    return table


def _numeric(series) -> bool:
    """Numbers, also in object columns that mix floats and None (cost without a price)."""
    if series.dtype.kind in "fiu":
        return True
    values = series.dropna()
    return series.dtype == object and len(values) > 0 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def show(renderables: list, out: Path | None = None) -> None:
    """Print rich renderables to stdout, or write them as plain text to ``out`` (atomically)."""
    if out is None:
        con = console()
        for r in renderables:
            con.print(r)
        return
    buffer = io.StringIO()
    con = console(file=buffer)
    for r in renderables:
        con.print(r)
    write_text(out, buffer.getvalue())


def emit(frame, fmt_name: str, out: Path | None, table, single: bool = False) -> None:
    """Render ``frame`` as csv/json (``single``: JSON of its one row as an object), or call
    ``table()`` for the renderables of the table view."""
    if fmt_name == "table":
        show(_as_list(table()), out)
        return
    text = to_json(frame, single) if fmt_name == "json" else to_csv(frame)
    if out is None:
        import sys

        sys.stdout.write(text)
    else:
        write_text(out, text)


def _as_list(x) -> list:
    return x if isinstance(x, list) else [x]
