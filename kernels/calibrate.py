"""The calibration sweep: check each kernel against its reference, then time a grid of shapes.

Run through ``llmperf calibrate -g GPU [--quick|--full] --out FILE.csv`` (or ``python -m
llmperf_kernels.calibrate``). Every row is one measurement in the schema of
:mod:`llmperf.calibration_table` (SI units, device/driver/torch/triton/date columns). FLOPs and
bytes come from the core's formulas so "achieved vs peak" has one definition.

Sources timed side by side (``kernel_source``): ``triton`` (ours, the portable baseline),
``cublas`` (torch.matmul), ``cublas_scaled_mm`` (torch._scaled_mm, fp8), ``sdpa`` (torch SDPA,
its fastest backend: flash/cuDNN), ``torch`` (torch's copy). Launch floors are recorded eager and
inside a CUDA graph.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from llmperf import Step, Workload, build_step_ops, load_model
from llmperf.calibration_table import CALIBRATION_COLUMNS
from llmperf.ops.formulas import attention_flops, attention_io_bytes, gemm_bytes, gemm_flops

from . import harness
from .calibrate_common import Recorder, _rand
from .calibrate_extra import (sweep_grouped, sweep_host, sweep_launch, sweep_launch_floors, sweep_paged,
                              sweep_routing, sweep_sustained, sweep_torch_ops)
from .attention_decode import attention_decode, attention_decode_ref
from .attention_prefill import attention_prefill, attention_prefill_ref
from .gemm import gemm, gemm_ref
from .gemm_fp8 import gemm_fp8, gemm_fp8_ref, quantize_fp8
from .gemm_w4a16 import gemm_w4a16, gemm_w4a16_ref, quantize_w4
from .membound import add_rmsnorm, add_rmsnorm_ref, copy

ATTENTION_HEADS = ((32, 8, 128), (28, 4, 128), (32, 8, 64))  # (q heads, kv heads, head_dim)
QUICK_MODELS = ("llama-3.1-8b", "qwen2.5-7b", "llama-3.2-1b")
FULL_MODELS = None  # every bundled model (llmperf.bundled_model_names())
M_DENSE = (1, 2, 4, 8, 16, 32, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 2048, 4096, 8192, 16384)
# W4A16 from decode to prefill (session 11: the M > 16 paths; the estimator reads prefill's int4
# GEMMs off these rows, so they must reach prefill token counts)
M_W4_QUICK = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 16384)
GRIDS = {
    "quick": dict(models=QUICK_MODELS, m=M_DENSE, m_fp8=(16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192),
                  m_w4=M_W4_QUICK, seq=(512, 1024, 2048, 4096, 8192, 16384),
                  prefill_batch=(1, 4), decode_batch=(1, 4, 16, 64, 256),
                  decode_kv=(512, 2048, 8192, 32768),
                  copy_mb=(0.004, 0.016, 0.06, 0.25, 1, 4, 16, 64, 256, 1024),
                  rms_tokens=(1, 16, 256, 1024, 4096, 16384), rep_ms=20.0),
    "full": dict(models=FULL_MODELS, m=M_DENSE, m_fp8=(16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384),
                 m_w4=M_DENSE, seq=(256, 512, 1024, 2048, 4096, 8192, 16384),
                 prefill_batch=(1, 2, 4, 8), decode_batch=(1, 2, 4, 8, 16, 32, 64, 128, 256),
                 decode_kv=(256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536),
                 copy_mb=(0.004, 0.016, 0.06, 0.25, 1, 4, 16, 64, 256, 1024, 4096),
                 rms_tokens=(1, 16, 256, 1024, 4096, 16384, 65536), rep_ms=60.0),
}


def gemm_shapes(models, skip=("router", "shared_expert_gate"), sort: bool = True) -> list[tuple[int, int]]:
    """Distinct (N, K) of every GEMM in the bundled models' layers (from the core's op builder),
    leaving out the ops named in ``skip``, sorted (or with ``sort`` False in the order the models
    and their ops come); ``models`` None means every bundled model."""
    if models is None:
        from llmperf import bundled_model_names

        models = bundled_model_names()
    shapes = {}
    for name in models:
        for op in build_step_ops(load_model(name), Workload(), Step.decode(1, 1)):
            if op.kind == "gemm" and op.name not in skip:
                shapes[(int(op.shape["n"]), int(op.shape["k"]))] = None
    return sorted(shapes) if sort else list(shapes)


def w4_shapes(models) -> list[tuple[int, int]]:
    """The GEMM shapes an int4-weight estimate looks up: every layer GEMM but the lm_head, which the
    op builder keeps in 16-bit whatever the weight dtype (llmperf/ops/builder.py); in model order (the
    quick grid's first model, Llama-3.1-8B, first: a sweep cut short keeps the shapes it reached)."""
    return gemm_shapes(models, skip=("router", "shared_expert_gate", "lm_head"), sort=False)


# torch.cuda.get_device_name() substrings of the bundled GPUs a calibration may be run on.
_DEVICE_NAMES = {"h100-sxm5-80gb": ("H100 80GB HBM3", "H100 SXM"), "h100-pcie-80gb": ("H100 PCIe",),
                 "h100-nvl-94gb": ("H100 NVL",), "h200-sxm-141gb": ("H200",),
                 "a100-sxm4-80gb": ("A100-SXM4-80GB",), "a100-sxm4-40gb": ("A100-SXM4-40GB",),
                 "a100-pcie-80gb": ("A100 80GB PCIe",), "l4": ("L4",), "l40s": ("L40S",),
                 "b200": ("B200",), "rtx-4090": ("4090",), "rtx-3090": ("3090",),
                 "rtx-5090": ("5090",), "mi300x": ("MI300X",), "mi325x": ("MI325X",)}


def device_matches(device_name: str, hardware) -> bool:
    """Whether the visible device is the bundled GPU being calibrated (unknown ids: trusted)."""
    names = _DEVICE_NAMES.get(hardware.name)
    return names is None or any(n.lower() in device_name.lower() for n in names)


def detect_hardware(device_name: str) -> str:
    """The bundled hardware id of a visible device (first match), for scripts."""
    for hw_id, names in _DEVICE_NAMES.items():
        if any(n.lower() in device_name.lower() for n in names):
            return hw_id
    raise RuntimeError(f"no bundled hardware spec matches '{device_name}'")


def check_kernels() -> list[str]:
    """Every kernel against its reference on random inputs at a realistic shape."""
    report = []

    def rel(a, b):
        return float((a.float() - b.float()).norm() / b.float().norm())

    x, w = _rand(64, 4096), _rand(1024, 4096)
    report.append(("gemm bf16", rel(gemm(x, w), gemm_ref(x, w)), 2e-2))
    qw, sc = quantize_w4(w)
    report.append(("gemm w4a16", rel(gemm_w4a16(x, qw, sc), gemm_w4a16_ref(x, qw, sc)), 2e-2))
    xq, sx = quantize_fp8(x, "row")
    wq, sw = quantize_fp8(w, "row")
    report.append(("gemm fp8", rel(gemm_fp8(xq, wq, sx, sw), gemm_fp8_ref(xq, wq, sx, sw)), 2e-2))
    q, k, v = _rand(1, 32, 1024, 128), _rand(1, 8, 1024, 128), _rand(1, 8, 1024, 128)
    report.append(("attention prefill", rel(attention_prefill(q, k, v), attention_prefill_ref(q, k, v)), 2e-2))
    qd = _rand(4, 32, 1, 128)
    report.append(("attention decode", rel(attention_decode(qd, k.expand(4, -1, -1, -1).contiguous(),
                                                            v.expand(4, -1, -1, -1).contiguous()),
                                           attention_decode_ref(qd, k.expand(4, -1, -1, -1).contiguous(),
                                                                v.expand(4, -1, -1, -1).contiguous())), 2e-2))
    h, r, g = _rand(256, 4096), _rand(256, 4096), _rand(4096)
    report.append(("add+rmsnorm", rel(add_rmsnorm(h, r, g)[0], add_rmsnorm_ref(h, r, g)[0]), 2e-2))
    bad = [f"{name}: relative error {err:.2e} > {tol:g}" for name, err, tol in report
           if not (err <= tol)]
    if bad:
        raise RuntimeError("kernel check failed: " + "; ".join(bad))
    return [f"{name}: rel err {err:.1e}" for name, err, _ in report]


def sweep_gemm(rec: Recorder, grid: dict) -> None:
    w4 = set(w4_shapes(grid["models"]))  # the lm_heads stay 16-bit: no W4A16 rows for them
    for n, k in grid.get("shapes") or gemm_shapes(grid["models"]):
        w = _rand(n, k)
        for m in grid["m"]:
            x = _rand(m, k)
            f, b = gemm_flops(m, n, k), gemm_bytes(m, n, k, 2, 2, 2)
            rec.add("triton", "gemm", "gemm", "bf16", f, b, lambda: gemm(x, w), m=m, n=n, k=k)
            rec.add("cublas", "gemm", "matmul", "bf16", f, b, lambda: torch.matmul(x, w.t()), m=m, n=n, k=k)
        if (n, k) in w4:
            _time_w4(rec, w, grid["m_w4"])
        if n % 16 == 0 and k % 16 == 0:
            wq, sw = quantize_fp8(w, "row")
            for m in grid["m_fp8"]:
                xq, sx = quantize_fp8(_rand(m, k), "row")
                f, b = gemm_flops(m, n, k), gemm_bytes(m, n, k, 1, 1, 2)
                rec.add("triton", "gemm", "gemm_fp8", "fp8", f, b, lambda: gemm_fp8(xq, wq, sx, sw), m=m, n=n, k=k)
                if m % 16 == 0:
                    rec.add("cublas_scaled_mm", "gemm", "scaled_mm", "fp8", f, b,
                            lambda: torch._scaled_mm(xq, wq.t(), scale_a=sx.view(-1, 1), scale_b=sw.view(1, -1),
                                                     out_dtype=torch.bfloat16), m=m, n=n, k=k)
        rec.progress(f"gemm N={n} K={k}: {len(rec.rows)} rows")


def _time_w4(rec: Recorder, w: torch.Tensor, ms) -> None:
    """W4A16 (int4, group 128) rows of one weight [N, K] at the token counts ``ms`` (K % 128 == 0 only)."""
    n, k = w.shape
    if k % 128:
        return
    qw, sc = quantize_w4(w)
    for m in ms:
        x = _rand(m, k)
        rec.add("triton", "gemm", "gemm_w4a16", "w4a16", gemm_flops(m, n, k),
                gemm_bytes(m, n, k, 2, 4.125 / 8, 2), lambda: gemm_w4a16(x, qw, sc), m=m, n=n, k=k)


def sweep_w4(rec: Recorder, grid: dict | None = None) -> None:
    """Only the W4A16 rows of a sweep (``--mode w4``: the quick grid's int4 shapes and token counts),
    to replace a calibration's W4A16 rows after the W4A16 kernels change."""
    grid = grid or GRIDS["quick"]
    for n, k in grid.get("shapes") or w4_shapes(grid["models"]):
        _time_w4(rec, _rand(n, k), grid["m_w4"])
        rec.progress(f"gemm w4a16 N={n} K={k}: {len(rec.rows)} rows")


def record_launches(rec: Recorder, rows_before: int) -> None:
    """Kernels the decode-attention call just timed launched (split + combine = 2), on its row
    (only when that call added a row)."""
    from .attention_decode import LAST_LAUNCH

    if len(rec.rows) == rows_before + 1:
        rec.rows[-1]["kernels"] = float(LAST_LAUNCH["kernels"])


def sweep_attention(rec: Recorder, grid: dict) -> None:
    import torch.nn.functional as F

    for hq, hkv, d in grid.get("heads") or ATTENTION_HEADS:
        for s, b in [(s, b) for s in grid["seq"] for b in grid["prefill_batch"] if b * s <= 65536]:
            q, k, v = _rand(b, hq, s, d), _rand(b, hkv, s, d), _rand(b, hkv, s, d)
            f = attention_flops(b, hq, s, s, d, d, causal=True)
            nb = attention_io_bytes(b, hq, hkv, s, s, d, d, 2, 2)
            shape = dict(batch=b, q_len=s, kv_len=s, q_heads=hq, kv_heads=hkv, head_dim=d)
            rec.add("triton", "attention_prefill", "attention_prefill", "bf16", f, nb,
                    lambda: attention_prefill(q, k, v, causal=True), **shape)
            rec.add("sdpa", "attention_prefill", "sdpa", "bf16", f, nb,
                    lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True), **shape)
        rec.progress(f"prefill attention {hq}/{hkv}/{d}: {len(rec.rows)} rows")
        for bsz in grid["decode_batch"]:
            for kv in grid["decode_kv"]:
                if bsz * kv * hkv * d * 4 > 24e9:
                    continue
                q = _rand(bsz, hq, 1, d)
                k, v = _rand(bsz, hkv, kv, d), _rand(bsz, hkv, kv, d)
                f = attention_flops(bsz, hq, 1, kv, d, d, causal=True)
                nb = attention_io_bytes(bsz, hq, hkv, 1, kv, d, d, 2, 2)
                shape = dict(batch=bsz, q_len=1, kv_len=kv, q_heads=hq, kv_heads=hkv, head_dim=d)
                before = len(rec.rows)
                rec.add("triton", "attention_decode", "attention_decode", "bf16", f, nb,
                        lambda: attention_decode(q, k, v, max_kv_len=kv), layout="contiguous", **shape)
                record_launches(rec, before)
                rec.add("sdpa", "attention_decode", "sdpa", "bf16", f, nb,
                        lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
                        layout="contiguous", **shape)
        rec.progress(f"decode attention {hq}/{hkv}/{d}: {len(rec.rows)} rows")


