"""Timing harness and device metadata for the bundled kernels.

``time_fn`` follows the usual GPU micro-benchmark discipline (Triton's ``do_bench`` does the same):
call once (compile, allocate), warm up, then time each repetition with CUDA events, flushing the L2
cache before every repetition by reading a buffer larger than L2, so that small problems are
not measured out of cache. It returns the MEDIAN in SECONDS. On a machine without CUDA it falls
back to ``time.perf_counter`` (useful only for tests of the harness itself).

FLOPs and bytes for "achieved vs peak" come from the core's formulas
(:mod:`llmperf.ops.formulas`), so the kernels and the cost model share one definition.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import sys
import subprocess
import time

import torch
import triton

LAST_METHOD = ""  # "graph" or "eager": how the last time_fn call measured
_FLUSH_BYTES = 256 * 1024 * 1024  # > L2 of any current GPU (H100 50 MB, H200 60 MB, B200 126 MB)
_flush_buf = None


def is_interpreter() -> bool:
    """True when Triton kernels run in the CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _evict_l2(buf, sink):
    """Evict L2 by READING ``buf`` (int32, >= 2 x L2 bytes) into a one-element int64 ``sink``.

    Reading leaves L2 full of clean lines, so the timed kernel evicts them for free. The earlier
    flush wrote zeros instead, which left ~L2 bytes of dirty lines that the timed kernel had to
    write back (H200, B1 L32k decode: 48.3 us flushed by writing vs 40.0 us unflushed).
    """
    torch.sum(buf, dim=0, dtype=torch.int64, out=sink)


