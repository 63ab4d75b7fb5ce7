"""Split merges and the fp8 -> fp16 convert of decode attention (:mod:`.attention_decode`).

Partials: op fp32 [rows, SPLITS, D] (each split's normalised output) and lse fp32 [rows, SPLITS]
(its base-2 log-sum-exp), rows = B*Hq*Lq in (b, h, i) order; output o [rows, D] (contiguous).
The merged row is o = sum_s 2^(lse_s - m) op_s / sum_s 2^(lse_s - m), m = max_s lse_s
(Flash-Decoding's second step). Split 0 of every valid row holds a visible key, so the denominator
is > 0 there. ".cg" loads bypass L1: in the fused paths the partials were written by other SMs.
"""

from __future__ import annotations

import triton
import triton.language as tl

try:  # programmatic dependent launch (Hopper+, Triton >= 3.4): griddepcontrol.wait / .launch_dependents
    from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait
    HAS_PDL = True
except ImportError:  # pragma: no cover - older Triton: the "pdl" combine runs as a plain second launch
    HAS_PDL = False

    @triton.jit
    def gdc_launch_dependents():
        pass

    @triton.jit
    def gdc_wait():
        pass


@triton.jit
def _combine_row(op_ptr, lse_ptr, o_ptr, row, SPLITS, D: tl.constexpr, SB: tl.constexpr):
    """Merge one row: one pass with online rescaling; each step loads SB log-sum-exps and SB
    partial rows together (one memory latency per SB splits)."""
    s = tl.arange(0, SB)
    d = tl.arange(0, D)
    m = tl.full((), float("-inf"), dtype=tl.float32)
    acc = tl.zeros((D,), dtype=tl.float32)
    den = tl.full((), 0.0, dtype=tl.float32)
    for s0 in range(0, SPLITS, SB):
        sm = s0 + s < SPLITS
        lse = tl.load(lse_ptr + row * SPLITS + s0 + s, mask=sm, other=float("-inf"), cache_modifier=".cg")
        part = tl.load(op_ptr + (row * SPLITS + s0 + s[:, None]) * D + d[None, :], mask=sm[:, None],
                       other=0.0, cache_modifier=".cg")
        m_new = tl.maximum(m, tl.max(lse, 0))
        m_sub = tl.where(m_new == float("-inf"), 0.0, m_new)
        w = tl.exp2(lse - m_sub)
        alpha = tl.exp2(m - m_sub)
        acc = acc * alpha + tl.sum(part * w[:, None], 0)
        den = den * alpha + tl.sum(w, 0)
        m = m_new
    tl.store(o_ptr + row * D + d, (acc / den).to(o_ptr.dtype.element_ty))


@triton.jit
def _combine_rows(op_ptr, lse_ptr, o_ptr, row0, NROWS, SPLITS, D: tl.constexpr, RB: tl.constexpr,
                  SB: tl.constexpr):
    """Merge rows row0 .. row0+NROWS-1 together (v6 fused merge): each step loads an
    [RB rows, SB splits, D] tile of partials and the [RB, SB] log-sum-exps, so a group of G*Lq
    rows costs ceil(SPLITS / SB) dependent L2 round trips instead of one per row (v4/v5's fused
    merge looped over the rows serially, ~4 us behind the second launch on an H200). Still slower
    than the second launch (tune_decode run 4, H200, B1 L32k 32 splits: 41.3 vs 36.2 us, and the
    split kernel alone takes 35.6 us), so "fused" stays an option."""
    r = tl.arange(0, RB)
    s = tl.arange(0, SB)
    d = tl.arange(0, D)
    for r0 in range(0, NROWS, RB):
        rmask = r0 + r < NROWS
        rows = row0 + r0 + r
        m = tl.full((RB,), float("-inf"), dtype=tl.float32)
        acc = tl.zeros((RB, D), dtype=tl.float32)
        den = tl.zeros((RB,), dtype=tl.float32)
        for s0 in range(0, SPLITS, SB):
            msk = rmask[:, None] & (s0 + s[None, :] < SPLITS)
            idx = rows[:, None] * SPLITS + s0 + s[None, :]  # [RB, SB]
            lse = tl.load(lse_ptr + idx, mask=msk, other=float("-inf"), cache_modifier=".cg")
            part = tl.load(op_ptr + idx[:, :, None] * D + d[None, None, :], mask=msk[:, :, None], other=0.0,
                           cache_modifier=".cg")
            m_new = tl.maximum(m, tl.max(lse, 1))
            m_sub = tl.where(m_new == float("-inf"), 0.0, m_new)
            w = tl.exp2(lse - m_sub[:, None])
            alpha = tl.exp2(m - m_sub)
            acc = acc * alpha[:, None] + tl.sum(part * w[:, :, None], 1)
            den = den * alpha + tl.sum(w, 1)
            m = m_new
        o = acc / tl.where(den > 0, den, 1.0)[:, None]  # padding rows: den == 0, not stored
        tl.store(o_ptr + rows[:, None] * D + d[None, :], o.to(o_ptr.dtype.element_ty), mask=rmask[:, None])


