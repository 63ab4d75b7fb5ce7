"""Reusable typer option declarations (one definition per flag, shared by every command).

Values that users type as numbers or words (batch sizes, lengths, dtypes, formats) are taken as
strings and validated by llmperf itself, so a bad value is one line ``error: ...`` and exit 2.
"""

from pathlib import Path
from typing import Annotated, Optional

import typer

Model = Annotated[str, typer.Option(
    "-m", "--model", metavar="NAME|PATH", help="Bundled model name (see `llmperf list models`) or a path to a "
                          "Hugging Face config.json / model YAML.")]
Models = Annotated[str, typer.Option(
    "-m", "--model", metavar="NAMES", help="Comma-separated model names or spec paths.")]
Gpu = Annotated[str, typer.Option(
    "-g", "--gpu", metavar="NAME|PATH", help="Bundled accelerator name or alias (see `llmperf list hardware`) or a "
                        "hardware YAML path.")]
Gpus = Annotated[str, typer.Option(
    "-g", "--gpu", metavar="NAMES", help="Comma-separated accelerator names or hardware YAML paths.")]

Batch = Annotated[str, typer.Option("--batch", "-b", metavar="N", help="Sequences per step.")]
Batches = Annotated[str, typer.Option("--batch", "-b", metavar="LIST", help="Batch sizes, comma-separated: 1,8,64.")]
Prompt = Annotated[str, typer.Option(
    "--prompt", metavar="TOKENS", help="Prompt tokens prefilled per sequence (TTFT); 2048, 2k, 32K.")]
Prompts = Annotated[str, typer.Option("--prompt", metavar="LIST", help="Prompt lengths, comma-separated.")]
Output = Annotated[str, typer.Option(
    "--output", metavar="TOKENS", help="Generated tokens per sequence (request latency, throughput).")]
Outputs = Annotated[str, typer.Option("--output", metavar="LIST", help="Output lengths, comma-separated.")]
Context = Annotated[Optional[str], typer.Option(
    "--context", metavar="TOKENS", help="Tokens in the KV cache at the decode step reported as TPOT "
                            "[default: prompt + output - 1, the last step].")]
Contexts = Annotated[Optional[str], typer.Option(
    "--context", metavar="LIST", help="Decode contexts, comma-separated: 1k,8k,32k (TPOT at each).")]

Weights = Annotated[str, typer.Option(
    "--weights", metavar="DTYPE", help="Weight dtype: bf16, fp16, fp8, fp8-block, int8, int4, int4-g64, nvfp4, mxfp4.")]
WeightsList = Annotated[str, typer.Option("--weights", metavar="DTYPES", help="Weight dtypes, comma-separated.")]
Activations = Annotated[str, typer.Option(
    "--activations", metavar="DTYPE", help="Activation/compute dtype: bf16, fp16, fp8, int8, fp32.")]
ActivationsList = Annotated[str, typer.Option(
    "--activations", metavar="DTYPES", help="Activation dtypes, comma-separated.")]
Kv = Annotated[str, typer.Option("--kv", metavar="DTYPE", help="KV-cache dtype: bf16, fp16, fp8, int8, int4.")]
KvList = Annotated[str, typer.Option("--kv", metavar="DTYPES", help="KV-cache dtypes, comma-separated.")]
Tp = Annotated[str, typer.Option("--tp", metavar="N", help="Tensor-parallel devices per model replica.")]
TpList = Annotated[str, typer.Option("--tp", metavar="LIST", help="Tensor-parallel sizes, comma-separated.")]
Pp = Annotated[str, typer.Option("--pp", metavar="N", help="Pipeline-parallel stages per model replica "
                                 "(each --tp devices; the batch runs as N micro-batches).")]
PpList = Annotated[str, typer.Option("--pp", metavar="LIST", help="Pipeline-parallel stage counts, comma-separated.")]
Attention = Annotated[str, typer.Option(
    "--attention", metavar="flash|naive", help="flash (fused, scores stay on chip) or naive (scores in memory).")]
Calibration = Annotated[str, typer.Option(
    "--calibration", metavar="ideal|auto", help="ideal (pure roofline) or auto (the GPU's calibration when "
                          "available; ideal for now).")]
Price = Annotated[Optional[float], typer.Option(
    "--price", metavar="USD", help="USD per device-hour, for the cost columns [default: the spec's price].")]
AllowLong = Annotated[bool, typer.Option(
    "--allow-long-context", help="Allow lengths beyond the model's max_position_embeddings.")]
Phase = Annotated[str, typer.Option(
    "--phase", metavar="decode|prefill", help="Step to analyse: decode (at --context) or prefill (of --prompt).")]

Format = Annotated[Optional[str], typer.Option(
    "--format", "-f", metavar="table|csv|json", help="table, csv or json [default: from the --out suffix, else table].")]
Out = Annotated[Optional[Path], typer.Option(
    "--out", metavar="FILE", help="Write to this file (created only on success) instead of stdout.")]

HostUs = Annotated[Optional[float], typer.Option(
    "--host-us-per-kernel", metavar="US",
    help="Your CPU's eager launch time per kernel (µs; `llmperf calibrate` measures it), for "
         "steps an engine launches eagerly (hf-transformers, reference prefill) [default: the "
         "calibration's own host].")]
Engine = Annotated[str, typer.Option(
    "--engine", metavar="NAME", help="Engine profile: fused (vLLM/SGLang-like, CUDA graphs), "
                                     "reference (llmperf's PyTorch decoder), hf-transformers, "
                                     "triton, or none (bare op model).")]
SpecTokens = Annotated[Optional[str], typer.Option(
    "--spec-tokens", metavar="K", help="Speculative decoding: tokens drafted per round (needs --draft "
    "and --acceptance).")]
Draft = Annotated[Optional[str], typer.Option(
    "--draft", metavar="MODEL|ngram", help="Draft model for speculative decoding (bundled name or path), "
    "or ngram for a draft-free proposer (n-gram / prompt lookup, drafting not timed).")]
Acceptance = Annotated[Optional[float], typer.Option(
    "--acceptance", metavar="P", help="Probability that each drafted token is accepted (0-1).")]
CachedPrompt = Annotated[str, typer.Option(
    "--cached-prompt", metavar="TOKENS", help="Prompt tokens already in the prefix cache; the "
    "prefill computes only the rest (TTFT).")]
