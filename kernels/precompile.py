"""Compile the calibration sweep's Triton kernels in parallel before it is timed.

On a machine whose Triton cache is cold, most of a first ``llmperf calibrate --quick`` goes to
compiling: every autotuning candidate of every kernel, for every shape specialization, one after
the other in one process (measured: a cold H200 run took 325 s, a warm H100 run 169 s). Triton
keeps compiled kernels in its on-disk cache, keyed by source, constants and argument
specialization, so worker processes that run the same sweep code on the same shapes leave every
binary there; the timed sweep that follows in the main process then loads them instead of
compiling. The workers time nothing that is kept: their GPU work overlaps and is thrown away.

Work items: one per GEMM (N, K) shape (bf16, fp8, W4A16 candidates), one per attention head
configuration (prefill and decode) and the paged decode sweep, dealt round-robin to the workers.
"""

from __future__ import annotations

import multiprocessing as mp
import time


class _CompileOnly:
    """A Recorder stand-in that runs each measurement once (compiling and autotuning it) and
    records nothing; a failing item (e.g. out of memory beside the other workers) is skipped."""

    rep_ms = 1.0
    meta: dict = {}
    rows: list = []
    failures: list = []

    def add(self, source, kind, name, dtype, flops, nbytes, fn, graph=True, **shape):
        try:
            fn()
        except Exception:  # noqa: BLE001 - the timed sweep meets it again and reports it
            pass

    def progress(self, message: str) -> None:
        pass


def _work(items, grid):
    import torch

    from .calibrate import sweep_attention, sweep_gemm, sweep_w4
    from .calibrate_extra import sweep_paged

    rec = _CompileOnly()
    for kind, item in items:
        try:
            if kind == "gemm":
                sweep_gemm(rec, {**grid, "shapes": [item]})
            elif kind == "w4":
                sweep_w4(rec, {**grid, "shapes": [item]})
            elif kind == "attention":
                sweep_attention(rec, {**grid, "heads": [item]})
            else:
                sweep_paged(rec)
        except Exception:  # noqa: BLE001
            pass
        torch.cuda.empty_cache()


def work_items(grid, w4_only: bool = False) -> list:
    """The sweep's work items; ``w4_only``: one W4A16 item per GEMM shape (``--mode w4``)."""
    from .calibrate import ATTENTION_HEADS, gemm_shapes, w4_shapes

    if w4_only:
        return [("w4", s) for s in w4_shapes(grid["models"])]
    return ([("gemm", s) for s in gemm_shapes(grid["models"])]
            + [("attention", h) for h in ATTENTION_HEADS] + [("paged", None)])


def precompile(grid: dict, workers: int, w4_only: bool = False) -> str:
    """Run the sweep's kernels once in ``workers`` spawned processes; returns a progress line."""
    start = time.perf_counter()
    items = work_items(grid, w4_only)
    parts = [items[i::workers] for i in range(workers)]
    ctx = mp.get_context("spawn")  # CUDA cannot be forked
    procs = [ctx.Process(target=_work, args=(part, grid)) for part in parts if part]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    failed = sum(p.exitcode != 0 for p in procs)
    return (f"precompiled {len(items)} sweep items in {len(procs)} processes in "
            f"{time.perf_counter() - start:.0f} s" + (f" ({failed} exited abnormally)" if failed else ""))