def rows_tile(group_rows: int, splits: int, head_dim: int) -> tuple[int, int]:
    """(RB, SB) of :func:`_combine_rows`: up to 32 rows x as many splits as keep the fp32 tile at
    <= 8192 elements (64 registers per thread at 4 warps); D=128, G*Lq=4 -> (4, 16)."""
    rb = min(triton.next_power_of_2(group_rows), max(1, 4096 // head_dim))
    sb = min(max(1, 8192 // (rb * head_dim)), triton.next_power_of_2(splits))
    return rb, sb


@triton.jit
def _combine_kernel(op_ptr, lse_ptr, o_ptr, SPLITS, D: tl.constexpr, SB: tl.constexpr, PDL: tl.constexpr):
    """Second launch: one program per output row (b, h, i) merges its SPLITS partials."""
    if PDL:
        gdc_wait()  # launched early (programmatic dependent launch): wait for the split kernel's writes
    _combine_row(op_ptr, lse_ptr, o_ptr, tl.program_id(0).to(tl.int64), SPLITS, D, SB)


@triton.jit
def e4m3_to_f16(x, ASM: tl.constexpr):
    """float8_e4m3fn tile -> fp16 tile of the same shape (exact: every e4m3 value is an fp16).

    ASM (GPU, sm_89+): inline PTX ``cvt.rn.f16x2.e4m3x2``, four values per call (two cvt). It is
    declared impure on purpose: Triton then keeps the convert where it is written -- on the
    coalesced load layout, right after the load -- and moves the fp16 tile into the MMA operand
    layout through shared memory (ldmatrix, as for bf16 K/V). A plain ``x.to(fp16)`` is hoisted
    past that layout change by Triton, which then builds the operand from fp8 bytes: for V (whose
    MMA operand is transposed against memory) 128 one-byte shared loads + byte packing per thread
    per 128-token tile (Triton 3.6, sm_90 SASS: 1113 instructions per loop iteration vs 639 with
    both converts here). Fewer instructions did not mean faster: the fp16 staging tiles raise
    shared memory per program (tune_decode run 4: contiguous fp8 75.6% of copy BW with V, 47.5%
    with K and V, vs 81.4% plain; paged16 with swap-AB 62.8% vs 56.1%). Not runnable in the
    interpreter: ASM=False there (``.to``).
    """
    if ASM:
        return tl.inline_asm_elementwise(
            "{ .reg .b16 lo, hi; mov.b32 {lo, hi}, $2; cvt.rn.f16x2.e4m3x2 $0, lo; cvt.rn.f16x2.e4m3x2 $1, hi; }",
            "=r,=r,r", [x.to(tl.uint8, bitcast=True)], dtype=tl.float16, is_pure=False, pack=4)
    else:
        return x.to(tl.float16)
