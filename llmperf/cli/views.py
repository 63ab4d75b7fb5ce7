"""The human views of an estimate: the one-scenario report and the side-by-side comparison.

Rendering only: every number comes from a row of :func:`llmperf.estimate_frame` (keys of
``llmperf.columns.ESTIMATE_COLUMNS``) and is formatted here.
"""

from __future__ import annotations

from llmperf.cli import fmt
from llmperf.cli.render import LABELS, frame_table


def _bound(value) -> str:
    return f"{value}-bound" if isinstance(value, str) else ""


def _memory_rows(r: dict) -> list[tuple]:
    usable, cap = r["usable_memory_bytes"], r["memory_capacity_bytes"]
    verdict = "[green]yes[/green]" if r["fits"] else "[bold red]NO[/bold red]"
    headroom = usable - r["total_memory_bytes"]
    note = (f"{fmt.si(headroom, 'B')} free" if r["fits"]
            else f"{fmt.si(-headroom, 'B')} over")
    return [
        ("Memory", "weights", fmt.si(r["weight_bytes"], "B"), "per device"),
        ("", "KV cache", fmt.si(r["kv_cache_bytes"], "B"),
         f"{fmt.si(r['kv_cache_bytes_per_token'], 'B')}/token"),
        ("", "activations", fmt.si(r["activation_bytes"], "B"), "peak"),
        ("", "total", fmt.si(r["total_memory_bytes"], "B"),
         f"of {fmt.si(usable, 'B')} usable ({fmt.si(cap, 'B')} device)"),
        ("", "fits", verdict, note),
    ]


def _cost_rows(r: dict) -> list[tuple]:
    price = r["price_usd_per_hour"]
    if price is None or price != price:
        return [("Cost", "per 1M output tokens", "—", "pass --price USD_PER_HOUR")]
    n = r["tensor_parallel"] * r["pipeline_parallel"]
    devices = f" x {n} devices" if n > 1 else ""
    return [
        ("Cost", "per 1M output tokens", fmt.usd(r["cost_usd_per_1m_output_tokens"]),
         f"at {fmt.usd(price)}/h per device{devices}"),
        ("", "per 1M input tokens", fmt.usd(r["cost_usd_per_1m_input_tokens"]), "prefill only"),
    ]


def _prefix_rows(r: dict) -> list[tuple]:
    if not r["cached_prompt_len"]:
        return []
    rest = int(r["prompt_len"] - r["cached_prompt_len"])
    return [("", "prefix cache", fmt.integer(r["cached_prompt_len"]),
             f"prompt tokens cached; the prefill computes the other {rest:,}")]


def _round_note(r: dict) -> str:
    if not r["speculative_tokens"]:
        return ""
    return "verification" if r["draft_model"] == "ngram" else "draft steps + verification"


def _decode_phase(tokens: int, r: dict) -> str:
    if not r["speculative_tokens"]:
        return f"{tokens:,} decode steps"
    return f"{tokens:,} tokens in {tokens / r['tokens_per_round']:,.1f} rounds"


def _speculation_rows(r: dict) -> list[tuple]:
    if not r["speculative_tokens"]:
        return []
    return [("", "speculation", f"{int(r['speculative_tokens'])} by {r['draft_model']}",
             f"acceptance {r['acceptance_rate']:.2f} · {r['tokens_per_round']:.2f} tokens per round")]


def _band(row, key: str) -> str:
    """`` · 6.4–8.0 ms`` from the calibration's held-out interval, or nothing (ideal)."""
    low, high = row.get(f"{key}_low"), row.get(f"{key}_high")
    if low is None or high is None or low != low or high != high:
        return ""
    return f" · {fmt.seconds(low)}–{fmt.seconds(high)}"


