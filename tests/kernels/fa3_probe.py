"""Compile the Gluon FA3 prefill kernel (kernels/attention_prefill_fa3.py) for sm_90a on any machine and
print, per config, what the schedule depends on as JSON: {"configs": [{...}], } or {"skip": why}.
Run in a subprocess by test_attention_prefill_fa3.py (TRITON_INTERPRET must be unset: Gluon cannot be
interpreted). Usage: python3 fa3_probe.py '[[D, BLOCK_N, NB, causal, ping_pong, unroll, persistent], ...]'"""

import json
import re
import sys

try:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon._runtime import GluonASTSource
except ImportError as e:  # a Triton without Gluon
    print(json.dumps({"skip": f"no Gluon in this Triton: {e}"}))
    sys.exit(0)

from llmperf_kernels import attention_prefill_fa3 as fa3


def probe(D: int, block_n: int, nb: int, causal: bool, pp: bool = False, unroll: bool = False,
          persist: bool = False) -> dict:
    ql = gl.NVMMASharedLayout.get_default_for([64, D], gl.bfloat16)
    kl = gl.NVMMASharedLayout.get_default_for([block_n, D], gl.bfloat16)
    sig = {"q_desc": f"tensordesc<bf16[64, {D}],{ql!r}>", "k_desc": f"tensordesc<bf16[{block_n}, {D}],{kl!r}>",
           "v_desc": f"tensordesc<bf16[{block_n}, {D}],{kl!r}>", "o_ptr": "*bf16", "Sq": "i32", "Skv": "i32",
           "Hq": "i32", "Hkv": "i32", "BH": "i32", "qk_scale": "fp32", "HEAD_D": "constexpr", "BLOCK_N": "constexpr",
           "NB": "constexpr", "CAUSAL": "constexpr", "PP": "constexpr", "UNROLL": "constexpr",
           "PERSIST": "constexpr"}
    const = {"HEAD_D": D, "BLOCK_N": block_n, "NB": nb, "CAUSAL": causal, "PP": pp, "UNROLL": unroll,
             "PERSIST": persist}
    src = GluonASTSource(fn=fa3._fa3_kernel, signature=sig, constexprs=const, attrs={(3,): [["tt.divisibility", 16]]})
    k = triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4})
    ptx = k.asm["ptx"]
    return {"config": [D, block_n, nb, causal, pp, unroll, persist], "shared_bytes": k.metadata.shared,
            "threads": int(re.search(r"\.reqntid (\d+)", ptx).group(1)),
            "maxnreg": int(re.search(r"\.maxnreg (\d+)", ptx).group(1)),
            # the default partition's count: the first setmaxnreg in the PTX (its branch comes first)
            "default_regs": int(re.search(r"setmaxnreg\.\w+\.sync\.aligned\.u32\s+(\d+)", ptx).group(1)),
            "worker_regs": [int(x) for x in re.search(r"requestedRegisters = array<i32: ([\d, ]+)>",
                                                       k.asm["ttgir"]).group(1).split(",")],
            "tma_loads": ptx.count("cp.async.bulk.tensor.2d"),
            "wgmma_wait": sorted({int(x) for x in re.findall(r"wgmma\.wait_group\.sync\.aligned (\d+)", ptx)}),
            "local_memory": ("ld.local" in ptx) or ("st.local" in ptx)}


if __name__ == "__main__":
    out = []
    for c in json.loads(sys.argv[1]):
        try:
            out.append(probe(*c))
        except Exception as e:  # noqa: BLE001 - reported to the test, which fails on it
            out.append({"config": c, "error": f"{type(e).__name__}: {str(e)[-600:]}"})
    print(json.dumps({"configs": out}))
