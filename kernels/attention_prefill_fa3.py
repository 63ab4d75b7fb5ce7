"""Prefill attention forward for Hopper in Gluon, FlashAttention-3 style ("fa3" path of attention_prefill).

Why: the Triton FA2 kernel (attention_prefill.py) reaches 0.77-0.87 of cuDNN's Hopper kernel at D 128
causal, and Triton 3.6's automatic warp specialization could not close the gap (kernels/NOTES.md,
sessions 8-10): it keeps one key loop per function, waits for every wgmma before the softmax, and a
mask it cannot split off costs ~20% of the loop. Gluon (``triton.experimental.gluon``) exposes the
pieces directly -- TMA copies completing on mbarriers, asynchronous wgmma with an explicit wait
depth, and warp-specialized partitions -- so the FA3 schedule (Shah et al., arXiv:2407.08608, §3.1-3.2)
can be written out:

* a producer partition (one warp) issues the TMA copies: the CTA's two Q tiles once, then K_j and V_j
  into rings of NB stages, each stage guarded by a "ready" mbarrier (transaction bytes) and an
  "empty" mbarrier that both consumers arrive on when their wgmma has read it;
* two consumer partitions (one warpgroup each, HALF_M = BLOCK_M / 2 query rows each) share every
  K/V tile; they run independently, so one warpgroup's softmax overlaps the other's wgmma;
* inside a consumer, the loop is software-pipelined (FA3 §3.2, "intra-warpgroup overlap"): at step j
  it issues S_j = Q K_j^T and O += P_{j-1} V_{j-1} back to back, waits only for S_j (wgmma groups
  complete in order), computes the online softmax of S_j, then waits for the PV and rescales O (so far
  ptxas moves that PV wait ahead of the exponentials in the SASS, kernels/NOTES.md session 12: the
  overlap left is the other warpgroup's);
* P goes from the S accumulator straight into the register A operand of the PV wgmma (no shared
  memory round trip); the softmax scale is folded into the exponent (one FFMA + EX2 per score);
* fully visible tiles run a loop without mask arithmetic, the causal diagonal / ragged end a second
  loop with it (Gluon has no single-loop restriction); causal CTAs are launched heaviest first;
* optionally ("ps") persistent: one CTA per SM walks row tiles (_fa3_work's order) with the K / V rings
  running on across them, and the next tile's Q is loaded as soon as both consumers issued their last S,
  so a tile's first copies overlap the previous tile's last PV and O store.

Layout and conventions are attention_prefill's: q [B, Hq, Sq, D], k / v [B, Hkv, Skv, D], all
contiguous (viewed as [rows, D] for the TMA descriptors), GQA by reading KV head h // (Hq / Hkv),
bottom-right causal alignment (query i sits at position Skv - Sq + i). No sliding window here (the
Triton kernels serve it). Rows of a tile past a head's end read the next head's rows (or TMA's zero
fill past the tensor): those keys are masked (kn < Skv) and those query rows never stored.

GPU only (sm_90): the Triton interpreter cannot run Gluon; CPU tests compile the kernel for sm_90a.
"""

from __future__ import annotations

import torch
import triton

from ._common import LOG2E, check, sm_count

try:  # Gluon ships with Triton >= 3.4; its Hopper API is what this file is written against (3.6)
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.hopper import (fence_async_shared, mbarrier, tma,
                                                                  warpgroup_mma, warpgroup_mma_wait)
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor as GluonTensorDescriptor
    # Triton 3.6 (the device's) calls the TMA load async_copy_global_to_shared; 3.9 (CI's) async_load
    _tma_load = getattr(tma, "async_load", None) or tma.async_copy_global_to_shared
    HAVE_GLUON = True
except ImportError:  # pragma: no cover - depends on the installed Triton
    HAVE_GLUON = False