def estimate_report(r: dict):
    """A rich Table: scenario, parameters, memory and fit, latency, throughput, cost."""
    from rich.table import Table

    decode_steps = int(r["output_len"]) - 1
    rows = [
        ("Scenario", "batch", fmt.integer(r["batch"]), "sequences per step"),
        ("", "prompt / output", f"{fmt.integer(r['prompt_len'])} / {fmt.integer(r['output_len'])}",
         "tokens per sequence"),
        ("", "decode context", fmt.integer(r["context_len"]), "cached tokens at the TPOT step"),
        *_prefix_rows(r),
        *_speculation_rows(r),
        ("Parameters", "total", fmt.count(r["params_total"]), ""),
        ("", "active per token", fmt.count(r["params_active"]), ""),
        *_memory_rows(r),
        ("Compute", "prefill", fmt.si(r["prefill_flops"], "FLOP"), ""),
        ("", "decode round" if r["speculative_tokens"] else "decode step",
         fmt.si(r["decode_flops"], "FLOP"), _round_note(r)),
        ("Latency", "TTFT", fmt.seconds(r["ttft_s"]),
         f"prefill, {_bound(r['prefill_bound'])}{_band(r, 'ttft_s')}"),
        ("", "TPOT", fmt.seconds(r["tpot_s"]),
         f"{'per token of a round' if r['speculative_tokens'] else 'decode step'}, "
         f"{_bound(r['decode_bound'])}{_band(r, 'tpot_s')}"),
        ("", "mean TPOT", fmt.seconds(r["mean_tpot_s"]), "over the request"),
        ("", "request", fmt.seconds(r["request_latency_s"]),
         f"TTFT + {_decode_phase(decode_steps, r)}{_band(r, 'request_latency_s')}"),
        ("Throughput", "output", f"{fmt.count(r['throughput_tokens_per_s'])} tok/s",
         "generated tokens / request latency"),
        ("", "decode", f"{fmt.count(r['decode_tokens_per_s'])} tok/s", "batch / TPOT"),
        ("", "prefill", f"{fmt.count(r['prefill_tokens_per_s'])} tok/s", "prompt tokens / TTFT"),
        *_cost_rows(r),
    ]
    tp = f" · TP {r['tensor_parallel']}" if r["tensor_parallel"] > 1 else ""
    tp += f" · PP {r['pipeline_parallel']}" if r["pipeline_parallel"] > 1 else ""
    table = Table(title=f"{r['model']} on {r['hardware']}", title_justify="left",
                  caption=(f"weights {r['weights']} · activations {r['activations']} · "
                           f"KV cache {r['kv_cache']}{tp} · calibration {r['calibration']}"),
                  caption_justify="left", show_header=False, show_lines=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_column(justify="right", style="cyan", no_wrap=True)
    table.add_column(style="dim")
    for section, metric, value, note in rows:
        table.add_row(section, metric, value, note, end_section=False)
    return table


COMPARE_ROWS = [
    "memory_capacity_bytes", "weight_bytes", "kv_cache_bytes", "total_memory_bytes", "fits",
    "ttft_s", "tpot_s", "request_latency_s", "throughput_tokens_per_s", "prefill_tokens_per_s",
    "prefill_bound", "decode_bound", "cost_usd_per_1m_output_tokens",
]


def compare_table(frame):
    """Rows = metrics, columns = the scenarios of ``frame`` (one per GPU / dtype combination);
    returns the table and a note with the inputs shared by every column."""
    from rich.table import Table
    from rich.text import Text

    varying = [c for c in ("hardware", "weights", "activations", "kv_cache", "tensor_parallel",
                           "pipeline_parallel")
               if frame[c].astype(str).nunique() > 1] or ["hardware"]
    first = frame.iloc[0]
    fixed = [f"{c.replace('_', ' ')} {first[c]}" for c in ("weights", "activations", "kv_cache")
             if c not in varying]
    tp = [] if "tensor_parallel" in varying else [f"TP {first['tensor_parallel']}"]
    if "pipeline_parallel" not in varying and first["pipeline_parallel"] > 1:
        tp.append(f"PP {first['pipeline_parallel']}")
    if first["cached_prompt_len"]:
        tp.append(f"prefix cache {fmt.integer(first['cached_prompt_len'])} of the prompt")
    if first["speculative_tokens"]:
        tp.append(f"speculation {int(first['speculative_tokens'])} by {first['draft_model']} "
                  f"(acceptance {first['acceptance_rate']:.2f})")
    table = Table(title=first["model"], title_justify="left")
    notes = (f"batch {fmt.integer(first['batch'])} · prompt {fmt.integer(first['prompt_len'])} · "
             f"output {fmt.integer(first['output_len'])} · decode context "
             f"{fmt.integer(first['context_len'])}\n"
             + " · ".join([*fixed, *tp, f"calibration {first['calibration']}"]))
    table.add_column("metric", style="bold")
    for _, row in frame.iterrows():
        table.add_column(" ".join(str(row[c]) for c in varying), justify="right", no_wrap=True)
    for key in COMPARE_ROWS:
        table.add_row(LABELS.get(key, key.replace("_", " ")), *(fmt.cell(key, v) for v in frame[key]))
    return [table, Text(notes)]


OPS_COLUMNS = ["group", "op", "kind", "count", "compute_dtype", "memory_bytes",
               "arithmetic_intensity_flop_per_byte", "total_time_s", "time_share", "bound"]


def ops_table(frame):
    """The per-op table of one step (columns of :data:`OPS_COLUMNS`; the group only when an op
    name repeats across groups, e.g. sliding vs full attention layers). time = time x count."""
    phase = frame["phase"].iloc[0] if "phase" in frame and len(frame) else ""
    total = frame["total_time_s"].sum()
    grouped = bool(frame["op"].duplicated().any())
    return frame_table(frame, OPS_COLUMNS[1:], fold_constants=False,
                       sections="group" if grouped else None,
                       title=f"{phase} step: {len(frame)} ops, {fmt.seconds(total)}")
