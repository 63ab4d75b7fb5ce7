"""Split-K, hybrid and stream-K launches of the bf16/fp16 GEMM ``y = x @ W^T`` (gemm.py picks them).

Mid M (128 < M <= 512) has too few large tiles to fill the GPU (256 x 4096 in 128 x 128 tiles: 64
tiles for 132 SMs) and small tiles are L2-bandwidth bound, so split-K candidates join: SPLIT
programs per output tile each reduce a contiguous range of K tiles into an fp32 partial in a
workspace, count their arrival on a per-tile atomic counter, and the last to arrive sums all
partials in row chunks and writes y (and resets the counter): one launch, no zero-fill, a fixed
sum order (the classic "serial split-K with semaphore" of CUTLASS, here without waiting: nobody
spins, the last arriver does the fix-up). The same kernel serves the skinny M <= 16 split-K
candidates (pointer loads, 16-row tiles) for narrow-N / long-K weights.

Stream-K (Osama et al., PPoPP 2023; CUTLASS's "stream-K" tile scheduler) joins the same buckets for
the shapes whose tile count is just past a whole number of waves (Qwen qkv 256 x 4608: 144 64 x 128
tiles for 132 SMs; gate_up 256 x 37888: 2.24 waves of 128 x 256 tiles), where split-K only moves
the spill: a persistent grid of ~#SMs programs (times programs per SM) splits the whole iteration
space, #tiles x #K tiles, into equal contiguous ranges. A program walks its range tile by tile:
a tile it covers from the first to the last K tile is stored directly; a tile shared with other
programs gets the split-K fix-up (fp32 partial into the program's own workspace slot -- at most
two per program, its first and its last tile --, arrival on the per-tile counter, the last arriver
sums the other contributors' slots, writes y and resets the counter). The contributors of a tile
follow from the static partition, so nobody waits; a program that finds the other contributors
already arrived (one atomic read) skips storing its own partial. Tiles in row-major order
(GROUP_M = 1): programs p and p + P / #row-tiles then work on the same W tile at the same time,
so W comes from HBM once even when M spans two tile rows.

Hybrid (``hybrid_plan``): whole waves of tiles run data-parallel with no fix-up, and only the tiles
of the last partial wave are split over K (the data-parallel + split tail schedule of CUTLASS's
stream-K paper, with split-K pieces instead of equal iteration ranges), in one launch.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import check
from .gemm_tiles import _acc_ptr, _acc_tma, _store_tile, _tile_coords
from .gemm_tma import TensorDescriptor

SPLITK_MAX_TILES = 16384  # capacity of the per-device tile-counter buffer (64 KiB of int32)


@triton.jit
def _gemm_splitk_kernel(a_desc, b_desc, c_desc, x_ptr, w_ptr, y_ptr, ws_ptr, cnt_ptr, M, N, K, DP_TILES, DP_PROGS, SPLIT,
                        sxm, sxk, swn, swk, sym, syn,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                        GROUP_M: tl.constexpr, EVEN_K: tl.constexpr, TMA: tl.constexpr, Y_DESC: tl.constexpr,
                        FIX_ROWS: tl.constexpr, HAS_DP: tl.constexpr, HAS_SPLIT: tl.constexpr,
                        FIX_ACC: tl.constexpr, PEEK: tl.constexpr, DP_FLATTEN: tl.constexpr,
                        RESET_STORE: tl.constexpr):
    """Data-parallel head + split-K tail in one launch (grid: DP_PROGS + (#tiles - DP_TILES) * SPLIT).

    Program p < DP_PROGS computes output tiles p, p + DP_PROGS, ... < DP_TILES over all K tiles and
    stores them (:func:`_dp_tile`; DP_PROGS = DP_TILES: one tile each; DP_FLATTEN: a persistent
    flattened loop, one program per slot); program DP_PROGS + q computes one K slice of a tail
    tile (:func:`_split_piece`). HAS_DP /
    HAS_SPLIT (DP_TILES > 0 / DP_TILES < #tiles) compile out the branch a launch does not use:
    two pointer-load loops in one kernel spill at the skinny 16 x 64 tile (ptxas -v, sm_90a)."""
    pid = tl.program_id(0)
    # Each branch runs its tiles inside a loop (one trip unless DP_FLATTEN), as gemm_tma's kernel does:
    # this keeps the K loop's pipeline buffers apart from the epilogue's shared memory (213 instead
    # of 147 KB at 128 x 256). Without it the same tiles ran 20-50% slower (H200 runs 8-14,
    # kernels/NOTES.md); with it a plan that splits nothing times as the plain kernel (run 16).
    pieces = (tl.cdiv(M, BLOCK_M) * tl.cdiv(N, BLOCK_N) - DP_TILES) * SPLIT
    if HAS_DP and HAS_SPLIT:
        if pid < DP_PROGS:
            for tile in tl.range(pid, DP_TILES, DP_PROGS, flatten=DP_FLATTEN):
                _dp_tile(x_ptr, w_ptr, a_desc, b_desc, c_desc, y_ptr, tile, M, N, K, sxm, sxk, swn, swk, sym, syn,
                         BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, EVEN_K, TMA, Y_DESC)
        else:
            for q in range(pid - DP_PROGS, pieces, pieces):
                _split_piece(x_ptr, w_ptr, a_desc, b_desc, c_desc, y_ptr, ws_ptr, cnt_ptr, q, DP_TILES, SPLIT,
                             M, N, K, sxm, sxk, swn, swk, sym, syn, BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, EVEN_K,
                             TMA, Y_DESC, FIX_ROWS, FIX_ACC, PEEK, RESET_STORE)
    elif HAS_DP:
        for tile in tl.range(pid, DP_TILES, DP_PROGS, flatten=DP_FLATTEN):
            _dp_tile(x_ptr, w_ptr, a_desc, b_desc, c_desc, y_ptr, tile, M, N, K, sxm, sxk, swn, swk, sym, syn,
                     BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, EVEN_K, TMA, Y_DESC)
    elif TMA:
        for q in range(pid, pieces, pieces):
            _split_piece(x_ptr, w_ptr, a_desc, b_desc, c_desc, y_ptr, ws_ptr, cnt_ptr, q, 0, SPLIT,
                         M, N, K, sxm, sxk, swn, swk, sym, syn, BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, EVEN_K, TMA,
                         Y_DESC, FIX_ROWS, FIX_ACC, PEEK, RESET_STORE)
    else:  # the skinny pointer path: the loop costs it half its pipeline depth (6 vs 12 KB smem at 16 x 64)
        _split_piece(x_ptr, w_ptr, a_desc, b_desc, c_desc, y_ptr, ws_ptr, cnt_ptr, pid, 0, SPLIT,
                     M, N, K, sxm, sxk, swn, swk, sym, syn, BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, EVEN_K, TMA,
                     Y_DESC, FIX_ROWS, FIX_ACC, PEEK, RESET_STORE)


@triton.jit
def _dp_tile(x_ptr, w_ptr, a_desc, b_desc, c_desc, y_ptr, tile, M, N, K, sxm, sxk, swn, swk, sym, syn,
             BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
             EVEN_K: tl.constexpr, TMA: tl.constexpr, Y_DESC: tl.constexpr):
    """Output tile ``tile`` over all of K, stored to y (through ``c_desc`` when Y_DESC: a TMA store)."""
    pid_m, pid_n = _tile_coords(tile, M, N, BLOCK_M, BLOCK_N, GROUP_M)
    if TMA:
        acc = _acc_tma(a_desc, b_desc, pid_m, pid_n, 0, tl.cdiv(K, BLOCK_K), BLOCK_M, BLOCK_N, BLOCK_K)
    else:
        acc = _acc_ptr(x_ptr, w_ptr, pid_m, pid_n, M, N, K, sxm, sxk, swn, swk, 0, tl.cdiv(K, BLOCK_K),
                       BLOCK_M, BLOCK_N, BLOCK_K, EVEN_K)
    if Y_DESC:
        c_desc.store([pid_m * BLOCK_M, pid_n * BLOCK_N], acc.to(c_desc.dtype))
    else:
        _store_tile(y_ptr, acc, pid_m, pid_n, M, N, sym, syn, BLOCK_M, BLOCK_N)


@triton.jit
def _split_piece(x_ptr, w_ptr, a_desc, b_desc, c_desc, y_ptr, ws_ptr, cnt_ptr, q, DP_TILES, SPLIT, M, N, K,
                 sxm, sxk, swn, swk, sym, syn, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                 BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr, EVEN_K: tl.constexpr, TMA: tl.constexpr,
                 Y_DESC: tl.constexpr, FIX_ROWS: tl.constexpr, FIX_ACC: tl.constexpr, PEEK: tl.constexpr,
                 RESET_STORE: tl.constexpr):
    """Split piece q of the tail: K tiles [s * per, (s + 1) * per) (s = q % SPLIT, per = cdiv(#K
    tiles, SPLIT)) of tile t = DP_TILES + q // SPLIT into ws[q // SPLIT, s] (fp32 [BLOCK_M, BLOCK_N]);
    the last of the SPLIT to arrive on cnt[q // SPLIT] writes y and resets the counter to 0 for the
    next launch. Two fix-ups:

    * FIX_ACC (the accumulator takes <= 64 registers per thread): the piece first peeks at the
      counter; if the others are all in it stores no partial. The last arriver adds the SPLIT - 1
      other partials into its register accumulator (it never re-reads its own) and stores y like a
      data-parallel tile (TMA store when Y_DESC).
    * else (:func:`_fixup_rows`): the last arriver sums all SPLIT partials, its own included,
      FIX_ROWS rows at a time, so no whole second tile is live in registers."""
    k_tiles = tl.cdiv(K, BLOCK_K)
    slot = q // SPLIT
    s = q % SPLIT
    per = tl.cdiv(k_tiles, SPLIT)
    k_lo = tl.minimum(s * per, k_tiles)  # the last splits may be empty (their partial is 0)
    k_hi = tl.minimum(k_lo + per, k_tiles)
    pid_m, pid_n = _tile_coords(DP_TILES + slot, M, N, BLOCK_M, BLOCK_N, GROUP_M)
    if TMA:
        acc = _acc_tma(a_desc, b_desc, pid_m, pid_n, k_lo, k_hi, BLOCK_M, BLOCK_N, BLOCK_K)
    else:
        acc = _acc_ptr(x_ptr, w_ptr, pid_m, pid_n, M, N, K, sxm, sxk, swn, swk, k_lo, k_hi,
                       BLOCK_M, BLOCK_N, BLOCK_K, EVEN_K)
    part = tl.arange(0, BLOCK_M)[:, None] * BLOCK_N + tl.arange(0, BLOCK_N)[None, :]
    ws_tile = ws_ptr + slot.to(tl.int64) * (SPLIT * BLOCK_M * BLOCK_N)
    if FIX_ACC:
        last = False
        if PEEK:  # all the others already arrived: no need to leave a partial
            last = tl.atomic_add(cnt_ptr + slot, 0, sem="acquire", scope="gpu") == SPLIT - 1
        if not last:
            tl.store(ws_tile + s * (BLOCK_M * BLOCK_N) + part, acc, cache_modifier=".cg")
            tl.debug_barrier()  # every thread's partial is issued before the (release) arrival
            last = tl.atomic_add(cnt_ptr + slot, 1, sem="acq_rel", scope="gpu") == SPLIT - 1
        if last:
            for j in range(0, SPLIT):
                if j != s:
                    acc += tl.load(ws_tile + j * (BLOCK_M * BLOCK_N) + part, cache_modifier=".cg")
            _reset_counter(cnt_ptr + slot, RESET_STORE)
            # TMA store from 128 x 128 up (through pointers the 8-warp 128 x 128 tile spills); a
            # 64-row tile stores through pointers: the TMA staging buffer would push the hybrid
            # kernel to 131 KB of shared memory, one program per SM instead of two (ptxas, sm_90a).
            if Y_DESC and BLOCK_M * BLOCK_N >= 16384:
                c_desc.store([pid_m * BLOCK_M, pid_n * BLOCK_N], acc.to(c_desc.dtype))
            else:
                _store_tile(y_ptr, acc, pid_m, pid_n, M, N, sym, syn, BLOCK_M, BLOCK_N)
    else:
        tl.store(ws_tile + s * (BLOCK_M * BLOCK_N) + part, acc, cache_modifier=".cg")
        tl.debug_barrier()  # every thread's partial is issued before the (release) arrival
        if tl.atomic_add(cnt_ptr + slot, 1, sem="acq_rel", scope="gpu") == SPLIT - 1:
            _fixup_rows(ws_tile, y_ptr, SPLIT, pid_m, pid_n, M, N, sym, syn, BLOCK_M, BLOCK_N, FIX_ROWS)
            _reset_counter(cnt_ptr + slot, RESET_STORE)


@triton.jit
def _reset_counter(cnt, STORE: tl.constexpr):
    """Re-arm a tile's arrival counter for the next launch. Nobody else touches it again in this
    launch and the kernel boundary orders it before the next one, so a plain store (no fence, no
    round trip) is enough; STORE = False keeps the acq_rel exchange of sessions 3-4."""
    if STORE:
        tl.store(cnt, 0)
    else:
        tl.atomic_xchg(cnt, 0)


@triton.jit
def _fixup_rows(ws_tile, y_ptr, split, pid_m, pid_n, M, N, sym, syn,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, FIX_ROWS: tl.constexpr):
    """y[tile] = sum of the ``split`` fp32 partials ws_tile[j] ([BLOCK_M, BLOCK_N] each), FIX_ROWS
    rows at a time. The arriving program has stored its own partial too, so nothing but one
    [FIX_ROWS, BLOCK_N] sum and one partial's chunk are live: summing whole partials into the
    register accumulator took 255 registers and spilled at 128 x 256 (ptxas -v, sm_90a). The
    launcher passes 8192 / BLOCK_N rows (32 KiB of fp32 per load, 32 rows at 128 x 256: 235
    registers with triton 3.6, no spills): the chunks are dependent L2 round trips, so bigger ones
    keep more bytes in flight (8-row chunks: 64 round trips per 4-way fix-up, run 17)."""
    cols = tl.arange(0, BLOCK_N)
    on = pid_n * BLOCK_N + cols
    for r in range(0, BLOCK_M, FIX_ROWS):
        rows = r + tl.arange(0, FIX_ROWS)
        off = rows[:, None] * BLOCK_N + cols[None, :]
        total = tl.zeros((FIX_ROWS, BLOCK_N), dtype=tl.float32)
        for j in range(0, split):
            total += tl.load(ws_tile + j * (BLOCK_M * BLOCK_N) + off, cache_modifier=".cg")
        om = pid_m * BLOCK_M + rows
        tl.store(y_ptr + om[:, None].to(tl.int64) * sym + on[None, :] * syn, total.to(y_ptr.dtype.element_ty),
                 mask=(om[:, None] < M) & (on[None, :] < N))


@triton.jit
def _gemm_streamk_kernel(x_ptr, w_ptr, a_desc, b_desc, c_desc, y_ptr, ws_ptr, cnt_ptr, M, N, K, IPP,
                         sxm, sxk, swn, swk, sym, syn,
                         BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                         GROUP_M: tl.constexpr, EVEN_K: tl.constexpr, TMA: tl.constexpr, Y_DESC: tl.constexpr,
                         PEEK: tl.constexpr):
    """Program p of a grid of cdiv(#tiles * #K tiles, IPP): iterations [p * IPP, (p + 1) * IPP)
    of the flattened (tile, K tile) space. Whole tiles are stored directly; a tile shared by
    programs p_first..p_last (p_first = its first iteration // IPP) is fixed up by the last of
    them to arrive on cnt[tile]: each other contributor q left its fp32 partial in workspace slot
    2q (if the tile is q's first) or 2q + 1 (q's last tile). Y_DESC: y is stored through c_desc
    (no register layout conversion); the workspace always goes through pointers (its writes must
    be visible at the release arrival, which an asynchronous TMA store does not guarantee)."""
    pid = tl.program_id(0)
    k_tiles = tl.cdiv(K, BLOCK_K)
    total = tl.cdiv(M, BLOCK_M) * tl.cdiv(N, BLOCK_N) * k_tiles
    it = pid * IPP
    end = tl.minimum(it + IPP, total)
    first_tile = it // k_tiles
    while it < end:
        tile = it // k_tiles
        k_lo = it - tile * k_tiles
        k_hi = tl.minimum(k_tiles, k_lo + (end - it))
        pid_m, pid_n = _tile_coords(tile, M, N, BLOCK_M, BLOCK_N, GROUP_M)
        if TMA:
            acc = _acc_tma(a_desc, b_desc, pid_m, pid_n, k_lo, k_hi, BLOCK_M, BLOCK_N, BLOCK_K)
        else:
            acc = _acc_ptr(x_ptr, w_ptr, pid_m, pid_n, M, N, K, sxm, sxk, swn, swk, k_lo, k_hi,
                           BLOCK_M, BLOCK_N, BLOCK_K, EVEN_K)
        p_first = (tile * k_tiles) // IPP
        p_last = (tile * k_tiles + k_tiles - 1) // IPP
        if p_first == p_last:
            if Y_DESC:
                c_desc.store([pid_m * BLOCK_M, pid_n * BLOCK_N], acc.to(c_desc.dtype))
            else:
                _store_tile(y_ptr, acc, pid_m, pid_n, M, N, sym, syn, BLOCK_M, BLOCK_N)
        else:
            others = p_last - p_first  # contributors besides this program
            part = tl.arange(0, BLOCK_M)[:, None] * BLOCK_N + tl.arange(0, BLOCK_N)[None, :]
            last = False
            if PEEK:  # all the others already arrived: no need to leave a partial
                last = tl.atomic_add(cnt_ptr + tile, 0, sem="acquire", scope="gpu") == others
            if not last:
                slot = 2 * pid + (tile != first_tile).to(tl.int32)
                tl.store(ws_ptr + slot.to(tl.int64) * (BLOCK_M * BLOCK_N) + part, acc, cache_modifier=".cg")
                tl.debug_barrier()  # every thread's partial is issued before the (release) arrival
                last = tl.atomic_add(cnt_ptr + tile, 1, sem="acq_rel", scope="gpu") == others
            if last:
                for q in range(p_first, p_last + 1):
                    if q != pid:
                        q_slot = 2 * q + (tile != (q * IPP) // k_tiles).to(tl.int32)
                        acc += tl.load(ws_ptr + q_slot.to(tl.int64) * (BLOCK_M * BLOCK_N) + part,
                                       cache_modifier=".cg")
                tl.atomic_xchg(cnt_ptr + tile, 0)
                if Y_DESC:
                    c_desc.store([pid_m * BLOCK_M, pid_n * BLOCK_N], acc.to(c_desc.dtype))
                else:
                    _store_tile(y_ptr, acc, pid_m, pid_n, M, N, sym, syn, BLOCK_M, BLOCK_N)
        it += k_hi - k_lo


_COUNTERS: dict = {}  # device -> int32 [SPLITK_MAX_TILES], all 0 between launches


def _tile_counters(device: torch.device) -> torch.Tensor:
    """The split-K / stream-K arrival counters of ``device`` (zeroed once; each launch leaves them at 0).

    Calls on one device share them, so split-K launches must be ordered (one stream, or streams
    that wait on each other). First needed inside a CUDA-graph capture, a zeroed buffer is made
    per call instead (its memset is part of the graph; nothing eager could have zeroed it).
    """
    if device in _COUNTERS:
        return _COUNTERS[device]
    cnt = torch.zeros(SPLITK_MAX_TILES, dtype=torch.int32, device=device)
    if device.type != "cuda" or not torch.cuda.is_current_stream_capturing():
        _COUNTERS[device] = cnt
    return cnt


def hybrid_plan(tiles: int, k_tiles: int, slots: int) -> tuple[int, int]:
    """(DP_TILES, SPLIT) of a hybrid launch: whole waves of ``slots`` (= #SMs x programs per SM)
    tiles run data-parallel, the tiles of the last partial wave are split over K.

    The split s (1..8, at least 4 K tiles per piece) minimizes the tail's time in units of one
    full-K wave, ceil(tail * s / slots) / s, plus (s - 1) * 2 / k_tiles for the fix-up (the last
    arriver reads s - 1 fp32 partials: about 2 K-tile iterations' time each, run 6 of
    kernels/NOTES.md measured the split-K epilogue at 1-2.3 us per launch). Example (H200, 132
    SMs): Qwen2.5-7B gate_up at M = 256 in 128 x 256 tiles is 296 tiles = 2 waves + 32, 56 K tiles
    -> (264, 4): the third wave becomes a quarter wave of 128 programs (H200 run 16: 116-119 us
    against 126-128 for the plain kernel). The fix-up term is an underestimate at 128 x 256 tiles:
    Llama-3.1-8B gate_up's plan (132, 4) ran 131 us against 98 data-parallel (runs 16-17,
    kernels/NOTES.md). The tuner times every candidate, so a wrong plan only loses its candidate."""
    if tiles <= 0 or slots <= 0:
        return max(tiles, 0), 1
    tail = tiles % slots
    if tail == 0:
        return tiles, 1
    best_s, best_cost = 1, 1.0
    for s in range(2, min(8, max(1, k_tiles // 4)) + 1):
        cost = -(-tail * s // slots) / s + (s - 1) * 2.0 / k_tiles
        if cost < best_cost - 1e-9:
            best_s, best_cost = s, cost
    return (tiles - tail, best_s) if best_s > 1 else (tiles, 1)


def _y_desc_ok(y) -> bool:
    """y can be stored through a TMA descriptor (row-major, 16-byte aligned base and row stride)."""
    return y.stride(1) == 1 and (y.stride(0) * y.element_size()) % 16 == 0 and y.data_ptr() % 16 == 0


# Data-parallel part of a hybrid launch over more than one wave: persistent programs in a flattened
# loop. H200 session 5 (alternated A/B, tune_gemm): 128 x 128 tiles 4096 x 3584 x 3584 173.8/171.4 us
# vs 180.9/179.4 one tile per program, 128 x 256 4096 x 4608 x 3584 181.8/181.9 vs 187.2/187.3.
HYBRID_PERSISTENT = True
# The split-K latency chain (H200 session 5, run 24: 4 variants alternated twice, tune_gemm): the
# counter re-armed by a plain store instead of an acq_rel exchange saves 0.4-0.9 us per launch
# (128x128x64 split 2: 7.9 vs 8.6 us; 256x4096x4096: 20.8 vs 21.4); the peek at the counter before
# storing a partial costs one more L2 round trip and rarely finds the others in (pieces of a tile
# run side by side): off, 0.2-1.5 us less (1024x4608x3584 split 2: 78.5 vs 80.2 us). Tests flip both.
SPLITK_PEEK = False
RESET_STORE = True
FIX_ACC_MAX_REGS = 64  # fp32 accumulator registers per thread up to which the fix-up adds into it


def fixup_mode(cfg) -> str:
    """The split-K fix-up of a ("splitk" | "hybrid", arg, tma[, fix]) config: ``fix`` when given
    ("acc": the last arriver adds the other partials into its register accumulator; "rows": it sums
    all partials in row chunks), else "acc" for TMA tiles whose fp32 accumulator takes at most
    FIX_ACC_MAX_REGS registers per thread (128 x 128 on 8 warps with 4 stages, 64 x 128 on 4 warps)
    and "rows" otherwise: with a second 128 x 256 (or 4-warp 128 x 128) tile in registers ptxas
    spills 136-144 bytes per thread (sm_90a, triton 3.6)."""
    if len(cfg) > 9:
        check(cfg[9] in ("acc", "rows"), f"split-K fix-up must be 'acc' or 'rows', got {cfg[9]!r}.")
        return cfg[9]
    bm, bn, nw, ns, tma = cfg[0], cfg[1], cfg[4], cfg[5], cfg[8]
    # a 128 x 128 tile stores y through TMA in this mode (_split_piece); its 32 KiB staging buffer
    # would cost the 3-stage config (98 KB of shared memory, ptxas sm_90a) its second program per SM
    two_per_sm = bm * bn >= 16384 and ns < 4
    return "acc" if tma and bm * bn // (32 * nw) <= FIX_ACC_MAX_REGS and not two_per_sm else "rows"


def _launch_splitk(x, w, y, cfg):
    """One launch of the split-K kernel for a ("splitk", SPLIT, tma[, fix]) config (every tile split)
    or a ("hybrid", programs per SM, tma[, fix]) config (:func:`hybrid_plan`; ``fix``: see
    :func:`fixup_mode`); fp32 workspace of #split tiles * SPLIT * BLOCK_M * BLOCK_N * 4 bytes from
    the caching allocator."""
    bm, bn, bk, gm, nw, ns, kind, arg, tma = cfg[:9]
    M, K = x.shape
    N = w.shape[0]
    tiles = triton.cdiv(M, bm) * triton.cdiv(N, bn)
    slots = arg * _num_sms(x.device) if kind == "hybrid" else 0
    if kind == "hybrid":
        dp_tiles, split = hybrid_plan(tiles, triton.cdiv(K, bk), slots)
    else:
        dp_tiles, split = (tiles, 1) if arg == 1 else (0, arg)
    # more than one wave of data-parallel tiles: persistent programs (one per slot) walk them in a
    # flattened loop, so one tile's epilogue overlaps the next tile's first loads (gemm_tma.py)
    persistent = HYBRID_PERSISTENT and dp_tiles > slots > 0
    dp_progs = slots if persistent else dp_tiles
    check(split == 1 or tiles - dp_tiles <= SPLITK_MAX_TILES,
          f"split-K needs <= {SPLITK_MAX_TILES} split output tiles, got {tiles - dp_tiles}.")
    ws = torch.empty(max(1, (tiles - dp_tiles) * split * bm * bn) if split > 1 else 1,
                     dtype=torch.float32, device=x.device)
    a, b = (TensorDescriptor.from_tensor(x, [bm, bk]), TensorDescriptor.from_tensor(w, [bn, bk])) if tma else (x, w)
    y_desc = tma and _y_desc_ok(y)
    c = TensorDescriptor.from_tensor(y, [bm, bn]) if y_desc else y
    _gemm_splitk_kernel[(dp_progs + (tiles - dp_tiles) * split,)](
        a, b, c, x, w, y, ws, _tile_counters(x.device), M, N, K, dp_tiles, dp_progs, split, x.stride(0), x.stride(1),
        w.stride(0), w.stride(1), y.stride(0), y.stride(1), BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=gm,
        EVEN_K=(K % bk == 0), TMA=tma, Y_DESC=y_desc, FIX_ROWS=min(bm, max(1, 8192 // bn)),
        HAS_DP=dp_tiles > 0, HAS_SPLIT=dp_tiles < tiles, FIX_ACC=fixup_mode(cfg) == "acc", PEEK=SPLITK_PEEK,
        DP_FLATTEN=persistent, RESET_STORE=RESET_STORE, num_warps=nw, num_stages=ns)


_NUM_SMS: dict = {}
STREAMK_PEEK = True  # tests switch it off to force the store-then-arrive path of every contributor


def _num_sms(device: torch.device) -> int:
    """Streaming multiprocessors of ``device`` (4 in the CPU interpreter)."""
    if device.type != "cuda":
        return 4
    idx = device.index if device.index is not None else torch.cuda.current_device()
    if idx not in _NUM_SMS:
        _NUM_SMS[idx] = torch.cuda.get_device_properties(idx).multi_processor_count
    return _NUM_SMS[idx]


def streamk_grid(M: int, N: int, K: int, cfg, sms: int) -> tuple[int, int]:
    """(programs, iterations per program) of a stream-K config: the #tiles x #K tiles iterations
    in equal contiguous ranges over programs-per-SM x ``sms`` programs (fewer if the ranges would
    leave some empty)."""
    bm, bn, bk, _, _, _, _, per_sm, _ = cfg
    total = triton.cdiv(M, bm) * triton.cdiv(N, bn) * triton.cdiv(K, bk)
    ipp = triton.cdiv(total, max(1, per_sm * sms))
    return triton.cdiv(total, ipp), ipp


def _launch_streamk(x, w, y, cfg):
    """One launch of the stream-K kernel for a ("streamk", programs per SM, tma) config; fp32
    workspace of 2 slots per program (2 * P * BLOCK_M * BLOCK_N * 4 bytes, 35 MB at 132 x 256 x 128)."""
    bm, bn, bk, gm, nw, ns, _, _, tma = cfg
    M, K = x.shape
    N = w.shape[0]
    tiles = triton.cdiv(M, bm) * triton.cdiv(N, bn)
    check(tiles <= SPLITK_MAX_TILES, f"stream-K needs <= {SPLITK_MAX_TILES} output tiles, got {tiles}.")
    progs, ipp = streamk_grid(M, N, K, cfg, _num_sms(x.device))
    ws = torch.empty(2 * progs * bm * bn, dtype=torch.float32, device=x.device)
    a, b = (TensorDescriptor.from_tensor(x, [bm, bk]), TensorDescriptor.from_tensor(w, [bn, bk])) if tma else (x, w)
    y_desc = tma and _y_desc_ok(y)
    c = TensorDescriptor.from_tensor(y, [bm, bn]) if y_desc else y
    _gemm_streamk_kernel[(progs,)](
        x, w, a, b, c, y, ws, _tile_counters(x.device), M, N, K, ipp, x.stride(0), x.stride(1), w.stride(0),
        w.stride(1), y.stride(0), y.stride(1), BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=gm,
        EVEN_K=(K % bk == 0), TMA=tma, Y_DESC=y_desc, PEEK=STREAMK_PEEK, num_warps=nw, num_stages=ns)