# Tuning candidates: (BLOCK_M, BLOCK_N, num_warps per consumer, NB stages, "fa3"[, flags]); flags: "ps" persistent
# (one CTA per SM walking the row tiles; alone), "pp" ping-pong turns, "u2" the default partition's unmasked loop
# unrolled by two (its exponentials then run before the PV wait in the SASS; 164 B of spills, 19 local
# loads/stores per trip; kernels/NOTES.md session 12)
FA3_CONFIGS = {
    128: [(128, 128, 4, 2, "fa3"), (128, 128, 4, 3, "fa3"), (128, 128, 4, 2, "fa3", "ps"), (128, 128, 4, 3, "fa3", "ps"),
          (128, 64, 4, 3, "fa3"), (128, 128, 4, 2, "fa3", "pp"), (128, 128, 4, 3, "fa3", "pp"),
          (128, 128, 4, 2, "fa3", "pp", "u2")],
    64: [(128, 128, 4, 2, "fa3"), (128, 128, 4, 2, "fa3", "ps"), (128, 64, 4, 3, "fa3"), (128, 128, 4, 2, "fa3", "pp")],
}
# Default tuning candidates (attention_prefill.fa3_candidates): the entries that were fastest where timed. H200,
# session 13 (benchmarks/results/session13/): (128, 128, 4, 2 | 3) at 0.88 / 0.98 / 0.98-0.99 of cuDNN for D 128
# causal 2k / causal 4k / full 4k, 0.86 for D 64, ahead of the Triton TMA and autoWS kernels (0.68-0.84) in all
# four; ping-pong never faster, "u2" and BLOCK_N 64 slower. The persistent entries ("ps", written in session 13)
# first ran in session 16 (H100, benchmarks/results/session16/h100_fa3ps/): guarded probe and their 33 GPU tests
# passed; kernels_bench.py with every entry as a candidate picked "ps" for D 128 causal 2k (0.916 of cuDNN), full
# 4k (0.997) and D 64 causal 4k (0.921; 0.852 without "ps"), the non-persistent entry for causal 4k-16k (0.977,
# 0.998, 1.032): both kinds are default candidates, and the tuner keeps whichever is faster per shape.
FA3_DEFAULT = {
    128: [(128, 128, 4, 2, "fa3"), (128, 128, 4, 3, "fa3"), (128, 128, 4, 2, "fa3", "ps"),
          (128, 128, 4, 3, "fa3", "ps")],
    64: [(128, 128, 4, 2, "fa3"), (128, 128, 4, 2, "fa3", "ps")],
}


def fa3_supported(q, k, v, window) -> bool:
    """True where the Gluon kernel can run: Hopper, D 64 / 128, bf16 / fp16, contiguous, no window."""
    if not HAVE_GLUON or window is not None or not q.is_cuda:
        return False
    if torch.cuda.get_device_capability(q.device)[0] != 9:
        return False
    D = q.shape[-1]
    return D in FA3_CONFIGS and q.dtype in (torch.bfloat16, torch.float16) and all(
        t.is_contiguous() and t.data_ptr() % 16 == 0 for t in (q, k, v))


