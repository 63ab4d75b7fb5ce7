"""One attention_decode launch for Nsight Compute: B sequences of L tokens, Hq 32 / Hkv 8 / D 128
(the kernels_bench decode cases), KV contiguous or paged, bf16 or fp8, one forced DecodeConfig.
Two warm-up calls compile the kernel; ncu then profiles the third (`--launch-skip 2 --launch-count 1
-k regex:_decode_kernel`). Prints the error against the fp32 reference.
Usage: python3 benchmarks/profile_decode.py B L PAGE|0 bf16|fp8 "block_n,warps,stages,splits,swap,cvt"
e.g.   python3 benchmarks/profile_decode.py 32 8192 16 fp8 "128,4,3,1,0,1"."""

import sys

import torch

import llmperf_kernels as lk
from llmperf_kernels._common import rel_err
from llmperf_kernels.attention_decode import DecodeConfig
from llmperf_kernels.attention_decode_ref import attention_decode_ref, random_decode_inputs


def main(argv):
    B, L, page = int(argv[0]), int(argv[1]), int(argv[2]) or None
    kdt = torch.float8_e4m3fn if argv[3] == "fp8" else torch.bfloat16
    bn, warps, stages, splits, swap, cvt = (int(t) for t in argv[4].split(","))
    cfg = DecodeConfig(bn, warps, stages, splits, "kernel", bool(swap), cvt, 0)
    torch.manual_seed(0)
    q, k, v, lens, table = random_decode_inputs(B, L, 32, 8, 128, page, kdt, torch.bfloat16, "cuda")
    for _ in range(3):
        out = lk.attention_decode(q, k, v, lens, table, max_kv_len=L, config=cfg)
    if q.is_cuda:
        torch.cuda.synchronize()
    print("rel_err", float(rel_err(out, attention_decode_ref(q, k, v, lens, table))))


if __name__ == "__main__":
    main(sys.argv[1:])
