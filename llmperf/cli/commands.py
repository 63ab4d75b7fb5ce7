"""``llmperf list | estimate | memory | sweep | compare``: parse options, call one library
function, render its DataFrame (DESIGN.md rule 9). No estimate is computed here.

llmperf's estimators, pandas and rich are imported inside the commands, not at module import.
"""

from typing import Annotated

import typer

from llmperf.cli import options as o
from llmperf.cli._common import (choice, cli_errors, output_format, parse_length, parse_lengths,
                                 parse_names, parse_optional_length, parse_price, speculation,
                                 workload)

MODEL_TABLE = ["model", "params_total", "params_active", "num_layers", "num_attention_heads",
               "num_kv_heads", "num_experts", "kv_cache_bytes_per_token", "max_position_embeddings"]
HARDWARE_TABLE = ["hardware", "vendor", "memory_capacity_bytes", "memory_bandwidth_bytes_per_s",
                  "peak_bf16_flop_per_s", "peak_fp8_flop_per_s", "ridge_bf16_flop_per_byte",
                  "interconnect_bytes_per_s"]
MEMORY_TABLE = ["model", "hardware", "weights", "kv_cache", "tensor_parallel", "batch",
                "context_len", "weight_bytes", "kv_cache_bytes", "activation_bytes",
                "total_memory_bytes", "fits", "max_batch", "max_context_len"]
SWEEP_TABLE = ["model", "hardware", "weights", "activations", "kv_cache", "tensor_parallel",
               "batch", "prompt_len", "output_len", "context_len", "total_memory_bytes", "fits",
               "ttft_s", "tpot_s", "throughput_tokens_per_s", "cost_usd_per_1m_output_tokens"]


def list_(what: Annotated[str, typer.Argument(metavar="models|hardware", help="What to list.")],
          format: o.Format = None, out: o.Out = None):
    """List bundled models or hardware with their key figures.

    models: params, layers, heads, KV-cache bytes per token; hardware: memory, bandwidth,
    dense bf16/fp8 peaks, ridge point, link bandwidth."""
    from llmperf.cli.render import emit, frame_table
    from llmperf.estimators import tables

    kind = choice(what, ("models", "hardware"), "llmperf list")
    frame = tables.models_table() if kind == "models" else tables.hardware_table()
    columns = MODEL_TABLE if kind == "models" else HARDWARE_TABLE
    title = (f"{len(frame)} models (KV cache per token: all layers, bf16)" if kind == "models"
             else f"{len(frame)} accelerators (dense peaks; link bandwidth per direction)")
    emit(frame, output_format(format, out), out,
         lambda: frame_table(frame, columns, title=title, fold_constants=False))