if HAVE_GLUON:

    @gluon.jit
    def _fa3_geometry(pid_m, bh, Sq, Skv, Hq, Hkv, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, CAUSAL: gl.constexpr):
        """Row tile pid_m of (batch x query head) bh: its first Q / O row, first K / V row, rows left in the head,
        absolute position of its first query, key tiles seen whole (no mask) and key tiles in all."""
        kvh = (bh // Hq) * Hkv + (bh % Hq) // (Hq // Hkv)
        m0 = pid_m * BLOCK_M
        pos0 = Skv - Sq + m0  # absolute position of the tile's first query
        if CAUSAL:
            kv_end = gl.minimum(Skv, pos0 + BLOCK_M)
            n_full = gl.minimum(pos0 + 1, Skv) // BLOCK_N  # tiles every query of the CTA sees whole
        else:
            kv_end = Skv
            n_full = Skv // BLOCK_N
        return bh * Sq + m0, kvh * Skv, Sq - m0, pos0, n_full, gl.cdiv(kv_end, BLOCK_N)

    @gluon.jit
    def _fa3_work(t, num_m, BH, Sq, Skv, Hq, Hkv, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, CAUSAL: gl.constexpr):
        """Work item t of the persistent grid -> _fa3_geometry. Causal: the heaviest row tiles of every head first
        (longest-processing-time order, so the light tiles fill the end); full: a head's row tiles together (its
        K / V read from L2 by the CTAs beside it)."""
        if CAUSAL:
            pid_m = num_m - 1 - t // BH
            bh = t % BH
        else:
            pid_m = t % num_m
            bh = t // num_m
        return _fa3_geometry(pid_m, bh, Sq, Skv, Hq, Hkv, BLOCK_M, BLOCK_N, CAUSAL)

    @gluon.jit
    def _fa3_load_tile(q_desc, k_desc, v_desc, q_smem, k_smem, v_smem, q_bar, k_ready, k_empty, v_ready, v_empty,
                       q_row, kv_row, n_tiles, r0, HALF_M: gl.constexpr, BLOCK_N: gl.constexpr, NB: gl.constexpr):
        """A row tile's copies: its two Q halves, then K_j / V_j into ring slot (r0 + j) % NB after both consumers
        freed it (r0: key tiles the CTA loaded before this row tile; 0 unless persistent)."""
        mbarrier.expect(q_bar, 2 * q_desc.block_type.nbytes)
        _tma_load(q_desc, [q_row, 0], q_bar, q_smem.index(0))
        _tma_load(q_desc, [q_row + HALF_M, 0], q_bar, q_smem.index(1))
        for j in range(n_tiles):
            r = r0 + j
            s = r % NB
            ph = ((r // NB) & 1) ^ 1  # a fresh barrier counts as having completed the phase before 0
            mbarrier.wait(k_empty.index(s), ph)
            mbarrier.expect(k_ready.index(s), k_desc.block_type.nbytes)
            _tma_load(k_desc, [kv_row + j * BLOCK_N, 0], k_ready.index(s), k_smem.index(s))
            mbarrier.wait(v_empty.index(s), ph)
            mbarrier.expect(v_ready.index(s), v_desc.block_type.nbytes)
            _tma_load(v_desc, [kv_row + j * BLOCK_N, 0], v_ready.index(s), v_smem.index(s))

    @gluon.jit
    def _fa3_producer(q_desc, k_desc, v_desc, q_smem, k_smem, v_smem, q_bar, q_empty, k_ready, k_empty, v_ready,
                      v_empty, q_row, kv_row, n_tiles, Sq, Skv, Hq, Hkv, num_m, BH, n_work,
                      BLOCK_N: gl.constexpr, NB: gl.constexpr, CAUSAL: gl.constexpr, PERSIST: gl.constexpr):
        """One warp. One row tile, or (PERSIST) work items program_id, + num_programs, ... < n_work, each after
        both consumers freed the Q buffer (q_empty); the K / V ring runs on across row tiles."""
        HALF_M: gl.constexpr = q_desc.block_type.shape[0]
        if PERSIST:
            r = 0
            tc = 0
            for t in range(gl.program_id(0), n_work, gl.num_programs(0)):
                q_row, kv_row, _rows, _pos0, _n_full, n_tiles = _fa3_work(t, num_m, BH, Sq, Skv, Hq, Hkv, 2 * HALF_M,
                                                                         BLOCK_N, CAUSAL)
                mbarrier.wait(q_empty, (tc & 1) ^ 1)
                _fa3_load_tile(q_desc, k_desc, v_desc, q_smem, k_smem, v_smem, q_bar, k_ready, k_empty, v_ready,
                               v_empty, q_row, kv_row, n_tiles, r, HALF_M, BLOCK_N, NB)
                r += n_tiles
                tc += 1
        else:
            _fa3_load_tile(q_desc, k_desc, v_desc, q_smem, k_smem, v_smem, q_bar, k_ready, k_empty, v_ready, v_empty,
                           q_row, kv_row, n_tiles, 0, HALF_M, BLOCK_N, NB)

    @gluon.jit
    def _fa3_mask(S, j, pos, Skv, BLOCK_N: gl.constexpr, CAUSAL: gl.constexpr, s_layout: gl.constexpr):
        """Scores of keys a query may not see (causal: key > position; any: key >= Skv) -> -inf."""
        kn = j * BLOCK_N + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, s_layout))
        if CAUSAL:
            lim = gl.minimum(pos, Skv - 1)  # last visible key of each row
            vis = kn[None, :] <= lim[:, None]
        else:
            vis = (kn < Skv)[None, :] & (pos >= 0)[:, None]  # the row term (always true) makes it 2-D
        return gl.where(vis, S, float("-inf"))

    @gluon.jit
    def _fa3_softmax(S, m_i, l_i, qk_scale, dtype: gl.constexpr, p_layout: gl.constexpr):
        """Online softmax of one score tile (raw Q K^T): new max, P in the PV wgmma's A layout, sum, rescale."""
        m_new = gl.maximum(m_i, gl.max(S, axis=1))
        alpha = gl.exp2((m_i - m_new) * qk_scale)
        p = gl.exp2(S * qk_scale - (m_new * qk_scale)[:, None])
        l_i = l_i * alpha + gl.sum(p, axis=1)
        return gl.convert_layout(p.to(dtype), p_layout), m_new, l_i, alpha

    @gluon.jit
    def _fa3_turn_wait(turn, k, C: gl.constexpr, PP: gl.constexpr):
        """Ping-pong (FA3 §3.1): consumer C's k-th batch of wgmmas waits until the other consumer issued its
        previous one, so the two warpgroups' GEMMs reach the tensor cores alternately and each one's softmax
        runs under the other's GEMMs. Consumer 0 goes first (a fresh barrier passes parity 1)."""
        if PP:
            mbarrier.wait(turn.index(C), (k & 1) ^ (1 - C))

    @gluon.jit
    def _fa3_turn_pass(turn, C: gl.constexpr, PP: gl.constexpr):
        if PP:
            mbarrier.arrive(turn.index(1 - C), count=1)

    @gluon.jit
    def _fa3_step(q, k_smem, v_smem, k_ready, k_empty, v_ready, v_empty, turn, o, p_prev, m_i, l_i, j, r0, pos, Skv,
                  qk_scale, C: gl.constexpr, PP: gl.constexpr,
                  HALF_M: gl.constexpr, BLOCK_N: gl.constexpr, NB: gl.constexpr, MASK: gl.constexpr,
                  CAUSAL: gl.constexpr, s_layout: gl.constexpr, o_layout: gl.constexpr, p_layout: gl.constexpr):
        """Step j >= 1: S_j = Q K_j^T and O += P_{j-1} V_{j-1} in flight together, softmax of S_j under the PV.
        Key tile j sits in ring slot (r0 + j) % NB."""
        r = r0 + j
        s = r % NB
        sp = (r - 1) % NB
        mbarrier.wait(k_ready.index(s), (r // NB) & 1)
        mbarrier.wait(v_ready.index(sp), ((r - 1) // NB) & 1)
        _fa3_turn_wait(turn, j, C, PP)
        S = warpgroup_mma(q, k_smem.index(s).permute((1, 0)), gl.zeros([HALF_M, BLOCK_N], gl.float32, s_layout),
                          use_acc=False, is_async=True)
        o = warpgroup_mma(p_prev, v_smem.index(sp), o, is_async=True)
        _fa3_turn_pass(turn, C, PP)
        S = warpgroup_mma_wait(num_outstanding=1, deps=(S, ))  # groups complete in order: S_j is done
        mbarrier.arrive(k_empty.index(s), count=1)
        if MASK:
            S = _fa3_mask(S, j, pos, Skv, BLOCK_N, CAUSAL, s_layout)
        p, m_i, l_i, alpha = _fa3_softmax(S, m_i, l_i, qk_scale, p_prev.dtype, p_layout)
        o, p_prev = warpgroup_mma_wait(num_outstanding=0, deps=(o, p_prev))
        mbarrier.arrive(v_empty.index(sp), count=1)
        o = o * gl.convert_layout(alpha, gl.SliceLayout(1, o_layout))[:, None]
        return o, p, m_i, l_i

    @gluon.jit
    def _fa3_tile(C: gl.constexpr, q, k_smem, v_smem, q_empty, k_ready, k_empty, v_ready, v_empty, turn, o_ptr,
                  o_row, rows_left, pos0, Skv, n_full, n_tiles, r0, qk_scale,
                  HALF_M: gl.constexpr, BLOCK_N: gl.constexpr, HEAD_D: gl.constexpr, NB: gl.constexpr,
                  CAUSAL: gl.constexpr, PP: gl.constexpr, UNROLL: gl.constexpr, PERSIST: gl.constexpr):
        """One warpgroup, one row tile: query rows C * HALF_M .. C * HALF_M + HALF_M (q: their [HALF_M, D] shared
        tile, loaded), every key tile (tile j in ring slot (r0 + j) % NB), O stored to rows o_row + ...."""
        s_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                           instr_shape=[16, BLOCK_N, 16])
        o_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                           instr_shape=[16, HEAD_D, 16])
        p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
        row_l: gl.constexpr = gl.SliceLayout(1, s_layout)
        dtype: gl.constexpr = q.dtype
        rows = gl.arange(0, HALF_M, layout=row_l)
        pos = pos0 + C * HALF_M + rows  # absolute position of each query row
        # j = 0: S_0 and its softmax (no PV yet)
        s0 = r0 % NB
        mbarrier.wait(k_ready.index(s0), (r0 // NB) & 1)
        _fa3_turn_wait(turn, 0, C, PP)
        S = warpgroup_mma(q, k_smem.index(s0).permute((1, 0)), gl.zeros([HALF_M, BLOCK_N], gl.float32, s_layout),
                          use_acc=False, is_async=True)
        _fa3_turn_pass(turn, C, PP)
        S = warpgroup_mma_wait(num_outstanding=0, deps=(S, ))
        mbarrier.arrive(k_empty.index(s0), count=1)
        if n_full == 0:
            S = _fa3_mask(S, 0, pos, Skv, BLOCK_N, CAUSAL, s_layout)
        m_i = gl.full([HALF_M], float("-inf"), gl.float32, row_l)
        l_i = gl.zeros([HALF_M], gl.float32, row_l)
        p, m_i, l_i, alpha = _fa3_softmax(S, m_i, l_i, qk_scale, dtype, p_layout)
        o = gl.zeros([HALF_M, HEAD_D], gl.float32, o_layout)
        j0 = 1
        if UNROLL and C == 0:  # two steps per trip in the default partition (256 registers): P alternates
            # between two register sets, so packing the new P need not wait for the PV reading the old one
            n_pair = (n_full - 1) // 2
            for jj in range(0, n_pair):
                o, p, m_i, l_i = _fa3_step(q, k_smem, v_smem, k_ready, k_empty, v_ready, v_empty, turn, o, p, m_i, l_i,
                                           1 + 2 * jj, r0, pos, Skv, qk_scale, C, PP, HALF_M, BLOCK_N, NB, False, CAUSAL,
                                           s_layout, o_layout, p_layout)
                o, p, m_i, l_i = _fa3_step(q, k_smem, v_smem, k_ready, k_empty, v_ready, v_empty, turn, o, p, m_i, l_i,
                                           2 + 2 * jj, r0, pos, Skv, qk_scale, C, PP, HALF_M, BLOCK_N, NB, False, CAUSAL,
                                           s_layout, o_layout, p_layout)
            j0 = 1 + 2 * n_pair
        for j in range(j0, n_full):
            o, p, m_i, l_i = _fa3_step(q, k_smem, v_smem, k_ready, k_empty, v_ready, v_empty, turn, o, p, m_i, l_i, j,
                                       r0, pos, Skv, qk_scale, C, PP, HALF_M, BLOCK_N, NB, False, CAUSAL, s_layout, o_layout, p_layout)
        for j in range(gl.maximum(n_full, 1), n_tiles):
            o, p, m_i, l_i = _fa3_step(q, k_smem, v_smem, k_ready, k_empty, v_ready, v_empty, turn, o, p, m_i, l_i, j,
                                       r0, pos, Skv, qk_scale, C, PP, HALF_M, BLOCK_N, NB, True, CAUSAL, s_layout, o_layout, p_layout)
        if PERSIST:  # every S of the tile is done: the producer may load the next work item's Q
            mbarrier.arrive(q_empty, count=1)
        # the last PV
        rl = r0 + n_tiles - 1
        sl = rl % NB
        mbarrier.wait(v_ready.index(sl), (rl // NB) & 1)
        _fa3_turn_wait(turn, n_tiles, C, PP)
        o = warpgroup_mma(p, v_smem.index(sl), o, is_async=True)
        _fa3_turn_pass(turn, C, PP)
        o = warpgroup_mma_wait(num_outstanding=0, deps=(o, ))
        mbarrier.arrive(v_empty.index(sl), count=1)
        o = o / gl.convert_layout(l_i, gl.SliceLayout(1, o_layout))[:, None]
        offs_m = C * HALF_M + gl.arange(0, HALF_M, layout=gl.SliceLayout(1, o_layout))
        offs_d = gl.arange(0, HEAD_D, layout=gl.SliceLayout(0, o_layout))
        ptrs = o_ptr + (o_row + offs_m).to(gl.int64)[:, None] * HEAD_D + offs_d[None, :]
        gl.store(ptrs, o.to(dtype), mask=(offs_m < rows_left)[:, None])

    @gluon.jit
    def _fa3_consumer(C: gl.constexpr, q_smem, k_smem, v_smem, q_bar, q_empty, k_ready, k_empty, v_ready, v_empty, turn,
                      o_ptr, o_row, rows_left, pos0, n_full, n_tiles, Sq, Skv, Hq, Hkv, num_m, BH, n_work, qk_scale,
                      HALF_M: gl.constexpr, BLOCK_N: gl.constexpr, HEAD_D: gl.constexpr, NB: gl.constexpr,
                      CAUSAL: gl.constexpr, PP: gl.constexpr, UNROLL: gl.constexpr, PERSIST: gl.constexpr):
        """Consumer warpgroup C: the CTA's row tile, or (PERSIST) the producer's sequence of work items (the same
        loop as _fa3_producer's: every partition walks the sequence and keeps its own ring index r and count tc)."""
        q = q_smem.index(C)
        if PERSIST:
            r = 0
            tc = 0
            for t in range(gl.program_id(0), n_work, gl.num_programs(0)):
                t_row, _kv_row, t_left, t_pos0, t_full, t_tiles = _fa3_work(t, num_m, BH, Sq, Skv, Hq, Hkv, 2 * HALF_M,
                                                                           BLOCK_N, CAUSAL)
                mbarrier.wait(q_bar, tc & 1)
                _fa3_tile(C, q, k_smem, v_smem, q_empty, k_ready, k_empty, v_ready, v_empty, turn, o_ptr, t_row, t_left,
                          t_pos0, Skv, t_full, t_tiles, r, qk_scale, HALF_M, BLOCK_N, HEAD_D, NB, CAUSAL, PP, UNROLL,
                          PERSIST)
                r += t_tiles
                tc += 1
        else:
            mbarrier.wait(q_bar, 0)
            _fa3_tile(C, q, k_smem, v_smem, q_empty, k_ready, k_empty, v_ready, v_empty, turn, o_ptr, o_row, rows_left,
                      pos0, Skv, n_full, n_tiles, 0, qk_scale, HALF_M, BLOCK_N, HEAD_D, NB, CAUSAL, PP, UNROLL, PERSIST)

    @gluon.jit
    def _fa3_kernel(q_desc, k_desc, v_desc, o_ptr, Sq, Skv, Hq, Hkv, BH, qk_scale,
                    HEAD_D: gl.constexpr, BLOCK_N: gl.constexpr, NB: gl.constexpr, CAUSAL: gl.constexpr,
                    PP: gl.constexpr = False, UNROLL: gl.constexpr = False, PERSIST: gl.constexpr = False):
        """BLOCK_M = 2 x the Q descriptor's box rows (one half per consumer); BH = batch x query heads.
        Grid (cdiv(Sq, BLOCK_M), BH), heaviest causal row tiles first; or (PERSIST) at most one CTA per SM, each
        running work items program_id, + num_programs, ... of the cdiv(Sq, BLOCK_M) x BH (_fa3_work's order), so a
        row tile's first copies overlap the previous one's last PV and store."""
        HALF_M: gl.constexpr = q_desc.block_type.shape[0]
        BLOCK_M: gl.constexpr = 2 * HALF_M
        num_m = gl.cdiv(Sq, BLOCK_M)
        pid_m = gl.program_id(0)
        if CAUSAL:
            pid_m = num_m - 1 - pid_m  # heaviest row tiles first
        # (PERSIST: unused, each partition walks its work items)
        o_row, kv_row, rows_left, pos0, n_full, n_tiles = _fa3_geometry(pid_m, gl.program_id(1), Sq, Skv, Hq, Hkv,
                                                                         BLOCK_M, BLOCK_N, CAUSAL)
        n_work = num_m * BH

        dtype: gl.constexpr = q_desc.dtype
        q_smem = gl.allocate_shared_memory(dtype, [2, HALF_M, HEAD_D], q_desc.layout)
        k_smem = gl.allocate_shared_memory(dtype, [NB, BLOCK_N, HEAD_D], k_desc.layout)
        v_smem = gl.allocate_shared_memory(dtype, [NB, BLOCK_N, HEAD_D], v_desc.layout)
        q_bar = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())  # Q loaded / Q free
        k_ready = gl.allocate_shared_memory(gl.int64, [NB, 1], mbarrier.MBarrierLayout())
        k_empty = gl.allocate_shared_memory(gl.int64, [NB, 1], mbarrier.MBarrierLayout())
        v_ready = gl.allocate_shared_memory(gl.int64, [NB, 1], mbarrier.MBarrierLayout())
        v_empty = gl.allocate_shared_memory(gl.int64, [NB, 1], mbarrier.MBarrierLayout())
        turn = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
        mbarrier.init(q_bar.index(0), count=1)
        mbarrier.init(q_bar.index(1), count=2)  # one arrival per consumer warpgroup (PERSIST only)
        mbarrier.init(turn.index(0), count=1)
        mbarrier.init(turn.index(1), count=1)
        for i in gl.static_range(NB):
            mbarrier.init(k_ready.index(i), count=1)
            mbarrier.init(v_ready.index(i), count=1)
            mbarrier.init(k_empty.index(i), count=2)  # one arrival per consumer warpgroup
            mbarrier.init(v_empty.index(i), count=2)
        fence_async_shared()  # the initialised barriers visible to the TMA unit (async proxy) before any copy

        # (argument tuples written out: a tuple built by concatenation loses its constexpr entries in Triton 3.6)
        gl.warp_specialize([
            (_fa3_consumer, (0, q_smem, k_smem, v_smem, q_bar.index(0), q_bar.index(1), k_ready, k_empty, v_ready,
                             v_empty, turn, o_ptr, o_row, rows_left, pos0, n_full, n_tiles, Sq, Skv, Hq, Hkv, num_m, BH,
                             n_work, qk_scale, HALF_M, BLOCK_N, HEAD_D, NB, CAUSAL, PP, UNROLL, PERSIST)),
            (_fa3_consumer, (1, q_smem, k_smem, v_smem, q_bar.index(0), q_bar.index(1), k_ready, k_empty, v_ready,
                             v_empty, turn, o_ptr, o_row, rows_left, pos0, n_full, n_tiles, Sq, Skv, Hq, Hkv, num_m, BH,
                             n_work, qk_scale, HALF_M, BLOCK_N, HEAD_D, NB, CAUSAL, PP, UNROLL, PERSIST)),
            (_fa3_producer, (q_desc, k_desc, v_desc, q_smem, k_smem, v_smem, q_bar.index(0), q_bar.index(1), k_ready,
                             k_empty, v_ready, v_empty, o_row, kv_row, n_tiles, Sq, Skv, Hq, Hkv, num_m, BH, n_work,
                             BLOCK_N, NB, CAUSAL, PERSIST)),
        # registers: Triton 3.6 launches 12 warps at maxnreg 168 (3 x 168 per thread slot) and gives the default
        # partition 256, so the consumer worker may ask for at most 504 - 256 - 40 = 208; more and its
        # setmaxnreg.inc waits forever for registers nobody frees (a hang; the CPU probe test checks the sum)
        ], [4, 1], [208, 40])


def attention_prefill_fa3(q, k, v, out, causal: bool, sm_scale: float, config) -> torch.Tensor:
    """The Gluon kernel on checked inputs (attention_prefill validates shapes; see fa3_supported).

    q [B, Hq, Sq, D], k / v [B, Hkv, Skv, D], out [B, Hq, Sq, D], all contiguous; config =
    (BLOCK_M, BLOCK_N, num_warps, NB, "fa3"[, flags]), flags "pp", "u2" or "ps" (persistent, alone). Returns out."""
    bm, bn, nw, nb = config[:4]
    flags = set(config[5:])
    check(bm == 128 and nw == 4 and bn in (64, 128) and nb in (2, 3)
          and (flags <= {"pp", "u2"} or flags == {"ps"}),
          f"config {config} (Gluon FA3) must be (128, 64 or 128, 4, 2 or 3, 'fa3'[, 'pp'][, 'u2'] or [, 'ps']): two "
          f"consumer warpgroups of 64 query rows, 4 warps each; 'ps' (persistent) combines with no other flag.")
    B, Hq, Sq, D = q.shape
    Hkv, Skv = k.shape[1], k.shape[2]
    gdt = gl.bfloat16 if q.dtype == torch.bfloat16 else gl.float16
    q_layout = gl.NVMMASharedLayout.get_default_for([bm // 2, D], gdt)
    kv_layout = gl.NVMMASharedLayout.get_default_for([bn, D], gdt)
    q_desc = GluonTensorDescriptor.from_tensor(q.view(B * Hq * Sq, D), [bm // 2, D], q_layout)
    k_desc = GluonTensorDescriptor.from_tensor(k.view(B * Hkv * Skv, D), [bn, D], kv_layout)
    v_desc = GluonTensorDescriptor.from_tensor(v.view(B * Hkv * Skv, D), [bn, D], kv_layout)
    persist = "ps" in flags
    n_work = triton.cdiv(Sq, bm) * B * Hq
    grid = (min(n_work, sm_count(q.device)), 1) if persist else (triton.cdiv(Sq, bm), B * Hq)
    _fa3_kernel[grid](q_desc, k_desc, v_desc, out, Sq, Skv, Hq, Hkv, B * Hq, sm_scale * LOG2E,
                      HEAD_D=D, BLOCK_N=bn, NB=nb, CAUSAL=causal, PP="pp" in flags, UNROLL="u2" in flags,
                      PERSIST=persist, num_warps=nw)
    return out
