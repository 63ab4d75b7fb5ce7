"""Which warp-specialized (Triton Hopper autoWS) kernel forms run on this GPU, and how fast.

Session 8's first device call found that every ``warp_specialize=True`` candidate of gemm_tma.py and
attention_prefill.py (host-built TensorDescriptor arguments, pointer-store epilogue) compiled but
never finished (each test/benchmark process hung until its timeout). This probe runs each form in
its own subprocess with a timeout, so one hang costs seconds, and reports ok / wrong / hang /
error plus the time of the forms that finish:

  dev_k     device-side descriptors (tl.make_tensor_descriptor), WS on the K loop, descriptor store
  host_k    host TensorDescriptor arguments, WS on the K loop, descriptor store (nw 4 / 8)
  host_kp   host descriptors, WS on the K loop, pointer store (the form gemm_tma.py used)
  dev_pers  device descriptors, persistent tile loop with WS on the outer loop
  lib_gemm  llmperf_kernels.gemm with its "ws" config
  lib_prefill  llmperf_kernels.attention_prefill with (128, 64, 4, 3, "ws"), B1 H8/2 S1000 D128 causal
               (device-side descriptors; ragged Sq: pointer-store epilogue)
  lib_prefill_even  the same at S 1024 (descriptor-store epilogue)

    python benchmarks/probe_ws.py            # all forms, one line each
    python benchmarks/probe_ws.py --form dev_k --nw 4   # one form in this process
"""

from __future__ import annotations

import argparse
import subprocess
import sys

FORMS = ["dev_k", "host_k", "host_kp", "dev_pers", "lib_gemm", "lib_prefill", "lib_prefill_even"]