def sweep_memory(rec: Recorder, grid: dict) -> None:
    for mb in grid["copy_mb"]:
        n = max(1, int(mb * 1e6 / 2))
        src = _rand(n)
        dst = torch.empty_like(src)
        rec.add("triton", "memory", "copy", "bf16", 0.0, 4.0 * n, lambda: copy(src, out=dst), m=n)
        rec.add("torch", "memory", "copy", "bf16", 0.0, 4.0 * n, lambda: dst.copy_(src), m=n)
    for t in grid["rms_tokens"]:
        x, r, g = _rand(t, 4096), _rand(t, 4096), _rand(4096)
        rec.add("triton", "memory", "add_rmsnorm", "bf16", 0.0, (4 * t * 4096 + 4096) * 2,
                lambda: add_rmsnorm(x, r, g, residual_out=r), m=t, n=4096)
    sweep_launch_floors(rec)
    rec.progress(f"memory and launch floors: {len(rec.rows)} rows")


def stage_count(mode: str) -> int:
    """Progress messages a sweep of this mode emits (for a progress bar)."""
    if mode == "launch":
        return 7
    return 5 + len(gemm_shapes(GRIDS[mode]["models"])) + 4 + 6 + 1 + 3


# sweeps that can run alone, to add their rows to an existing calibration
PARTIAL_MODES = {"launch": sweep_launch, "floors": sweep_launch_floors, "routing": sweep_routing,
                 "torch_ops": sweep_torch_ops, "w4": sweep_w4}