def estimate(model: o.Model, gpu: o.Gpu, batch: o.Batch = "1", prompt: o.Prompt = "1024",
             output: o.Output = "256", context: o.Context = None, weights: o.Weights = "bf16",
             activations: o.Activations = "bf16", kv: o.Kv = "bf16", tp: o.Tp = "1",
             pp: o.Pp = "1", spec_tokens: o.SpecTokens = None, draft: o.Draft = None,
             acceptance: o.Acceptance = None, cached_prompt: o.CachedPrompt = "0",
             attention: o.Attention = "flash", calibration: o.Calibration = "auto",
             engine: o.Engine = "fused", host_us_per_kernel: o.HostUs = None,
             price: o.Price = None, allow_long_context: o.AllowLong = False,
             ops: Annotated[bool, typer.Option("--ops", help="Also show the per-op table of "
                                               "one step (csv/json: the per-op rows instead).")] = False,
             phase: o.Phase = "decode",
             ignore_memory: Annotated[bool, typer.Option(
                 "--ignore-memory", help="Estimate even when the scenario does not fit in device "
                                         "memory (otherwise that is an error).")] = False,
             format: o.Format = None, out: o.Out = None):
    """Estimate one scenario: memory, TTFT, TPOT, throughput, cost.

    The report: params, memory breakdown and fit, TTFT, TPOT, request latency, throughput,
    cost and the bound of each phase.

    The JSON output is the stable contract: exactly the keys of llmperf.columns.ESTIMATE_COLUMNS
    (SI units in the key names; null where a value does not apply)."""
    from llmperf.cli.render import emit
    from llmperf.cli.views import estimate_report, ops_table
    from llmperf.estimators import sweep, tables

    m, g = sweep.as_model(model), sweep.as_hardware(gpu)
    wl = workload(weights, activations, kv, tp, attention, engine, pp)
    cal = sweep.resolve_calibration(calibration, g, micro_to_s(host_us_per_kernel))
    shape = dict(batch=parse_length(batch, "--batch"), prompt_len=parse_length(prompt, "--prompt"),
                 output_len=parse_length(output, "--output"))
    ctx = parse_optional_length(context, "--context")
    phase = choice(phase, ("decode", "prefill"), "--phase")
    frame = sweep.scenario_frame(m, g, wl, **shape, context_len=ctx, calibration=cal,
                                 price_usd_per_hour=parse_price(price),
                                 allow_long_context=allow_long_context,
                                 require_fit=not ignore_memory,
                                 speculation=speculation(spec_tokens, draft, acceptance),
                                 cached_prompt_len=parse_length(cached_prompt, "--cached-prompt"))
    per_op = (tables.ops_table(m, g, wl, phase, **shape, context_len=ctx, calibration=cal,
                               allow_long_context=allow_long_context) if ops else None)
    fmt_name = output_format(format, out)
    row = frame.iloc[0].to_dict()
    if ops and fmt_name != "table":
        emit(per_op, fmt_name, out, None)
        return
    emit(frame, fmt_name, out,
         lambda: [estimate_report(row)] + ([ops_table(per_op)] if ops else []), single=True)


def memory(model: o.Model, gpu: o.Gpu, batch: o.Batches = "1,8,32,128",
           context: Annotated[str, typer.Option(
               "--context", metavar="LIST", help="KV-cache lengths, comma-separated [default: 1k, 4k, 16k, ... "
                                 "up to the model's max_position_embeddings].")] = None,
           prompt: Annotated[str, typer.Option(
               "--prompt", metavar="TOKENS", help="Tokens prefilled in one step, for the activation peak "
                                "[default: decode only, as with chunked prefill].")] = None,
           weights: o.Weights = "bf16", activations: o.Activations = "bf16", kv: o.Kv = "bf16",
           tp: o.Tp = "1", pp: o.Pp = "1", allow_long_context: o.AllowLong = False,
           format: o.Format = None, out: o.Out = None):
    """Memory vs batch and context, with max batch and context.

    Weights, KV cache, activations and the fit verdict per (batch, context); max_batch is the
    largest batch that fits at the row's context, max_context_len the longest context that fits
    at the row's batch."""
    from llmperf.cli.render import emit, frame_table
    from llmperf.estimators import sweep, tables

    m, g = sweep.as_model(model), sweep.as_hardware(gpu)
    frame = tables.memory_table(
        m, g, workload(weights, activations, kv, tp, pipeline_parallel=pp),
        batch=parse_lengths(batch, "--batch"),
        context_len=None if context is None else parse_lengths(context, "--context"),
        prompt_len=parse_optional_length(prompt, "--prompt"),
        allow_long_context=allow_long_context)
    emit(frame, output_format(format, out), out, lambda: frame_table(frame, with_pp(MEMORY_TABLE, frame)))


def micro_to_s(value_us):
    """An optional microsecond option in seconds (None stays None)."""
    return None if value_us is None else value_us * 1e-6


def with_pp(columns: list[str], frame) -> list[str]:
    """``columns`` with the pipeline-parallel column after the tensor-parallel one when a row
    has more than one stage (tables for people stay as narrow as before otherwise)."""
    if frame["pipeline_parallel"].max() <= 1:
        return columns
    i = columns.index("tensor_parallel") + 1
    return columns[:i] + ["pipeline_parallel"] + columns[i:]