def run_form(form: str, nw: int, ns: int, M: int, N: int, K: int) -> str:
    import torch
    import triton
    import triton.language as tl
    from triton.tools.tensor_descriptor import TensorDescriptor

    @triton.jit
    def dev_k(a_ptr, b_ptr, c_ptr, M, N, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
        a_d = tl.make_tensor_descriptor(a_ptr, shape=[M, K], strides=[K, 1], block_shape=[BM, BK])
        b_d = tl.make_tensor_descriptor(b_ptr, shape=[N, K], strides=[K, 1], block_shape=[BN, BK])
        c_d = tl.make_tensor_descriptor(c_ptr, shape=[M, N], strides=[N, 1], block_shape=[BM, BN])
        pid = tl.program_id(0)
        nn = tl.cdiv(N, BN)
        om = (pid // nn) * BM
        on = (pid % nn) * BN
        acc = tl.zeros((BM, BN), dtype=tl.float32)
        for k in tl.range(tl.cdiv(K, BK), warp_specialize=True):
            acc = tl.dot(a_d.load([om, k * BK]), b_d.load([on, k * BK]).T, acc)
        c_d.store([om, on], acc.to(tl.bfloat16))

    @triton.jit
    def host_k(a_d, b_d, c_d, c_ptr, M, N, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr,
               PTR_STORE: tl.constexpr):
        pid = tl.program_id(0)
        nn = tl.cdiv(N, BN)
        om = (pid // nn) * BM
        on = (pid % nn) * BN
        acc = tl.zeros((BM, BN), dtype=tl.float32)
        for k in tl.range(tl.cdiv(K, BK), warp_specialize=True):
            acc = tl.dot(a_d.load([om, k * BK]), b_d.load([on, k * BK]).T, acc)
        if PTR_STORE:
            rm = om + tl.arange(0, BM)
            rn = on + tl.arange(0, BN)
            tl.store(c_ptr + rm[:, None] * N + rn[None, :], acc.to(tl.bfloat16))
        else:
            c_d.store([om, on], acc.to(tl.bfloat16))

    @triton.jit
    def dev_pers(a_ptr, b_ptr, c_ptr, M, N, K, NUM_SMS: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                 BK: tl.constexpr):
        a_d = tl.make_tensor_descriptor(a_ptr, shape=[M, K], strides=[K, 1], block_shape=[BM, BK])
        b_d = tl.make_tensor_descriptor(b_ptr, shape=[N, K], strides=[K, 1], block_shape=[BN, BK])
        c_d = tl.make_tensor_descriptor(c_ptr, shape=[M, N], strides=[N, 1], block_shape=[BM, BN])
        nn = tl.cdiv(N, BN)
        tiles = tl.cdiv(M, BM) * nn
        for t in tl.range(tl.program_id(0), tiles, NUM_SMS, flatten=False, warp_specialize=True):
            om = (t // nn) * BM
            on = (t % nn) * BN
            acc = tl.zeros((BM, BN), dtype=tl.float32)
            for k in range(tl.cdiv(K, BK)):
                acc = tl.dot(a_d.load([om, k * BK]), b_d.load([on, k * BK]).T, acc)
            c_d.store([om, on], acc.to(tl.bfloat16))

    triton.set_allocator(lambda size, align, stream: torch.empty(size, dtype=torch.int8, device="cuda"))
    if form.startswith("lib_prefill"):
        import llmperf_kernels as lk
        S = 1024 if form.endswith("even") else 1000
        q = torch.randn(1, 8, S, 128, dtype=torch.bfloat16, device="cuda")
        kv = torch.randn(2, 1, 2, S, 128, dtype=torch.bfloat16, device="cuda")
        o = torch.full_like(q, float("nan"))
        lk.attention_prefill(q, kv[0], kv[1], True, out=o, config=(128, 64, 4, 3, "ws"))
        torch.cuda.synchronize()
        ref = lk.attention_prefill_ref(q, kv[0], kv[1], True)
        err = ((o.float() - ref.float()).norm() / ref.float().norm()).item()
        return f"{'ok' if err < 1e-2 else 'wrong'} rel err {err:.1e}"
    BM, BN, BK = 128, 128, 64
    a = torch.randn(M, K, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(N, K, dtype=torch.bfloat16, device="cuda") / K ** 0.5
    c = torch.full((M, N), float("nan"), dtype=torch.bfloat16, device="cuda")
    grid = (triton.cdiv(M, BM) * triton.cdiv(N, BN),)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    if form == "dev_k":
        fn = lambda: dev_k[grid](a, b, c, M, N, K, BM, BN, BK, num_warps=nw, num_stages=ns)  # noqa: E731
    elif form in ("host_k", "host_kp"):
        ad = TensorDescriptor.from_tensor(a, [BM, BK])
        bd = TensorDescriptor.from_tensor(b, [BN, BK])
        cd = TensorDescriptor.from_tensor(c, [BM, BN])
        fn = lambda: host_k[grid](ad, bd, cd, c, M, N, K, BM, BN, BK, form == "host_kp",  # noqa: E731
                                  num_warps=nw, num_stages=ns)
    elif form == "dev_pers":
        fn = lambda: dev_pers[(min(sms, grid[0]),)](a, b, c, M, N, K, sms, BM, BN, BK,  # noqa: E731
                                                    num_warps=nw, num_stages=ns)
    else:
        import llmperf_kernels as lk
        fn = lambda: lk.gemm(a, b, out=c, config=(BM, BN, BK, 8, nw, ns, "tma", False, False, "ws"))  # noqa: E731
    k = fn()
    torch.cuda.synchronize()
    ws = "ws" if k is not None and "ttg.warp_specialize" in k.asm.get("ttgir", "") else "?"
    err = ((c.float() - a.float() @ b.float().t()).norm() / (a.float() @ b.float().t()).norm()).item()
    if not err < 1e-2:
        return f"wrong (rel err {err:.2e}, {ws})"
    t = triton.testing.do_bench(fn, warmup=10, rep=50)
    return f"ok {t * 1e3:8.1f} us  {2 * M * N * K / t / 1e9:6.0f} TFLOP/s  rel err {err:.1e}  {ws}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--form", choices=FORMS)
    ap.add_argument("--forms", default=",".join(FORMS), help="comma-separated forms to run (default: all)")
    ap.add_argument("--nw", type=int, default=4)
    ap.add_argument("--ns", type=int, default=3)
    ap.add_argument("--shape", default="4096x4096x4096")
    ap.add_argument("--timeout", type=float, default=45.0)
    a = ap.parse_args(argv)
    M, N, K = map(int, a.shape.split("x"))
    if a.form:
        print(run_form(a.form, a.nw, a.ns, M, N, K), flush=True)
        return
    import torch
    import triton
    x = torch.randn(M, K, dtype=torch.bfloat16, device="cuda")
    w = torch.randn(N, K, dtype=torch.bfloat16, device="cuda")
    t = triton.testing.do_bench(lambda: torch.matmul(x, w.t()), warmup=10, rep=50)
    print(f"[probe ws] {a.shape} cuBLAS {t * 1e3:8.1f} us {2 * M * N * K / t / 1e9:6.0f} TFLOP/s", flush=True)
    for form in a.forms.split(","):
        for nw in (4, 8) if form == "host_k" else (4,):
            cmd = [sys.executable, __file__, "--form", form, "--nw", str(nw), "--ns", str(a.ns), "--shape", a.shape]
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
                line = r.stdout.strip().splitlines()[-1] if r.returncode == 0 and r.stdout.strip() else \
                    "error " + (r.stderr.strip().splitlines() or ["?"])[-1][:150]
            except subprocess.TimeoutExpired:
                line = f"hang (killed after {a.timeout:.0f} s)"
            print(f"[probe ws] {form:9s} nw {nw}: {line}", flush=True)


if __name__ == "__main__":
    main()
