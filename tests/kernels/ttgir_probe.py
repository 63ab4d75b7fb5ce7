"""Compile the decode split kernel for sm_90a on any machine (no GPU: Triton's CUDA backend stops at
TTGIR here) and print, per config, how many K/V tiles its shared-memory ring holds and the
async_wait depth at the top of the loop, as JSON ({"rings": [...]}, or {"skip": why}). Run in a subprocess by
test_attention_pipeline.py: TRITON_INTERPRET must be unset when the kernels are imported.
Usage: python3 ttgir_probe.py '[[paged, fp8, block_n, warps, stages, swap, cvt], ...]'"""

import json
import re
import sys

from triton._C.libtriton import ir
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource, make_backend

import llmperf_kernels  # noqa: F401 - the package, so the module import below resolves
from llmperf_kernels.attention_decode import _decode_kernel

# pointer arguments by name; qk_scale / v_scale are fp32; every other runtime argument is an int32
# (sizes and strides: all multiples of 16 in the bench shapes, so Triton would specialize them so)
_PTRS = {"q_ptr": "*bf16", "bt_ptr": "*i32", "lens_ptr": "*i32", "o_ptr": "*bf16", "op_ptr": "*fp32",
         "lse_ptr": "*fp32", "cnt_ptr": "*i32"}
_FLOATS = ("qk_scale", "v_scale")
_UNSPECIALIZED = ("Hq", "Hkv", "G")  # small counts: 32 / 8 / 4 in the bench, left without divisibility


def ttgir(paged: bool, fp8: bool, block_n: int, warps: int, stages: int, swap: bool, cvt: int) -> str:
    kv = "*fp8e4nv" if fp8 else "*bf16"
    const = dict(Lq=1, SPLITS=1, D=128, BLOCK_R=16, BLOCK_N=block_n, PAGED=paged, PAGE=16 if paged else 1,
                 SINGLE=True, KV_FP8=fp8, FUSED=0, SB=1, RB=1, VEC=1, PDL=False, SWAP=swap, CVT=cvt)
    names = _decode_kernel.arg_names  # the kernel's own order: nothing here to keep in step by hand
    ptrs = {**_PTRS, "k_ptr": kv, "v_ptr": kv}
    sig = {n: "constexpr" if n in const else ptrs.get(n, "fp32" if n in _FLOATS else "i32") for n in names}
    attrs = {(i,): [["tt.divisibility", 16]] for i, n in enumerate(names)
             if sig[n][0] == "*" or (sig[n] == "i32" and n not in _UNSPECIALIZED)}
    target = GPUTarget("cuda", 90, 32)
    backend = make_backend(target)
    src = ASTSource(fn=_decode_kernel, signature=sig, constexprs=const, attrs=attrs)
    opts = backend.parse_options({"num_warps": warps, "num_stages": stages})
    # the TTIR and TTGIR stages of triton.compile only (no ptxas needed)
    ctx = ir.context()
    ir.load_dialects(ctx)
    backend.load_dialects(ctx)
    codegen = backend.get_codegen_implementation(opts)
    mod = src.make_ir(target, opts, codegen, backend.get_module_map(), ctx)
    stages_ = {}
    backend.add_stages(stages_, opts, src.language)
    metadata = {}
    for name in ("ttir", "ttgir"):
        mod = stages_[name](mod, metadata)
    return str(mod)


def kv_ring(text: str) -> dict:
    """Depth of the K tile's shared-memory ring and the loop's first async_wait count."""
    elt = r"(?:f8E4M3FN|bf16|f16)"
    depths = [int(d) for d in re.findall(rf"memdesc<(\d+)x\d+x128x{elt}", text)]
    waits = [int(n) for n in re.findall(r"async_wait %k\w*, %v\w*[^{]*\{num = (\d+)", text)]
    return {"ring": max(depths, default=0), "wait": waits[0] if waits else None}


if __name__ == "__main__":
    try:
        out = {"rings": [kv_ring(ttgir(*cfg)) for cfg in json.loads(sys.argv[1])]}
    except (AttributeError, TypeError) as exc:  # make_ir / add_stages signatures are not a public API
        out = {"skip": f"this Triton's compiler internals differ from 3.6-3.9's: {exc!r}"}
    print(json.dumps(out))
