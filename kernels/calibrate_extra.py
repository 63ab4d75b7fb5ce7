"""Calibration sweeps beyond the kernel grid: eager host time, torch elementwise ops, grouped
GEMMs, burst vs sustained GEMMs, paged decode attention, and the launch-only mode that runs them
(``python -m llmperf_kernels.calibrate --mode launch``)."""

from __future__ import annotations

import time

import torch

from llmperf.calibration_table import CALIBRATION_COLUMNS
from llmperf.ops.formulas import attention_flops, attention_io_bytes, gemm_bytes, gemm_flops

from . import harness
from .attention_decode import attention_decode
from .calibrate_common import Recorder, _rand
from .membound import copy


class HostRateProbe:
    """The host's eager issue rate, from two tiny models that differ only in their layer count.

    ``prefill_of_layers(n)`` returns a no-argument eager prefill of a tiny model with n layers.
    The tiny models' kernels are far too small to keep the GPU busy, so the wall time of a
    prefill is what the host needs to issue it through Python and torch: host(step) = a + b x
    kernels, b from the difference of the two models, a the rest of the smaller one (>= 0).
    The models are built and profiled once; ``measure`` can then be repeated cheaply, e.g. around
    every end-to-end point, to follow a host whose speed drifts.
    """

    def __init__(self, prefill_of_layers, layers=(2, 8)):
        from .step_timing import profile_kernels

        self.runs = [prefill_of_layers(n) for n in layers]
        self.kernels = [len(profile_kernels(run)) for run in self.runs]
        for run in self.runs:
            for _ in range(5):
                run()

    @staticmethod
    def _seconds_per_call(run, rounds: int, calls: int) -> float:
        """Median over rounds of the mean wall time of ``calls`` back-to-back calls (s)."""
        times = []
        for _ in range(rounds):
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(calls):
                run()
            torch.cuda.synchronize()
            times.append((time.perf_counter() - start) / calls)
        return sorted(times)[len(times) // 2]

    def measure(self, rounds: int = 7, calls: int = 30):
        """(seconds per kernel, seconds per step, kernels of the small, of the large model)."""
        per_kernel, per_step = self.rate(
            [self._seconds_per_call(run, rounds, calls) for run in self.runs])
        return per_kernel, per_step, *self.kernels

    def sample(self):
        """One call of each model, timed: (s small, s large) -- interleaved with the repetitions
        of a measurement, so that the rate is taken over the same seconds as the measurement."""
        return tuple(self._seconds_per_call(run, 1, 1) for run in self.runs)

    def rate(self, times):
        """(s per kernel, s per step) from (s small, s large) or from a list of such samples
        (the median of each model's times)."""
        if times and isinstance(times[0], (tuple, list)):
            times = [sorted(ts)[len(ts) // 2] for ts in zip(*times)]
        (t_small, t_large), (k_small, k_large) = times, self.kernels
        per_kernel = (t_large - t_small) / (k_large - k_small)
        return per_kernel, max(t_small - per_kernel * k_small, 0.0)


def reference_host_probe() -> HostRateProbe:
    """Host rate of eager PyTorch through our reference decoder (the ``reference`` engine's
    prefill): tiny decoders (hidden 256, 2 and 8 layers), 16-token prefills."""
    from llmperf import load_model

    from .reference_model import ReferenceDecoder

    def prefill_of_layers(layers):
        tiny = dict(name=f"tiny-host-{layers}", num_layers=layers, hidden_size=256, vocab_size=512,
                    num_attention_heads=8, num_kv_heads=2, head_dim=32, v_head_dim=32,
                    intermediate_size=512, layer_types=("full",) * layers, moe_layers=(False,) * layers)
        model = ReferenceDecoder(load_model("llama-3.2-1b").model_copy(update=tiny), "cuda", torch.bfloat16)
        tokens = torch.randint(0, 512, (1, 16), device="cuda")
        cache = model.new_cache(1, 32)
        return lambda: model.prefill(tokens, cache)

    return HostRateProbe(prefill_of_layers)


def hf_host_probe() -> HostRateProbe:
    """Host rate of a Hugging Face transformers model's eager forward (the ``hf-transformers``
    engine): tiny LlamaForCausalLM (hidden 256, 2 and 8 layers), 16-token prefills into a fresh
    DynamicCache. Needs transformers."""
    from .hf_reference import HFDecoder, tiny_llama_config

    def prefill_of_layers(layers):
        model = HFDecoder(tiny_llama_config(layers), "cuda", torch.bfloat16)
        tokens = torch.randint(0, 512, (1, 16), device="cuda")
        return lambda: model.prefill(tokens)

    return HostRateProbe(prefill_of_layers)


HOST_PROBES = {"torch_eager": reference_host_probe, "hf_eager": hf_host_probe}


def sweep_host(rec: Recorder) -> None:
    """Host time of eager execution per kernel and per step, for each eager engine: layout
    ``<engine>`` (seconds per kernel, m = kernels of the difference) and ``<engine>_step``
    (seconds per step). No validated model's shapes are used (tiny models only)."""
    for layout, probe in HOST_PROBES.items():
        try:
            per_kernel, per_step, k_small, k_large = probe().measure()
        except ImportError as exc:  # transformers absent: no hf rows
            rec.failures.append(f"host rate {layout}: {exc}")
            continue
        for row_layout, value, kernels in ((layout, per_kernel, k_large - k_small),
                                           (f"{layout}_step", per_step, k_small)):
            if value <= 0:  # a per-step intercept lost in the noise: no row (read as 0)
                continue
            row = {c: float("nan") for c in CALIBRATION_COLUMNS}
            row.update(rec.meta, kernel_source="torch", op_kind="launch", name="host_time",
                       dtype="none", flops=0.0, bytes=0.0, time_s=value, layout=row_layout, m=float(kernels))
            rec.rows.append(row)
        rec.progress(f"{layout} host time: {per_kernel * 1e6:.1f} us per kernel + "
                     f"{per_step * 1e6:.0f} us per step ({k_small} / {k_large} kernels)")


# token counts of the torch-op sweep: dense enough in log size that a held-out point is an
# interpolation, not an extrapolation (session 2 had 6 sizes: 28% median held-out error)
TORCH_OP_TOKENS = (1, 4, 16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)


def sweep_torch_ops(rec: Recorder) -> None:
    """HF-style RMSNorm and rotate_half RoPE as torch eager ops (the reference/HF engines'
    memory-bound ops: 8 and 5 kernels, strided and broadcasting), timed whole. Rows: op_kind
    memory, kernel_source torch_ops, ``kernels`` = launches in the function, bytes as the op model
    counts them (36 and 20 bytes per element)."""
    from .reference_model import apply_rope, rms_norm

    for t in TORCH_OP_TOKENS:
        x, w = _rand(t, 4096), _rand(4096)
        rec.add("torch_ops", "memory", "torch_rmsnorm", "bf16", 0.0, 36.0 * t * 4096,
                lambda: rms_norm(x, w, 1e-6), m=t, n=4096, kernels=8)
        q = _rand(1, t, 32, 128)
        cos, sin = _rand(t, 128), _rand(t, 128)
        rec.add("torch_ops", "memory", "torch_rope", "bf16", 0.0, 20.0 * t * 32 * 128,
                lambda: apply_rope(q, cos, sin), m=t, n=4096, kernels=5)
    rec.progress(f"torch eager elementwise ops: {len(rec.rows)} rows")


def sweep_routing(rec: Recorder) -> None:
    """The MoE steps around the grouped GEMMs as the reference engine runs them, each timed whole
    (torch eager ops, the functions of kernels/reference_model.py), one curve each:
    ``torch_router_topk`` (fp32 softmax, top-k, renormalise, cast: router logits [T, E] ->
    weights and experts), ``torch_experts_sort`` (argsort of the T*k pairs by expert, source rows,
    per-expert counts by scatter_add, cumsum into int32 offsets), ``torch_experts_permute`` (the
    row gather, index_select), ``torch_experts_unpermute`` (index_copy back to token order and the
    broadcast multiply by the routing weights), ``torch_experts_combine`` (the sum over the k
    slots). Sorts and scans are latency-bound far beyond decode sizes, and the index kernels
    stream at their own rates (index_copy: ~1.3 TB/s on an H100), so none of them follows the
    plain bandwidth curve. Shapes: Qwen3-30B-A3B (128 experts, top 8, hidden 2048) and
    Mixtral-8x7B (8, top 2, hidden 4096), T = 1 .. 32k tokens. Bytes as the reference engine's op
    model counts them (llmperf.ops.ffn + engines), m = the op's elements, ``kernels`` = launches
    in the function (torch profiler)."""
    from llmperf import load_model
    from llmperf.engines import apply_engine, get_engine
    from llmperf.ops.builder import build_step_ops
    from llmperf.specs.workload import Step, Workload

    from .step_timing import profile_kernels
    from .reference_model import route_topk, sort_by_expert, unpermute

    engine = get_engine("reference")
    for name in ("qwen3-30b-a3b", "mixtral-8x7b"):
        spec = load_model(name)
        experts, top_k, hidden = spec.num_experts, spec.experts_per_token, spec.hidden_size
        for tokens in GROUPED_TOKENS:
            step = Step.prefill(1.0, float(tokens))
            ops = {op.name: op for op in apply_engine(build_step_ops(spec, Workload(), step), engine)}
            pairs = tokens * top_k
            logits, h = _rand(tokens, experts), _rand(tokens, hidden)
            topi = torch.rand(tokens, experts, device="cuda").argsort(dim=1)[:, :top_k].contiguous()
            topw = torch.rand(tokens, top_k, device="cuda").to(torch.bfloat16)
            order, rows, _ = sort_by_expert(topi, experts)
            y, yk = _rand(pairs, hidden), _rand(tokens, top_k, hidden)
            for op_name, fn in (("router_topk", lambda: route_topk(logits, top_k)),
                                ("experts_sort", lambda: sort_by_expert(topi, experts)),
                                ("experts_permute", lambda: h.index_select(0, rows)),
                                ("experts_unpermute", lambda: unpermute(y, order, topw)),
                                ("experts_combine", lambda: yk.sum(dim=1))):
                op = ops[op_name]
                rec.add("torch_ops", "memory", f"torch_{op_name}", "bf16", 0.0, float(op.memory_bytes),
                        fn, m=float(op.shape["elements"]), n=experts, k=top_k,
                        kernels=len(profile_kernels(fn)))
    rec.progress(f"MoE routing ops: {len(rec.rows)} rows")


GROUPED_TOKENS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)


def sweep_grouped(rec: Recorder) -> None:
    """MoE experts as one grouped GEMM (``torch._grouped_mm``, CUTLASS on sm90), the way the
    reference engine runs Qwen3-MoE: T tokens x top-k rows routed uniformly at random over E
    experts, for the expert shapes of Qwen3-30B-A3B (128 experts, top 8) and Mixtral-8x7B (8,
    top 2), T from 1 to 32k (16k for Mixtral) so that both the weight-bound decode regime and
    the compute-bound prefill regime (hundreds to thousands of rows per expert) are measured.
    Rows: op_kind gemm, kernel_source cutlass_grouped, m = rows per expert touched, n/k per
    expert."""
    if not hasattr(torch, "_grouped_mm"):
        rec.failures.append("torch._grouped_mm is not available")
        return
    from llmperf import load_model

    for name, token_counts in (("qwen3-30b-a3b", GROUPED_TOKENS), ("mixtral-8x7b", GROUPED_TOKENS[:-1])):
        spec = load_model(name)
        experts, top_k, h, f = spec.num_experts, spec.experts_per_token, spec.hidden_size, spec.moe_intermediate_size
        for n, k in ((2 * f, h), (h, f)):
            w = _rand(experts, n, k)
            for tokens in token_counts:
                rows = tokens * top_k
                # top_k distinct experts per token, uniformly at random
                chosen = torch.rand(tokens, experts, device="cuda").argsort(dim=1)[:, :top_k].reshape(-1)
                counts = torch.bincount(chosen, minlength=experts)
                offs = counts.cumsum(0).to(torch.int32)
                touched = int((counts > 0).sum())
                x = _rand(rows, k)
                flops = 2.0 * rows * n * k
                nbytes = 2.0 * (touched * n * k + rows * (k + n))
                rec.add("cutlass_grouped", "gemm", "grouped_mm", "bf16", flops, nbytes,
                        lambda: torch._grouped_mm(x, w.transpose(-2, -1), offs=offs),
                        m=rows / max(touched, 1), n=n, k=k)
    rec.progress(f"grouped GEMM: {len(rec.rows)} rows")


def _sm_clock_mhz() -> float:
    """Current SM clock (NVML through torch), NaN where it cannot be read."""
    try:
        return float(torch.cuda.clock_rate())
    except Exception:  # noqa: BLE001 - pynvml missing or not an NVIDIA GPU
        return float("nan")


SUSTAINED_SHAPES = ((8192, 6144, 4096), (8192, 28672, 4096), (16384, 4096, 14336), (16384, 6144, 4096))


def sweep_sustained(rec: Recorder, idle_s: float = 1.0, warm_s: float = 1.0, timed_s: float = 0.5) -> None:
    """The same large GEMM timed as a short burst after ``idle_s`` of idle GPU (the calibration
    protocol: graph replay, L2 flushed) and back to back as in a long prefill (``warm_s`` of
    untimed load, then ``timed_s`` timed), to measure how much slower tensor-core work runs once
    power and clocks settle under sustained load. Rows: gemm, layout burst|sustained, kernel
    source cublas_burst|cublas_sustained; the factor (median burst/sustained) is
    llmperf.calibration_fit.sustained_factor."""
    for m, n, k in SUSTAINED_SHAPES:
        x, w = _rand(m, k), _rand(n, k)
        f, b = gemm_flops(m, n, k), gemm_bytes(m, n, k, 2, 2, 2)
        graph = torch.cuda.CUDAGraph()
        reps = 8
        torch.matmul(x, w.t())
        torch.cuda.synchronize()
        with torch.cuda.graph(graph):
            for _ in range(reps):
                torch.matmul(x, w.t())
        torch.cuda.synchronize()
        time.sleep(idle_s)  # let clocks and power recover before the burst
        clock_burst = _sm_clock_mhz()
        rec.add("cublas_burst", "gemm", "matmul", "bf16", f, b, lambda: torch.matmul(x, w.t()),
                m=m, n=n, k=k, layout="burst")
        burst = rec.rows[-1]["time_s"]
        per_replay = burst * reps
        for _ in range(max(1, int(warm_s / per_replay))):  # settle under load, untimed
            graph.replay()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        loops = max(1, int(timed_s / per_replay))
        start.record()
        for _ in range(loops):
            graph.replay()
        end.record()
        clock_load = _sm_clock_mhz()
        torch.cuda.synchronize()
        t = start.elapsed_time(end) * 1e-3 / (loops * reps)
        row = {c: float("nan") for c in CALIBRATION_COLUMNS}
        row.update(rec.meta, kernel_source="cublas_sustained", op_kind="gemm", name="matmul",
                   dtype="bf16", flops=f, bytes=b, time_s=t, layout="sustained", m=m, n=n, k=k)
        rec.rows.append(row)
        rec.progress(f"gemm {m}x{n}x{k}: burst {burst * 1e3:.3f} ms (SM {clock_burst:.0f} MHz), "
                     f"sustained {t * 1e3:.3f} ms (SM {clock_load:.0f} MHz under load)")

def sweep_paged(rec: Recorder, batches=(1, 8, 64), lengths=(512, 4096, 32768), pages=(16, 32, 64)) -> None:
    """Flash-decoding over a paged KV cache (block table, random block order) for block sizes
    16/32/64, GQA 32/8, head_dim 128. Rows: attention_decode, kernel_source triton_paged,
    layout paged<block>; bytes = compulsory traffic (the block table is a few bytes per page)."""
    from .calibrate import record_launches

    hq, hkv, d = 32, 8, 128
    for page in pages:
        for bsz in batches:
            for kv in lengths:
                blocks = -(-kv // page)
                k = _rand(bsz * blocks, page, hkv, d)
                v = _rand(bsz * blocks, page, hkv, d)
                table = torch.randperm(bsz * blocks, device="cuda")[: bsz * blocks].view(bsz, blocks).int()
                lens = torch.full((bsz,), kv, dtype=torch.int32, device="cuda")
                q = _rand(bsz, hq, 1, d)
                f = attention_flops(bsz, hq, 1, kv, d, d, causal=True)
                nb = attention_io_bytes(bsz, hq, hkv, 1, kv, d, d, 2, 2)
                before = len(rec.rows)
                rec.add("triton_paged", "attention_decode", "attention_decode_paged", "bf16", f, nb,
                        lambda: attention_decode(q, k, v, lens, table, max_kv_len=kv),
                        layout=f"paged{page}", batch=bsz, q_len=1, kv_len=kv, q_heads=hq,
                        kv_heads=hkv, head_dim=d)
                record_launches(rec, before)
    rec.progress(f"paged decode attention: {len(rec.rows)} rows")


SEQUENCE = 64  # empty kernels replayed back to back for the in-sequence launch floor


def sweep_launch_floors(rec: Recorder) -> None:
    """The launch floor: a 1-element Triton copy timed eager, in a CUDA graph on its own (layout
    ``graph``: what every timed calibration kernel also pays, subtracted from it by the fit),
    and as one of SEQUENCE back-to-back copies in one graph (layout ``graph_sequence``: the gap a
    kernel costs inside a captured decode step, where the GPU front end prepares the next launch
    while the previous kernel drains). Five rows each; the L2 is flushed before every timed call,
    as for every other row."""
    tiny = _rand(1)
    out = torch.empty_like(tiny)

    def one():
        copy(tiny, out=out)

    def sequence():
        for _ in range(SEQUENCE):
            copy(tiny, out=out)

    for layout, fn, graph, per_call in (("eager", one, False, 1), ("graph", one, True, 1),
                                        ("graph_sequence", sequence, True, SEQUENCE)):
        for _ in range(5):
            try:
                t = harness.time_fn(fn, rep_ms=rec.rep_ms, graph=graph, flush_l2=True) / per_call
            except Exception as exc:  # noqa: BLE001 - report, keep the other rows
                rec.failures.append(f"launch {layout}: {exc}")
                continue
            row = {c: float("nan") for c in CALIBRATION_COLUMNS}
            row.update(rec.meta, kernel_source="triton", op_kind="launch", name="launch_floor",
                       dtype="none", flops=0.0, bytes=0.0, time_s=t, layout=layout)
            rec.rows.append(row)
    rec.progress("launch floors: " + ", ".join(
        f"{layout} {launch_floor(rec, layout) * 1e6:.2f} us" for layout in ("eager", "graph", "graph_sequence")))


def launch_floor(rec: Recorder, layout: str) -> float:
    times = sorted(r["time_s"] for r in rec.rows if r.get("op_kind") == "launch" and r.get("layout") == layout)
    return times[len(times) // 2] if times else float("nan")


def sweep_launch(rec: Recorder) -> None:
    """Launch floors only: the Triton kernel eager and in a graph, and torch's eager host rate."""
    sweep_launch_floors(rec)
    sweep_host(rec)
    sweep_torch_ops(rec)
    for extra in (sweep_grouped, sweep_sustained, sweep_paged):
        try:
            extra(rec)
        except Exception as exc:  # noqa: BLE001 - report, keep the other rows
            rec.failures.append(f"{extra.__name__}: {type(exc).__name__}: {exc}")
