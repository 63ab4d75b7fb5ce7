"""The v6 W4A16 GEMV ("gemv6", M = 1 first) of kernels/gemm_w4a16.py: packed half2 math, x read in place.

Same packed layout as gemm_w4a16.py. x is read in place as int64 words (no prologue launch, unlike
v5 in gemm_w4a16_gemv.py); two nibbles become a half2 (1024 + q) with one LOP3 and the 0x6400
magic (the FasterTransformer / Marlin dequantization trick, written here in our own PTX), HFMA2
accumulates an fp16x2 partial over 4 words, fp32 across words and groups; U groups' loads are
issued per loop iteration; split-K is finished in the same launch as v5's. 2.2-2.5 SASS
instructions per weight (v5: 3.7), yet measured slower than v5 on the H200 (session 4,
kernels/NOTES.md "v6"), so it is not in the tuner's candidate lists: ``config=`` and
benchmarks/tune_w4a16.py reach it, and it is the base of the next attempt (a row-contiguous tile).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .gemm_w4a16_gemv import GROUP, _num_sms, _w4_counters

# fp16 bit patterns used by the half2 dequantization (see _w4_dot6_asm)
_H_MAGIC = 0x64006400  # half2 (1024, 1024): OR a nibble into bits 0..3 (or 4..7) of its mantissa
_H_1032 = 0x64086408  # half2 (1032, 1032) = 1024 + zero point 8
_H_SIXTEENTH = 0x2C002C00  # half2 (1/16, 1/16)
_H_M72 = 0xD480D480  # half2 (-72, -72) = -(1024 / 16 + 8)


def _x_pairs_asm(is_bf16: bool) -> str:
    """PTX for two int32 words a = (x[2t], x[2t+1]), b = (x[2t+4], x[2t+5]) (bf16 or fp16 pairs,
    low half first) -> ($0, $1) = fp16x2 (x[2t], x[2t+4]) and (x[2t+1], x[2t+5]): the activation
    pairs that meet nibbles t and t+4 of a weight word after one LOP3 (_w4_dot6_asm). fp16 input:
    two byte permutes; bf16 input: widen each half to fp32 (shift / mask), then one round-to-
    nearest pack to fp16x2 per pair (values beyond +-65504 become inf: the fp16-math limit)."""
    if not is_bf16:
        return "prmt.b32 $0, $2, $3, 0x5410; prmt.b32 $1, $2, $3, 0x7632;"
    return ("{ .reg .b32 al, ah, bl, bh;\n"
            "shl.b32 al, $2, 16; and.b32 ah, $2, 0xffff0000;\n"
            "shl.b32 bl, $3, 16; and.b32 bh, $3, 0xffff0000;\n"
            "cvt.rn.f16x2.f32 $0, bl, al; cvt.rn.f16x2.f32 $1, bh, ah; }")


def _w4_dot6_asm(chain: int) -> str:
    """PTX for one pack of 4 consecutive words of one weight row (tl.inline_asm_elementwise,
    pack=4): ``acc0 += s * sum_{words, nibbles} (q - 8) x``; acc1..acc3 pass through.

    Operands: $0..$3 outputs (acc'), $4..$7 acc, $8..$11 words w, $12..$27 x pairs P0..P3 (4 words
    each, fp16x2 from _x_pairs_asm), $28..$31 the group scale (fp32, same value 4 times), $32..$35
    the half2 magic 0x64006400 (a register operand: ptxas would re-materialize an immediate).

    Dequantization two nibbles per instruction (the lop3 + magic-number trick of FasterTransformer
    and Marlin, here on the public layout): (w & 0x000F000F) | 0x6400_6400 is the half2 (1024 + q_t,
    1024 + q_{t+4}) for nibbles t = 0 (bits 0..3 and 16..19); minus 1032 gives q - 8 exactly.
    Mask 0x00F000F0 gives 1024 + 16 q for nibble 1 / 5, and fma(v, 1/16, -72) = q - 8 exactly;
    w >> 8 yields nibbles 2/6 and 3/7 the same way. The products are accumulated by HFMA2 in fp16
    over ``chain`` words (8 products per word, 4 per half lane), then both halves are widened to
    fp32 and summed, and the scale is applied in fp32 (fp32 across chains and groups). Per word:
    1 shift + 4 LOP3 + 4 dequant + 4 HFMA2, plus (3 + 1) per chain."""
    lines = ["{", ".reg .b32 hw, v, d, h, c1032, c16, cm72;", ".reg .f16 lo, hi;", ".reg .f32 flo, fhi, t;",
             f"mov.b32 c1032, {_H_1032:#x}; mov.b32 c16, {_H_SIXTEENTH:#x}; mov.b32 cm72, {_H_M72:#x};"]
    for i in range(4):
        w, p = f"${8 + i}", [f"${12 + 4 * t + i}" for t in range(4)]
        first = i % chain == 0
        lines.append(f"shr.u32 hw, {w}, 8;")
        for t, (src, mask) in enumerate([(w, "0x000f000f"), (w, "0x00f000f0"), ("hw", "0x000f000f"), ("hw", "0x00f000f0")]):
            lines.append(f"lop3.b32 v, {src}, {mask}, ${32 + i}, 0xea;")  # (a & b) | c
            lines.append("sub.f16x2 d, v, c1032;" if mask.endswith("0f") else "fma.rn.f16x2 d, v, c16, cm72;")
            if first and t == 0:
                lines.append(f"mul.rn.f16x2 h, d, {p[t]};")
            else:
                lines.append(f"fma.rn.f16x2 h, d, {p[t]}, h;")
        if (i + 1) % chain == 0:  # end of a chain: widen both lanes, add into the fp32 sum
            lines += ["mov.b32 {lo, hi}, h;", "cvt.f32.f16 flo, lo;", "cvt.f32.f16 fhi, hi;",
                      "add.f32 t, flo, fhi;" if i + 1 == chain else "add.f32 flo, flo, fhi;\nadd.f32 t, t, flo;"]
    lines += ["fma.rn.f32 $0, t, $28, $4;", "mov.b32 $1, $5;", "mov.b32 $2, $6;", "mov.b32 $3, $7;", "}"]
    return "\n".join(lines)


# the PTX strings as compile-time constants of the jit functions below
_DOT6_CHAIN4 = tl.constexpr(_w4_dot6_asm(4))
_DOT6_CHAIN2 = tl.constexpr(_w4_dot6_asm(2))
_DOT6_CHAIN1 = tl.constexpr(_w4_dot6_asm(1))
_DOT6_CONS = tl.constexpr("=f,=f,=f,=f," + ",".join(["f"] * 4 + ["r"] * 20 + ["f"] * 4 + ["r"] * 4))
_PAIRS_BF16 = tl.constexpr(_x_pairs_asm(True))
_PAIRS_FP16 = tl.constexpr(_x_pairs_asm(False))


@triton.jit
def _w4_x_pairs(x01, x23, IS_BF16: tl.constexpr):
    """x as int64 (x[8w..8w+3]) and (x[8w+4..8w+7]) per word column -> the 4 fp16x2 pairs
    P_t = (x[8w+t], x[8w+t+4]) as int32 (GPU only: inline PTX)."""
    x0 = x01.to(tl.int32)  # truncation keeps the low 32 bits: (x[8w], x[8w+1])
    x1 = (x01 >> 32).to(tl.int32)
    x2 = x23.to(tl.int32)
    x3 = (x23 >> 32).to(tl.int32)
    if IS_BF16:
        p0, p1 = tl.inline_asm_elementwise(_PAIRS_BF16, "=r,=r,r,r", [x0, x2],
                                           dtype=(tl.int32, tl.int32), is_pure=True, pack=1)
        p2, p3 = tl.inline_asm_elementwise(_PAIRS_BF16, "=r,=r,r,r", [x1, x3],
                                           dtype=(tl.int32, tl.int32), is_pure=True, pack=1)
    else:
        p0, p1 = tl.inline_asm_elementwise(_PAIRS_FP16, "=r,=r,r,r", [x0, x2],
                                           dtype=(tl.int32, tl.int32), is_pure=True, pack=1)
        p2, p3 = tl.inline_asm_elementwise(_PAIRS_FP16, "=r,=r,r,r", [x1, x3],
                                           dtype=(tl.int32, tl.int32), is_pure=True, pack=1)
    return p0, p1, p2, p3


@triton.jit
def _x_half(v, HI: tl.constexpr, IS_BF16: tl.constexpr):
    """fp32 value of the low (HI=False) or high 16-bit half of int32 v holding two bf16/fp16."""
    if IS_BF16:
        if HI:
            return (v & -65536).to(tl.float32, bitcast=True)
        return (v << 16).to(tl.float32, bitcast=True)
    if HI:
        return (v >> 16).to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32)
    return v.to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32)


@triton.jit
def _w4_dot6_ref(w, x01, x23, IS_BF16: tl.constexpr):
    """Portable fp32 twin of the asm dot (the CPU interpreter cannot run PTX): sum_j (q_j - 8) x_j
    per word of w [BLOCK_N, 16] with x given as in _w4_x_pairs; returns [BLOCK_N, 16] fp32."""
    xs = (x01.to(tl.int32), (x01 >> 32).to(tl.int32), x23.to(tl.int32), (x23 >> 32).to(tl.int32))
    part = tl.zeros(w.shape, dtype=tl.float32)
    for j in tl.static_range(8):
        q = ((w >> (4 * j)) & 15).to(tl.float32) - 8.0
        part += q * _x_half(xs[j // 2], j % 2 == 1, IS_BF16)[None, :]
    return part


@triton.jit
def _w4_g6_load(q_row, s_row, x_row, g, live):
    """Loads of one group g for _w4_gemv6_kernel: words [BLOCK_N, 16] int32, scale [BLOCK_N, 16]
    fp32 (row scale repeated along the word columns, so it arrives in the word tile's layout with
    one load per row and no shared-memory layout conversion; 0 where not live), and x as two
    int64 [16] (x[8w..8w+3], x[8w+4..8w+7])."""
    w = tl.load(q_row + g * 16)
    s = tl.where(live, tl.load(s_row + g).to(tl.float32), 0.0)  # g is clamped in range by the caller
    return w, s, tl.load(x_row + g * 32), tl.load(x_row + g * 32 + 1)


@triton.jit
def _w4_g6_math(acc, w, s, x01, x23, MAGIC, CHAIN: tl.constexpr, IS_BF16: tl.constexpr, USE_ASM: tl.constexpr):
    """acc [BLOCK_N, 16] fp32 += s * dot of one group (half2 asm on the GPU, fp32 twin else)."""
    if USE_ASM:
        p0, p1, p2, p3 = _w4_x_pairs(x01, x23, IS_BF16)
        return _w4_dot6(acc, w, p0, p1, p2, p3, s, MAGIC, CHAIN)
    return acc + _w4_dot6_ref(w, x01, x23, IS_BF16) * s


@triton.jit
def _w4_gemv6_kernel(x64_ptr, q_ptr, s_ptr, y_ptr, ws_ptr, cnt_ptr, M, N, K, sxm, sqn, ssn, sym, SK, PER, MAGIC,
                     BLOCK_N: tl.constexpr, SPLIT: tl.constexpr, U: tl.constexpr, CHAIN: tl.constexpr,
                     IS_BF16: tl.constexpr, USE_ASM: tl.constexpr):
    """v6 W4A16 GEMV: one token row per program (grid axis 2), half2 math on the CUDA cores.

    x64_ptr: x viewed as int64 [M, K / 4] (row stride sxm), so word w of a weight row (k = 8w..8w+7)
    meets its activations as two 8-byte loads, read in place -- no prologue launch (v5 had one).
    q_ptr: the packed weight as int32 [N, K / 8] (row stride sqn); s_ptr scales [N, K / 128].
    U groups of 128 k per loop iteration: all their loads are issued first, then the math, so
    U x 64 bytes of weights per thread are in flight (a register "prefetch" across iterations, as
    in v5, is undone by ptxas: it sinks the loads next to their use). Per group the [BLOCK_N, 16]
    word tile meets the 4 fp16x2 x pairs of each word column (built once, shared by the BLOCK_N /
    32 rows each thread holds) in the pack-of-4-words asm dot (_w4_dot6_asm), which adds scale *
    dot into the fp32 accumulator. USE_ASM=False computes the same sum in fp32 without PTX
    (interpreter / reference path). The pack-of-4 asm assumes the 4 consecutive registers it gets
    are one row's 4 consecutive words (sizePerThread [1, 4] of the word tile): true for the
    configs in _W4_GEMV6, checked on the GPU by the tests; BLOCK_N 256 with 4 warps broke it under
    triton 3.6 (wrong results, H200, session 4). Split-K as v5 (_w4_gemv5_kernel): fp32 partials, an acq_rel
    tile counter, the last slice reduces them in a fixed order and re-arms the counter; slices
    hold PER groups (a multiple of U, the wrapper's choice), a ragged last iteration gets scale 0."""
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    m = tl.program_id(2)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rn = offs_n % N
    offs_w = tl.arange(0, 16)
    G = K // 128
    g0 = pid_k * PER
    g1 = tl.minimum(g0 + PER, G)
    q_row = q_ptr + rn[:, None].to(tl.int64) * sqn + offs_w[None, :]
    s_row = s_ptr + rn[:, None].to(tl.int64) * ssn + 0 * offs_w[None, :]
    x_row = x64_ptr + m.to(tl.int64) * sxm + 2 * offs_w
    acc = tl.zeros((BLOCK_N, 16), dtype=tl.float32)
    glast = tl.maximum(g1 - 1, 0)
    for gb in range(g0, g1, U):
        w0, s0, xa0, xb0 = _w4_g6_load(q_row, s_row, x_row, gb, gb < g1)
        if U >= 2:
            w1, s1, xa1, xb1 = _w4_g6_load(q_row, s_row, x_row, tl.minimum(gb + 1, glast), gb + 1 < g1)
        if U >= 4:
            w2, s2, xa2, xb2 = _w4_g6_load(q_row, s_row, x_row, tl.minimum(gb + 2, glast), gb + 2 < g1)
            w3, s3, xa3, xb3 = _w4_g6_load(q_row, s_row, x_row, tl.minimum(gb + 3, glast), gb + 3 < g1)
        acc = _w4_g6_math(acc, w0, s0, xa0, xb0, MAGIC, CHAIN, IS_BF16, USE_ASM)
        if U >= 2:
            acc = _w4_g6_math(acc, w1, s1, xa1, xb1, MAGIC, CHAIN, IS_BF16, USE_ASM)
        if U >= 4:
            acc = _w4_g6_math(acc, w2, s2, xa2, xb2, MAGIC, CHAIN, IS_BF16, USE_ASM)
            acc = _w4_g6_math(acc, w3, s3, xa3, xb3, MAGIC, CHAIN, IS_BF16, USE_ASM)
    r = tl.sum(acc, axis=1)
    nmask = offs_n < N
    if SPLIT:
        wrow = ws_ptr + (pid_k * M + m).to(tl.int64) * N + offs_n
        tl.store(wrow, r, mask=nmask)
        tl.debug_barrier()
        tile = m * tl.num_programs(0) + pid_n
        arrived = tl.atomic_add(cnt_ptr + tile, 1, sem="acq_rel", scope="gpu")
        if arrived == SK - 1:  # last slice of this tile: fixed-order reduction, then re-arm
            t = tl.zeros((BLOCK_N,), dtype=tl.float32)
            for k in range(0, SK):
                t += tl.load(ws_ptr + (k * M + m).to(tl.int64) * N + offs_n, mask=nmask, other=0.0, cache_modifier=".cg")
            tl.store(y_ptr + m.to(tl.int64) * sym + offs_n, t.to(y_ptr.dtype.element_ty), mask=nmask)
            tl.atomic_xchg(cnt_ptr + tile, 0, sem="relaxed", scope="gpu")
    else:
        tl.store(y_ptr + m.to(tl.int64) * sym + offs_n, r.to(y_ptr.dtype.element_ty), mask=nmask)


@triton.jit
def _w4_dot6(acc, w, p0, p1, p2, p3, sf, MAGIC, CHAIN: tl.constexpr):
    """acc [BLOCK_N, 16] fp32 += scale * (half2 dot of each pack of 4 words), see _w4_dot6_asm.
    p0..p3 [16] are broadcast to acc's shape by inline_asm_elementwise."""
    mg = tl.full(w.shape, MAGIC, tl.int32)
    args = [acc, w, p0[None, :], p1[None, :], p2[None, :], p3[None, :], sf, mg]
    if CHAIN == 4:
        return tl.inline_asm_elementwise(_DOT6_CHAIN4, _DOT6_CONS, args, dtype=tl.float32, is_pure=True, pack=4)
    elif CHAIN == 2:
        return tl.inline_asm_elementwise(_DOT6_CHAIN2, _DOT6_CONS, args, dtype=tl.float32, is_pure=True, pack=4)
    else:
        return tl.inline_asm_elementwise(_DOT6_CHAIN1, _DOT6_CONS, args, dtype=tl.float32, is_pure=True, pack=4)


def _gemv6_split(G: int, grid_n: int, M: int, sk: int, u: int, per_sm: int, sms: int):
    """(slices, groups per slice) of the v6 split-K: sk = 0 picks about per_sm programs per SM
    (one resident wave at the occupancy of the config) with at least u groups per slice; the
    slice length is rounded up to a multiple of u and the slice count re-derived from it."""
    if sk == 0:
        sk = max(1, round(per_sm * sms / (grid_n * M)))
    sk = max(1, min(sk, G // u if G >= u else 1))
    per = triton.cdiv(triton.cdiv(G, sk), u) * u
    return triton.cdiv(G, per), per


def _launch_gemv6(x, q32, scales, y, c, interpreter: bool):
    """v6 GEMV (half2 asm dot, x read in place, in-kernel split-K finish); one launch.
    c = (BLOCK_M (unused), BLOCK_N, _, warps, stages, SPLIT_K (0 = auto), "gemv6", U, CHAIN, PER_SM).
    x must be bf16/fp16 with |x| < 65504 (it is rounded to fp16 for the half2 products)."""
    M, K = x.shape
    N = y.shape[1]
    _, bn, _, nw, ns, sk, _, u, chain, per_sm = c[:10]
    if x.stride(1) != 1 or x.stride(0) % 4 or x.storage_offset() % 4:
        x = x.contiguous()  # the int64 view needs 8-byte aligned rows
    x64 = x.view(torch.int64)
    G = K // GROUP
    grid_n = triton.cdiv(N, bn)
    sk, per = _gemv6_split(G, grid_n, M, sk, u, per_sm, _num_sms(x.device))
    grid = (grid_n, sk, M)
    if sk > 1:
        ws = torch.empty((sk, M, N), dtype=torch.float32, device=x.device)
        cnt = _w4_counters(x.device, grid_n * M)
    else:
        ws, cnt = y, q32  # unused
    _w4_gemv6_kernel[grid](x64, q32, scales, y, ws, cnt, M, N, K, x64.stride(0), q32.stride(0), scales.stride(0),
                           y.stride(0), sk, per, _H_MAGIC, BLOCK_N=bn, SPLIT=sk > 1, U=u, CHAIN=chain,
                           IS_BF16=x.dtype == torch.bfloat16, USE_ASM=not interpreter, num_warps=nw, num_stages=ns)
