"""End-to-end measurements of the reference decoder (kernels/reference_model.py) for validation.

These numbers are VALIDATION data (DESIGN.md rule 7): nothing in llmperf is fitted to them; this
script computes no prediction. Per model (random bf16 weights) it measures:

* prefill (``method=reference_eager``): one eager forward over the prompt with last-token logits,
  each repetition started from an idle GPU (synchronize, event, forward, event); warm-up runs
  first (the first of them under torch.profiler, to count the kernels); median, p10, p90 of >= 5.
* decode (``method=reference_cuda_graph``): one decode step (one new token per sequence, C tokens
  already in a random-filled static KV cache) captured in a CUDA graph per (batch, C) point and
  replayed back to back, each replay timed with its own CUDA events; >= 20 replays after warm-up.
  The kernel count comes from profiling one eager step of the same function (what the graph holds).
* ``--impl hf`` (``method=hf_eager``): the Hugging Face transformers model of the same config
  (kernels/hf_reference.py), prefill and decode both eager, DynamicCache, timed like the eager
  prefill above.

Every row also records the host's eager launch rate over that very point (tiny models only,
kernels/calibrate_extra.py ``HostRateProbe``, timed once between every two repetitions of an
eager step, or just after a graph-replayed one: ``host_s_per_kernel``, ``host_s_per_step``, and
``host_drift_pct`` = p90 - p10 of the per-sample rates over their median): eager steps are often
bound by the CPU issuing kernels, that rate is a property of the host, not of the GPU, and on
shared hosts it moved by 20-70% within a second (session 3, H100). The probe runs shapes that share nothing
with the measured model; it is recorded so that predictions can use the CPU speed the
measurement ran at (llmperf.validation), never fitted.

Points are measured cheapest first within a per-model time budget (rows are appended to the CSV as
they are measured, so a timeout loses nothing); points whose weights + KV cache + activations
would exceed 90% of the device memory are skipped, and an out-of-memory error skips the point.

Usage (GPU): python -m llmperf_kernels.measure_e2e --out OUT/h100-sxm5-80gb.csv [--budget-s 470]
Dry run on CPU (tiny model, tiny grid, perf_counter timing): python -m llmperf_kernels.measure_e2e --cpu-dry-run --out x.csv
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import gc
import os
import sys
import time
from collections import Counter

import torch

from .reference_model import ReferenceDecoder, capture_decode, grouped_mm_available, prefill_activation_bytes
from .step_timing import attention_backend, event_time_s, profile_kernels, quantiles

MODELS = ("llama-3.2-1b", "llama-3.1-8b", "qwen2.5-7b", "llama-2-7b", "qwen3-8b", "qwen3-30b-a3b",
          "mistral-7b-v0.3")
HF_MODELS = ("llama-3.2-1b", "llama-3.1-8b", "qwen2.5-7b", "llama-2-7b", "qwen3-8b")
BUDGET_WEIGHT = {"llama-3.2-1b": 0.7, "qwen3-30b-a3b": 1.4, "mistral-7b-v0.3": 0.5}  # others 1.0
PREFILL_BATCH, PREFILL_LEN, MAX_PREFILL_TOKENS = (1, 4, 16), (128, 512, 2048, 8192, 16384), 65536
DECODE_BATCH, DECODE_CTX = (1, 8, 32, 128, 256), (512, 2048, 8192, 32768)
# transformers runs eagerly and copies its whole cache every decode step: a smaller grid
HF_GRID = dict(prefill_batch=(1, 4), prefill_len=(128, 512, 2048, 8192), max_prefill_tokens=16384,
               decode_batch=(1, 8, 32), decode_ctx=(512, 2048, 8192))
MEMORY_FRACTION = 0.90
COLUMNS = ["model", "hardware", "device_name", "driver", "torch_version", "triton_version", "date",
           "method", "phase", "batch", "prompt_len", "context_len", "time_s", "time_s_p10", "time_s_p90",
           "repetitions", "kernels_per_step", "weights", "attention_backend", "host_s_per_kernel",
           "host_s_per_step", "host_drift_pct"]


def log(*a):
    print(*a, flush=True)


class Sink:
    """Appends one CSV row per measurement (flushed) and keeps them for the summary table."""

    def __init__(self, path, meta):
        self.path, self.meta, self.rows = path, meta, []
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.fh = open(path, "w", newline="")
        self.w = csv.DictWriter(self.fh, fieldnames=COLUMNS)
        self.w.writeheader()
        self.fh.flush()

    def add(self, **row):
        row = {**self.meta, **row}
        self.w.writerow({k: row.get(k, "") for k in COLUMNS})
        self.fh.flush()
        self.rows.append(row)


class Runner:
    def __init__(self, sink, kernel_log, cuda: bool, impl: str = "reference"):
        self.sink, self.kernel_log, self.cuda, self.impl = sink, kernel_log, cuda, impl
        self.eager_method = "hf_eager" if impl == "hf" else "reference_eager"
        self.probe = make_host_probe(impl) if cuda else None
        self.host_samples = []

    def _sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def _mem_ok(self, need: int) -> bool:
        if not self.cuda:
            return True
        free, total = torch.cuda.mem_get_info()
        used = total - free
        return used + need <= MEMORY_FRACTION * total

    def _kernels(self, model, phase, batch, seq, fn):
        names = profile_kernels(fn)
        backend = attention_backend([n for n in names if any(s in n.lower() for s in
                                     ("flash", "fmha", "attention", "cudnn", "softmax", "bmm"))])
        if self.kernel_log is not None:
            c = Counter(names)
            self.kernel_log.write(f"## {model} {phase} batch={batch} seq={seq}: {len(names)} kernels\n")
            for n, k in c.most_common():
                self.kernel_log.write(f"{k:6d}  {n[:200]}\n")
            self.kernel_log.flush()
        return len(names), backend

    def prefill(self, model, name, B, T):
        tokens = torch.randint(0, model.V, (B, T), device=model.device)
        cache = model.new_cache(B, T, fill="empty")
        run = lambda: model.prefill(tokens, cache)  # noqa: E731
        nk, backend = self._kernels(name, "prefill", B, T, run)   # first warm-up, profiled
        self._sync()
        t0 = time.perf_counter()
        run()
        self._sync()
        est = time.perf_counter() - t0
        reps = int(min(max(0.4 / max(est, 1e-6), 5), 30))
        ts = []
        for _ in range(reps):
            self.sample_host()
            ts.append(event_time_s(run, self.cuda))
        med, p10, p90 = quantiles(ts)
        return dict(model=name, method=self.eager_method, phase="prefill", batch=B, prompt_len=T,
                    context_len=0, time_s=med, time_s_p10=p10, time_s_p90=p90, repetitions=reps,
                    kernels_per_step=nk, weights="bf16" if model.dtype == torch.bfloat16 else str(model.dtype),
                    attention_backend=backend)

    def decode(self, model, name, B, C):
        tokens = torch.randint(0, model.V, (B,), device=model.device)
        cache = model.new_cache(B, C + 1, fill="random")
        nk, backend = self._kernels(name, "decode", B, C, lambda: model.decode(tokens, cache, C))
        graph = None
        if self.cuda and getattr(model, "graphable", True):
            try:
                graph, _ = capture_decode(model, tokens, cache, C)
            except Exception as exc:  # noqa: BLE001 - not capturable: time eager steps instead
                log(f"  decode B={B} C={C}: graph capture failed ({type(exc).__name__}: {str(exc)[:200]}); eager")
                torch.cuda.synchronize()
        if graph is not None:
            for _ in range(3):
                graph.replay()
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            graph.replay()
            torch.cuda.synchronize()
            est = time.perf_counter() - t0
            reps = int(min(max(0.25 / max(est, 1e-6), 20), 200))
            ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
            for s, e in ev:
                s.record()
                graph.replay()
                e.record()
            torch.cuda.synchronize()
            ts = [s.elapsed_time(e) * 1e-3 for s, e in ev]
            del graph
            method = "reference_cuda_graph"
        else:
            model.decode(tokens, cache, C)
            before = getattr(model, "before_step", lambda cache, pos: None)
            reps, ts = 20 if self.cuda else 5, []
            for _ in range(reps):
                before(cache, C)  # untimed: restore the same cache state
                self.sample_host()
                ts.append(event_time_s(lambda: model.decode(tokens, cache, C), self.cuda))
            method = self.eager_method
        med, p10, p90 = quantiles(ts)
        return dict(model=name, method=method, phase="decode", batch=B, prompt_len=0, context_len=C,
                    time_s=med, time_s_p10=p10, time_s_p90=p90, repetitions=reps, kernels_per_step=nk,
                    weights="bf16" if model.dtype == torch.bfloat16 else str(model.dtype),
                    attention_backend=backend)

    def sample_host(self):
        """Time the host-rate probe once, between two timed repetitions of an eager step."""
        if self.probe is not None:
            self.host_samples.append(self.probe.sample())

    def host_rate(self):
        """(s per kernel, s per step, drift %) of the host over the point just measured: from the
        probe samples interleaved with its eager repetitions (drift = p90 - p10 of the per-sample
        rates, each taken by rank rounded down, over the median-based rate), else (a graph-replayed step) from a probe just after it.
        NaN on the CPU or when the probe cannot run."""
        if self.probe is None:
            return float("nan"), float("nan"), float("nan")
        if not self.host_samples:
            return (*self.probe.measure(rounds=5, calls=8)[:2], float("nan"))
        per_kernel, per_step = self.probe.rate(self.host_samples)
        each = sorted(self.probe.rate(s)[0] for s in self.host_samples)
        spread = each[int(0.9 * (len(each) - 1))] - each[int(0.1 * (len(each) - 1))]
        return per_kernel, per_step, spread / per_kernel * 100 if per_kernel > 0 else float("nan")

    def point(self, what, fn, *args):
        """Measure one point; the row records the host rate over that very point
        (``host_s_per_kernel``, ``host_s_per_step``) and how much it moved (``host_drift_pct``)."""
        try:
            self.host_samples = []
            row = fn(*args)
            per_kernel, per_step, drift = self.host_rate()
            self.sink.add(**row, host_s_per_kernel=per_kernel, host_s_per_step=per_step, host_drift_pct=drift)
            log(f"  {what}: {row['time_s'] * 1e3:9.3f} ms  (host {per_kernel * 1e6:.1f} us/kernel, "
                f"spread {drift:.0f}%)")
            return True
        except torch.cuda.OutOfMemoryError:
            log(f"  {what}: SKIPPED (out of memory)")
        except Exception as exc:  # noqa: BLE001 - one failing point must not stop the sweep
            log(f"  {what}: FAILED {type(exc).__name__}: {str(exc)[:300]}")
        finally:
            gc.collect()
            if self.cuda:
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
        return False


def make_host_probe(impl: str):
    """The tiny-model host-rate probe of this implementation (calibrate_extra), or None when it
    cannot be built (the rows then carry NaN and predictions use the calibration's host rate)."""
    from .calibrate_extra import hf_host_probe, reference_host_probe

    try:
        probe = (hf_host_probe if impl == "hf" else reference_host_probe)()
    except Exception as exc:  # noqa: BLE001 - the rows are still worth having
        log(f"host-rate probe: FAILED {type(exc).__name__}: {str(exc)[:200]}")
        return None
    per_kernel, per_step, k_small, k_large = probe.measure()
    log(f"host-rate probe ({impl}): {per_kernel * 1e6:.1f} us per kernel + {per_step * 1e6:.0f} us per step "
        f"({k_small} / {k_large} kernels)")
    return probe


def build_model(runner, name, spec, dtype, device, hf_config=None):
    if runner.impl == "hf":
        from .hf_reference import HFDecoder, hf_config_dict

        return HFDecoder(hf_config if hf_config is not None else hf_config_dict(name), device, dtype)
    return ReferenceDecoder(spec, device, dtype, seed=0)


def measure_model(runner, name, spec, budget_s, grid, dtype, device, hf_config=None):
    t_start = time.perf_counter()
    if spec.is_moe and runner.impl == "hf":
        log(f"== {name}: SKIPPED (transformers runs MoE experts in a Python loop; no engine profile models that)")
        return
    if spec.is_moe and device == "cuda" and not grouped_mm_available(device):
        log(f"== {name}: SKIPPED (torch._grouped_mm does not run here; the dense MoE path is not a serving engine)")
        return
    model = build_model(runner, name, spec, dtype, device, hf_config)
    wb = model.weight_bytes()
    log(f"== {name} ({runner.impl}): weights {wb / 1e9:.2f} GB, "
        f"moe_impl={getattr(model, 'moe_impl', '-') if spec.is_moe else '-'}, budget {budget_s:.0f} s")
    dec = sorted(((B, C) for B in grid["decode_batch"] for C in grid["decode_ctx"]), key=lambda p: (p[0] * p[1], p[0]))
    pre = sorted(((B, T) for B in grid["prefill_batch"] for T in grid["prefill_len"]
                  if B * T <= grid["max_prefill_tokens"]), key=lambda p: (p[0] * p[1], p[0]))
    decode_deadline = t_start + 0.45 * budget_s
    for B, C in dec:
        need = model.kv_cache_bytes(B, C + 1) + 2 * B * model.V * 4 + (256 << 20)
        if not runner._mem_ok(need):
            log(f"  decode B={B} C={C}: SKIPPED (memory: KV {model.kv_cache_bytes(B, C + 1) / 1e9:.1f} GB)")
            continue
        if time.perf_counter() > decode_deadline:
            log(f"  decode B={B} C={C}: SKIPPED (time budget)")
            continue
        runner.point(f"decode  B={B:3d} C={C:5d}", runner.decode, model, name, B, C)
    for B, T in pre:
        need = model.kv_cache_bytes(B, T) + prefill_activation_bytes(spec, B * T)
        if not runner._mem_ok(need):
            log(f"  prefill B={B} T={T}: SKIPPED (memory: KV+act {need / 1e9:.1f} GB)")
            continue
        if time.perf_counter() > t_start + budget_s:
            log(f"  prefill B={B} T={T}: SKIPPED (time budget)")
            continue
        runner.point(f"prefill B={B:3d} T={T:5d}", runner.prefill, model, name, B, T)
    del model
    gc.collect()
    if runner.cuda:
        torch.cuda.empty_cache()
    log(f"== {name}: {time.perf_counter() - t_start:.1f} s")


def gpu_self_check(spec_dense, spec_moe):
    """bf16 on the GPU: graph-replayed decode after prefill vs a full prefill, grouped vs dense MoE."""
    def rel(a, b):
        return ((a.float() - b.float()).norm() / b.float().norm()).item()
    for spec in (spec_dense, spec_moe):
        try:
            m = ReferenceDecoder(spec, "cuda", torch.bfloat16, seed=7)
            B, T = 4, 37
            tok = torch.randint(0, m.V, (B, T), device="cuda")
            full = m.prefill(tok, m.new_cache(B, T))
            cache = m.new_cache(B, T + 8)
            m.prefill(tok[:, :T - 1], cache)
            eager = m.decode(tok[:, T - 1], cache, T - 1).clone()
            graph, out = capture_decode(m, tok[:, T - 1].contiguous(), cache, T - 1)
            with torch.inference_mode():  # out is an inference tensor: poison it, then replay
                out.fill_(float("nan"))
            graph.replay()
            torch.cuda.synchronize()
            msg = f"self-check {spec.name} ({m.moe_impl}): decode(graph) vs prefill rel err {rel(out, full):.2e}, " \
                  f"graph vs eager {rel(out, eager):.2e}"
            if spec.is_moe:
                d = ReferenceDecoder(spec, "cuda", torch.bfloat16, seed=7, moe_impl="dense")
                msg += f", grouped_mm vs dense MoE prefill {rel(full, d.prefill(tok, d.new_cache(B, T))):.2e}"
            log(msg)
        except Exception as exc:  # noqa: BLE001
            log(f"self-check {spec.name}: FAILED {type(exc).__name__}: {str(exc)[:300]}")


def tiny_specs(base):
    tiny = dict(num_layers=2, hidden_size=256, vocab_size=512, num_attention_heads=8, num_kv_heads=2,
                head_dim=64, v_head_dim=64, intermediate_size=512, layer_types=("full",) * 2)
    return {"tiny-moe": base.model_copy(update=dict(tiny, name="tiny-moe", num_experts=8, experts_per_token=2,
                                                    moe_intermediate_size=128, moe_layers=(True,) * 2)),
            "tiny-dense": base.model_copy(update=dict(tiny, name="tiny-dense", qkv_bias=True,
                                                      moe_layers=(False,) * 2, num_experts=0))}


def summary(rows):
    log("\nmodel             phase    batch   len    time_ms   p10_ms   p90_ms  reps kern attn")
    for r in rows:
        n = r["prompt_len"] if r["phase"] == "prefill" else r["context_len"]
        log(f"{r['model']:17s} {r['phase']:8s} {r['batch']:5d} {n:5d} {r['time_s'] * 1e3:10.3f} "
            f"{r['time_s_p10'] * 1e3:8.3f} {r['time_s_p90'] * 1e3:8.3f} {r['repetitions']:5d} "
            f"{r['kernels_per_step']:4d} {r['attention_backend']}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="CSV path (the folder also gets kernels_<hw>.txt)")
    ap.add_argument("--models", default=None, help="comma-separated bundled names (default: all of the impl)")
    ap.add_argument("--impl", choices=("reference", "hf"), default="reference",
                    help="our reference decoder, or the Hugging Face transformers model of the same config")
    ap.add_argument("--budget-s", type=float, default=470.0, help="wall-clock budget for all models")
    ap.add_argument("--cpu-dry-run", action="store_true", help="tiny model and grid on the CPU (script test)")
    args = ap.parse_args(argv)
    from llmperf import load_model

    t0 = time.perf_counter()
    cuda = torch.cuda.is_available() and not args.cpu_dry_run
    if cuda:
        from .calibrate import detect_hardware
        from .harness import device_metadata
        md = device_metadata()
        hw = detect_hardware(md["device_name"])
        meta = dict(hardware=hw, device_name=md["device_name"], driver=md.get("driver_version", "unknown"),
                    torch_version=md["torch_version"], triton_version=md["triton_version"], date=md["date_utc"])
        grid = HF_GRID if args.impl == "hf" else dict(
            prefill_batch=PREFILL_BATCH, prefill_len=PREFILL_LEN, max_prefill_tokens=MAX_PREFILL_TOKENS,
            decode_batch=DECODE_BATCH, decode_ctx=DECODE_CTX)
        dtype, device = torch.bfloat16, "cuda"
        names = [m for m in (args.models or ",".join(HF_MODELS if args.impl == "hf" else MODELS)).split(",") if m]
        specs = {n: load_model(n) for n in names}
    else:
        import triton
        meta = dict(hardware="cpu", device_name="cpu", driver="none", torch_version=torch.__version__,
                    triton_version=triton.__version__,
                    date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        grid = dict(prefill_batch=(1, 2), prefill_len=(8, 16), max_prefill_tokens=16, decode_batch=(1, 3),
                    decode_ctx=(8, 32))
        dtype, device = torch.float32, "cpu"
        specs = tiny_specs(load_model("qwen3-30b-a3b"))
        if args.impl == "hf":  # the dense tiny spec as a transformers Llama
            specs = {"tiny-dense": specs["tiny-dense"]}
    log(f"meta: {meta}")
    if cuda:
        t = tiny_specs(load_model("qwen3-30b-a3b"))
        log(f"torch._grouped_mm runs here: {grouped_mm_available('cuda')}")
        gpu_self_check(t["tiny-dense"], t["tiny-moe"])
    sink = Sink(args.out, meta)
    stem = os.path.splitext(os.path.basename(args.out))[0]
    kpath = os.path.join(os.path.dirname(os.path.abspath(args.out)), f"kernels_{stem}.txt")
    hf_config = None
    if args.impl == "hf" and not cuda:
        from .hf_reference import tiny_llama_config
        hf_config = tiny_llama_config(2)
    with open(kpath, "w") as klog:
        runner = Runner(sink, klog, cuda, args.impl)
        weights = {n: BUDGET_WEIGHT.get(n, 1.0) for n in specs}
        for i, (name, spec) in enumerate(specs.items()):
            left = args.budget_s - (time.perf_counter() - t0)
            share = left * weights[name] / sum(weights[n] for n in list(specs)[i:])
            if left < 10:
                log(f"== {name}: SKIPPED (total budget spent)")
                continue
            try:
                measure_model(runner, name, spec, share, grid, dtype, device, hf_config)
            except torch.cuda.OutOfMemoryError:
                log(f"== {name}: SKIPPED (weights do not fit)")
            except Exception as exc:  # noqa: BLE001
                log(f"== {name}: FAILED {type(exc).__name__}: {str(exc)[:300]}")
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
    summary(sink.rows)
    log(f"\n{len(sink.rows)} rows -> {args.out}; kernel lists -> {kpath}; {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