def run(hardware: str, mode: str = "quick", progress=print, checkpoint=None, precompile_workers: int = 0,
        models=None):
    """Check, then time everything for one GPU; returns (rows DataFrame, check lines, failures).
    ``checkpoint``: a path rewritten with all rows after every stage. ``precompile_workers`` > 1:
    first compile every Triton kernel configuration of the sweep in that many processes
    (kernels/precompile.py), so the timed sweep finds them in Triton's disk cache. ``models``
    (``--mode w4`` only): the bundled models whose GEMM shapes are timed (default: the quick grid's)."""
    import pandas as pd

    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA GPU is visible: run `llmperf calibrate` on the GPU to calibrate")
    if mode in PARTIAL_MODES:
        w4_grid = {**GRIDS["quick"], **({"models": tuple(models)} if models else {})}
        if mode == "w4" and precompile_workers > 1:
            from .precompile import precompile

            progress(precompile(w4_grid, precompile_workers, w4_only=True))
        rec = Recorder(hardware, 20.0, progress, checkpoint)
        if mode == "w4":
            sweep_w4(rec, w4_grid)
        else:
            PARTIAL_MODES[mode](rec)
        return pd.DataFrame(rec.rows, columns=CALIBRATION_COLUMNS + ["kernels"]), [], rec.failures
    grid = GRIDS[mode]
    try:
        checks = check_kernels()
    except RuntimeError as exc:  # recorded and shown; the timings are still taken
        checks = [f"CHECK FAILED: {exc}"]
    if precompile_workers > 1:
        from .precompile import precompile

        progress(precompile(grid, precompile_workers))
    rec = Recorder(hardware, grid["rep_ms"], progress, checkpoint)
    start = time.time()
    sweep_memory(rec, grid)
    sweep_torch_ops(rec)
    try:
        sweep_host(rec)
    except Exception as exc:  # noqa: BLE001 - the host rate is one row; never lose the sweep
        rec.failures.append(f"host rate: {type(exc).__name__}: {exc}")
    sweep_gemm(rec, grid)
    for extra in (sweep_grouped, sweep_routing, sweep_sustained):
        try:
            extra(rec)
        except Exception as exc:  # noqa: BLE001 - report, keep the other rows
            rec.failures.append(f"{extra.__name__}: {type(exc).__name__}: {exc}")
    sweep_attention(rec, grid)
    try:
        sweep_paged(rec)
    except Exception as exc:  # noqa: BLE001
        rec.failures.append(f"sweep_paged: {type(exc).__name__}: {exc}")
    progress(f"{len(rec.rows)} measurements in {time.time() - start:.0f} s, {len(rec.failures)} failures")
    return pd.DataFrame(rec.rows, columns=CALIBRATION_COLUMNS + ["kernels"]), checks, rec.failures