def _sweep(models, gpus, batch, prompt, output, context, weights, activations, kv, tp, pp,
           attention, calibration, price, allow_long_context, engine, host_us_per_kernel=None,
           spec=None, cached_prompt="0"):
    from llmperf.estimators.sweep import sweep_frame

    return sweep_frame(
        parse_names(models, "-m"), parse_names(gpus, "-g"),
        batch=parse_lengths(batch, "--batch"), prompt_len=parse_lengths(prompt, "--prompt"),
        output_len=parse_lengths(output, "--output"),
        context_len=None if context is None else parse_lengths(context, "--context"),
        weights=parse_names(weights, "--weights"),
        activations=parse_names(activations, "--activations"), kv_cache=parse_names(kv, "--kv"),
        tensor_parallel=parse_lengths(tp, "--tp"), pipeline_parallel=parse_lengths(pp, "--pp"),
        attention=choice(attention, ("flash", "naive"), "--attention"),
        calibration=calibration, price_usd_per_hour=parse_price(price),
        allow_long_context=allow_long_context, engine=None if engine == "none" else engine,
        host_s_per_kernel=micro_to_s(host_us_per_kernel), speculation=spec,
        cached_prompt_len=parse_length(cached_prompt, "--cached-prompt"))


def sweep(model: o.Models, gpu: o.Gpus, batch: o.Batches = "1", prompt: o.Prompts = "1024",
          output: o.Outputs = "256", context: o.Contexts = None,
          weights: o.WeightsList = "bf16", activations: o.ActivationsList = "bf16",
          kv: o.KvList = "bf16", tp: o.TpList = "1", pp: o.PpList = "1",
          attention: o.Attention = "flash",
          calibration: o.Calibration = "auto", engine: o.Engine = "fused",
          host_us_per_kernel: o.HostUs = None, price: o.Price = None,
          spec_tokens: o.SpecTokens = None, draft: o.Draft = None, acceptance: o.Acceptance = None,
          cached_prompt: o.CachedPrompt = "0", allow_long_context: o.AllowLong = False,
          format: o.Format = None, out: o.Out = None):
    """Estimate a grid of scenarios, one tidy row each.

    The grid spans every comma-separated option.

    Rows hold the scenario inputs, then the estimate keys (as estimate's JSON). Write them with
    --out FILE.csv."""
    from llmperf.cli.render import emit, frame_table

    frame = _sweep(model, gpu, batch, prompt, output, context, weights, activations, kv, tp, pp,
                   attention, calibration, price, allow_long_context, engine, host_us_per_kernel,
                   speculation(spec_tokens, draft, acceptance), cached_prompt)
    emit(frame, output_format(format, out), out,
         lambda: frame_table(frame, with_pp(SWEEP_TABLE, frame), title=f"{len(frame)} scenarios"))


def compare(model: o.Model, gpu: o.Gpus = "h100-sxm,h200,mi300x", batch: o.Batch = "1",
            prompt: o.Prompt = "1024", output: o.Output = "256", context: o.Context = None,
            weights: o.WeightsList = "bf16", activations: o.ActivationsList = "bf16",
            kv: o.KvList = "bf16", tp: o.Tp = "1", pp: o.Pp = "1", attention: o.Attention = "flash",
            calibration: o.Calibration = "auto", engine: o.Engine = "fused",
            host_us_per_kernel: o.HostUs = None, price: o.Price = None,
            spec_tokens: o.SpecTokens = None, draft: o.Draft = None, acceptance: o.Acceptance = None,
            cached_prompt: o.CachedPrompt = "0", allow_long_context: o.AllowLong = False,
          format: o.Format = None, out: o.Out = None):
    """One model on several GPUs (or dtypes), side by side.

    Rows are metrics, columns GPUs.

    csv/json give the tidy rows (one per GPU, the estimate keys)."""
    from llmperf.cli.render import emit
    from llmperf.cli.views import compare_table

    frame = _sweep(model, gpu, batch, prompt, output, context, weights, activations, kv, tp, pp,
                   attention, calibration, price, allow_long_context, engine, host_us_per_kernel,
                   speculation(spec_tokens, draft, acceptance), cached_prompt)
    emit(frame, output_format(format, out), out, lambda: compare_table(frame))


def register(app: typer.Typer) -> None:
    """Add these commands to ``app`` (each wrapped so user errors exit with code 2)."""
    app.command("list")(cli_errors(list_))
    for fn in (estimate, memory, sweep, compare):
        app.command()(cli_errors(fn))
