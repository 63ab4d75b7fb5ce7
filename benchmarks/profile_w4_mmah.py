"""One gemm_w4a16 "mmah" call at M = 16 on a layer shape, for Nsight Compute (kernels/NOTES.md "v8"):
the weight is repacked and the kernel compiled by a warm-up call, then one more call is the one ncu
profiles (`--launch-skip 1 --launch-count 1 -k regex:_w4_mmah_kernel`).
Usage: python3 benchmarks/profile_w4_mmah.py [N K] (default 14336 4096)."""

import sys

import torch

import llmperf_kernels as lk

CONFIG = (16, 64, 128, 4, 6, 0, "mmah")  # the tuner's best at 14336 x 4096, M = 16 (H100 run 1)


def main(argv):
    N, K = (int(argv[0]), int(argv[1])) if len(argv) == 2 else (14336, 4096)
    torch.manual_seed(0)
    q, s = lk.quantize_w4(torch.randn(N, K, dtype=torch.bfloat16, device="cuda"))
    x = torch.randn(16, K, dtype=torch.bfloat16, device="cuda")
    for _ in range(2):
        y = lk.gemm_w4a16(x, q, s, config=CONFIG)
    torch.cuda.synchronize()
    print("rel_err", float(lk._common.rel_err(y, lk.gemm_w4a16_ref(x, q, s))))


if __name__ == "__main__":
    main(sys.argv[1:])