def main() -> None:
    parser = argparse.ArgumentParser(description="llmperf calibration sweep")
    parser.add_argument("-g", "--hardware", default=None, help="bundled id (default: detect)")
    parser.add_argument("--mode", choices=sorted(GRIDS) + sorted(PARTIAL_MODES), default="quick")
    parser.add_argument("--out", required=True)
    parser.add_argument("--compile-jobs", type=int, default=0,
                        help="processes that compile the Triton kernels first (kernels/precompile.py)")
    parser.add_argument("--models", default=None,
                        help="--mode w4: comma-separated bundled models whose GEMM shapes are timed (default: the quick grid's)")
    args = parser.parse_args()
    try:
        if not torch.cuda.is_available():
            raise RuntimeError("no CUDA GPU is visible: run the calibration on the GPU to calibrate")
        hardware = args.hardware or detect_hardware(torch.cuda.get_device_name())
        frame, checks, failures = run(hardware, args.mode, checkpoint=args.out + ".partial",  # kept if cut short
                                      precompile_workers=args.compile_jobs,
                                      models=args.models.split(",") if args.models else None)
    except (RuntimeError, ValueError) as exc:  # one line, exit 2, no traceback (unknown model, no GPU, ...)
        print(f"llmperf_kernels.calibrate: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    frame.to_csv(args.out, index=False)
    print("\n".join(checks))
    print("\n".join(failures[:20]))
    print(f"wrote {args.out}: {len(frame)} rows")


if __name__ == "__main__":
    main()
