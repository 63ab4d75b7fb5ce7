"""Split merges and the fp8 -> fp16 convert of decode attention (:mod:`.attention_decode`).

Partials: op fp32 [rows, SPLITS, D] (each split's normalised output) and lse fp32 [rows, SPLITS]
(its base-2 log-sum-exp), rows = B*Hq*Lq in (b, h, i) order; output o [rows, D] (contiguous).
The merged row is o = sum_s 2^(lse_s - m) op_s / sum_s 2^(lse_s - m), m = max_s lse_s
(Flash-Decoding's second step). Split 0 of every valid row holds a visible key, so the denominator
is > 0 there. ".cg" loads bypass L1: in the fused paths the partials were written by other SMs
(v8's :func:`_merge_group` loads them volatile: L2 as well, and kept in program order by ptxas).
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
    split kernel alone takes 35.6 us). v8: replaced by :func:`_merge_group` (kernel FUSED = 2); this one
    runs with the wrapper's ``_FUSED_MERGE = 1`` (A/B: run 6, 40.1 vs 36.9 us)."""
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


@triton.jit
def _merge_group(op_ptr, lse_ptr, o_ptr, NROWS, SPLITS, D: tl.constexpr, RB: tl.constexpr, SB: tl.constexpr,
                 VEC: tl.constexpr):
    """v8 fused merge: the last program of a (sequence, KV head) group merges its NROWS = G*Lq rows.

    ``op_ptr``/``lse_ptr``/``o_ptr`` point at the group's first row: partials op fp32
    [NROWS, SPLITS, D], log-sum-exps lse fp32 [NROWS, SPLITS], output o [NROWS, D] (rows contiguous).
    Rows go in blocks of RB as a [T, VEC] tile, T = RB*D/VEC = the program's threads where the rows
    allow (VEC consecutive d of one row per thread: 4 warps hold 4 rows of D=128 with VEC = 4), so
    the partial and the lse loads get the same thread mapping and need no layout conversion; splits
    go in chunks of SB (a compile-time count). RB, SB, VEC from :func:`fused_tile`.

    Why this shape (offline sm_90a SASS, Triton 3.6; NOTES.md decode v8): v6's merge
    (:func:`_combine_rows`) loaded its [rows, splits] lse tile three times in three layouts and
    carried the running max and sum in a fourth (shared-memory conversions, 4-6 barriers per step),
    and ptxas kept its masked .cg partial loads to a rolling window of ~4 in flight (16 loads per
    step in ~4 dependent L2 round trips). Here every load of a chunk comes before any use, unmasked
    (split and row indices clamped into range; clamped splits weigh 0 through lse = -inf), and
    volatile (ld.volatile: L2, never a stale L1 line): ptxas keeps volatile loads in program order,
    so all SB (partial, lse) pairs of a chunk are issued back to back -- one L2 round trip per
    chunk, SB*(VEC+1) registers per thread. The sums run over the splits inside each thread in
    index order (chunk by chunk, rescaled to the running max): the result does not depend on which
    program merges. Measured (tune_decode run 6, H200, B1 L32k): 2.1 us over the split kernel alone
    (v6's merge 5.4 us, the second launch 2.6 us, PDL 2.0 us); paged16 in 6 chunks 4.5 us.
    """
    T: tl.constexpr = RB * D // VEC
    t = tl.arange(0, T)[:, None]
    tr = t // (D // VEC)  # [T, 1] row of the block
    jd = (t % (D // VEC)) * VEC + tl.arange(0, VEC)[None, :]  # [T, VEC] head dim index
    for r0 in range(0, NROWS, RB):
        rc = tl.minimum(r0 + tr, NROWS - 1)  # padding rows re-read the last row (not stored)
        m = tl.full((T, 1), float("-inf"), dtype=tl.float32)
        den = tl.zeros((T, 1), dtype=tl.float32)
        acc = tl.zeros((T, VEC), dtype=tl.float32)
        for s0 in range(0, SPLITS, SB):
            parts = ()
            lses = ()
            for k in tl.static_range(SB):  # loads first: the whole chunk in flight at once
                sc = tl.minimum(s0 + k, SPLITS - 1)
                parts = parts + (tl.load(op_ptr + (rc * SPLITS + sc) * D + jd, volatile=True),)
                lses = lses + (tl.load(lse_ptr + rc * SPLITS + sc, volatile=True),)
            m_new = m
            for k in tl.static_range(SB):
                m_new = tl.maximum(m_new, tl.where(s0 + k < SPLITS, lses[k], float("-inf")))
            m_sub = tl.where(m_new == float("-inf"), 0.0, m_new)
            alpha = tl.exp2(m - m_sub)
            acc = acc * alpha
            den = den * alpha
            for k in tl.static_range(SB):
                w = tl.exp2(tl.where(s0 + k < SPLITS, lses[k], float("-inf")) - m_sub)
                acc = acc + parts[k] * w
                den = den + w
            m = m_new
        o = acc / tl.where(den > 0, den, 1.0)
        tl.store(o_ptr + (r0 + tr) * D + jd, o.to(o_ptr.dtype.element_ty), mask=r0 + tr < NROWS)


def fused_tile(group_rows: int, splits: int, head_dim: int, num_warps: int, per_sm: int) -> tuple[int, int, int]:
    """(RB, SB, VEC) of :func:`_merge_group` for a program of 32*num_warps threads.

    RB rows per block (a power of two, at most 128*num_warps/D: 4 values per thread); VEC values per
    thread (4, or fewer when the group's rows do not fill the threads; RB*D/VEC = threads); the splits
    in equal chunks of SB. A chunk in flight holds SB*(VEC+1) registers per thread, and registers are
    counted for the whole kernel, so SB is capped such that ``per_sm`` programs (the grid's programs
    per SM, ceil(B*Hkv*splits / SMs), at most 4) still fit in the 64K registers of an SM, with 64 per
    thread left for the rest: sb_max = (min(255, 65536 / (per_sm * threads)) - 64) / (VEC+1).
    Offline sm_90a builds (Triton 3.6, D=128, G*Lq=4, 4 warps; the split kernel alone: 96 registers):
    B1 L32k, 32 splits, per_sm 2 -> (4, 32, 4), 227 registers, one chunk; 33 splits -> (4, 33, 4);
    paged 66 splits, per_sm 4 -> 6 chunks of 11 (the paged kernel itself holds 127)."""
    threads = 32 * num_warps
    rb = max(1, min(triton.next_power_of_2(group_rows), 4 * threads // head_dim))
    vec = max(1, min(4, rb * head_dim // threads))
    regs = min(255, 65536 // (max(1, min(per_sm, 4)) * threads))
    sb_max = max(2, (regs - 64) // (vec + 1))
    chunks = triton.cdiv(splits, sb_max)
    return rb, triton.cdiv(splits, chunks), vec


def fused_params(merge: int, group_rows: int, splits: int, head_dim: int, num_warps: int,
                 per_sm: int) -> tuple[int, int, int]:
    """(RB, SB, VEC) constexprs of the split kernel's in-kernel merge ``merge`` (its FUSED): 0 none
    (1, 1, 1), 1 v6 :func:`_combine_rows` (:func:`rows_tile`, VEC unused), 2 v8 (:func:`fused_tile`)."""
    if merge == 2:
        return fused_tile(group_rows, splits, head_dim, num_warps, per_sm)
    return rows_tile(group_rows, splits, head_dim) + (1,) if merge == 1 else (1, 1, 1)


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