def _flush_l2():
    global _flush_buf
    if _flush_buf is None:
        _flush_buf = (torch.zeros(_FLUSH_BYTES // 4, dtype=torch.int32, device="cuda"),
                      torch.empty((), dtype=torch.int64, device="cuda"))
    _evict_l2(*_flush_buf)


def _estimate_ms(fn, floor_ms: float) -> float:
    """Rough time of one fn() call in ms (mean of 3 back-to-back calls, CUDA events)."""
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(3):
        fn()
    e.record()
    torch.cuda.synchronize()
    return max(s.elapsed_time(e) / 3, floor_ms)


def _time_graph(fn, rep_ms: float, min_reps: int, flush_l2: bool) -> float:
    """Device time of fn from CUDA-graph replays (no host launch overhead in the numbers).

    Two graphs are captured: n x (L2 flush, fn) and n x (L2 flush); each is replayed many times
    (alternating), each replay timed with events, and the difference of the medians divided by n
    is fn's time. The flush reads 2 x L2 bytes (:func:`_evict_l2`: evicts everything fn left in
    L2 and leaves only clean lines behind).
    """
    l2 = max(getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 0), 8 << 20)
    buf = torch.zeros(2 * l2 // 4, dtype=torch.int32, device="cuda")
    sink = torch.empty((), dtype=torch.int64, device="cuda")
    est_ms = _estimate_ms(fn, floor_ms=1e-4)
    n = int(min(max(0.5 / est_ms, 1), 50))  # ~0.5 ms of fn per replay (but at least one call)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    graphs = []
    for with_fn in (True, False):
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g, stream=stream):
            for _ in range(n):
                if flush_l2:
                    _evict_l2(buf, sink)
                if with_fn:
                    fn()
        graphs.append(g)
    torch.cuda.synchronize()
    for g in graphs:
        g.replay()
    torch.cuda.synchronize()
    per_replay_ms = max(est_ms * n, 1e-3) + (n * 2 * l2 / 3e12 * 1e3 if flush_l2 else 0.0)
    reps = int(min(max(rep_ms / per_replay_ms / 2, min_reps), 500))
    times = ([], [])
    ev = [[(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
          for _ in range(2)]
    for r in range(reps):
        for i, g in enumerate(graphs):
            ev[i][r][0].record()
            g.replay()
            ev[i][r][1].record()
    torch.cuda.synchronize()
    for i in range(2):
        times[i].extend(a.elapsed_time(b) for a, b in ev[i])
    med = [statistics.median(t) for t in times]
    return max(med[0] - med[1], 1e-6 * est_ms) / n * 1e-3


def time_fn(fn, *, warmup_ms: float = 20.0, rep_ms: float = 100.0, min_reps: int = 10,
            max_reps: int = 1000, flush_l2: bool = True, graph: bool = True) -> float:
    """Median device time of ``fn()`` in seconds.

    ``fn`` is called once first (compilation/autotuning stays out of the numbers). With
    ``graph=True`` (default on CUDA) fn is captured into CUDA graphs and timed by
    :func:`_time_graph`: the host's Python/launch overhead (tens of microseconds per call for a
    Triton wrapper) would otherwise starve the GPU and be counted for small kernels. If capture
    fails (fn syncs with the host, say), or with ``graph=False``: eager timing -- warm-up for about
    ``warmup_ms``, then ``clamp(rep_ms / estimate, min_reps, max_reps)`` repetitions each timed
    with CUDA events, each preceded (outside the timed region) by an L2 flush when ``flush_l2``.
    """
    if not torch.cuda.is_available():
        fn()
        ts = []
        for _ in range(max(3, min(min_reps, 20))):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return float(statistics.median(ts))
    fn()
    torch.cuda.synchronize()
    global LAST_METHOD
    if graph:
        try:
            t = _time_graph(fn, rep_ms, min_reps, flush_l2)
            LAST_METHOD = "graph"
            return t
        except Exception:  # noqa: BLE001 - not capturable: fall back to eager timing
            torch.cuda.synchronize()
    LAST_METHOD = "eager"
    est_ms = _estimate_ms(fn, floor_ms=1e-3)
    for _ in range(int(min(max(warmup_ms / est_ms, 1), max_reps))):
        fn()
    n = int(min(max(rep_ms / est_ms, min_reps), max_reps))
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    for i in range(n):
        if flush_l2:
            _flush_l2()
        starts[i].record()
        fn()
        ends[i].record()
    torch.cuda.synchronize()
    ms = [a.elapsed_time(b) for a, b in zip(starts, ends)]
    return float(statistics.median(ms)) * 1e-3


def _driver_version() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 else "unknown"
    except Exception:  # noqa: BLE001 - metadata must never break a benchmark
        return "unknown"


def device_metadata() -> dict:
    """Where and with what a measurement was taken: device, driver, torch/triton/CUDA, date."""
    md = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": platform.node(),
        "torch_version": torch.__version__,
        "triton_version": triton.__version__,
        "cuda_version": str(torch.version.cuda),
        "triton_interpret": is_interpreter(),
    }
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        md.update(device_name=p.name, sm_count=p.multi_processor_count,
                  compute_capability=f"{p.major}.{p.minor}", memory_bytes=p.total_memory,
                  l2_bytes=getattr(p, "L2_cache_size", -1), driver_version=_driver_version())
    else:
        md.update(device_name="cpu", sm_count=0, compute_capability="", memory_bytes=0,
                  l2_bytes=0, driver_version="none")
    return md


def time_forced(call, out, ref, flops: float, rep_ms: float) -> dict:
    """One benchmark row for a forced kernel config: ``call()`` (writes ``out``) timed by
    :func:`time_fn` -> {time_us, tflop_per_s, rel_err (out vs ``ref``, a tensor or a callable giving
    one), timing}; a config that fails to compile or launch (shared memory, Triton version) gives
    {error} instead, so a tuning script records it and goes on."""
    from ._common import rel_err

    try:
        t = time_fn(call, rep_ms=rep_ms)
    except Exception as e:  # noqa: BLE001 - report and go on
        return {"error": repr(e)[:160]}
    return {"time_us": t * 1e6, "tflop_per_s": flops / t / 1e12, "timing": LAST_METHOD,
            "rel_err": rel_err(out, ref() if callable(ref) else ref)}


def bench_device(script: str, smoke: bool) -> str:
    """"cuda", or "cpu" for a ``--smoke`` plumbing check under TRITON_INTERPRET=1; otherwise exit
    with one line saying what is missing."""
    if torch.cuda.is_available():
        return "cuda"
    if not smoke:
        sys.exit(f"{script}: no CUDA device; use --smoke (with TRITON_INTERPRET=1) for a CPU plumbing check.")
    if not is_interpreter():
        sys.exit(f"{script} --smoke on CPU needs TRITON_INTERPRET=1.")
    return "cpu"


class Tuner:
    """Tiny per-key autotuner (portable across Triton 3.6 and 3.9; Triton's own changes API).

    ``pick(key, candidates, launch)`` times ``launch(cfg)`` for each candidate once per key and
    caches the fastest. Candidates that fail to compile (e.g. too much shared memory) are
    dropped. In the CPU interpreter, with one candidate, or with LLMPERF_KERNELS_TUNE=0 (the test
    suite sets it: compiling every candidate of every key takes minutes) the first is used.
    """

    registry: list = []

    def __init__(self, name: str):
        self.name = name
        self.cache: dict = {}
        self.log: dict = {}  # key -> [(config, seconds or None if it failed)]
        Tuner.registry.append(self)

    def pick(self, key, candidates, launch):
        if key in self.cache:
            return self.cache[key]
        no_tune = os.environ.get("LLMPERF_KERNELS_TUNE", "1") == "0"  # tests: first candidate
        if len(candidates) == 1 or no_tune or not torch.cuda.is_available() or is_interpreter():
            self.cache[key] = candidates[0]
            return candidates[0]
        best, best_t = None, float("inf")
        self.log[key] = []
        for cfg in candidates:
            try:
                t = time_fn(lambda: launch(cfg), warmup_ms=3, rep_ms=15, min_reps=5, max_reps=200)
            except Exception as e:  # noqa: BLE001 - e.g. out of shared memory: skip this candidate
                self.log[key].append((cfg, None, repr(e)[:120]))
                continue
            self.log[key].append((cfg, t, ""))
            if t < best_t:
                best, best_t = cfg, t
        if best is None:
            raise RuntimeError(f"{self.name}: no candidate config compiled for key {key}")
        self.cache[key] = best
        return best
