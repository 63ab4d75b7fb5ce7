"""Decode attention (flash-decoding, contiguous + paged, bf16/fp16/fp8 KV) against its reference;
prefill has its own file, test_attention_prefill.py.

CPU (interpreter): fp16, small ragged shapes, GQA ratios 1/4/8, q_len > 1, paged block sizes
16/32/64. The GPU tests (realistic shapes) are in test_attention_decode_gpu.py.
"""

import importlib

import pytest
import torch

from llmperf_kernels import attention_decode, attention_decode_ref
from llmperf_kernels.attention_decode import DecodeConfig, attention_decode_bytes, default_splits
from llmperf_kernels._common import sm_count

ad = importlib.import_module("llmperf_kernels.attention_decode")  # the module (the package exports the function)

from kernel_testutil import assert_close, poisoned, run_decode

F16 = torch.float16


@pytest.mark.parametrize("Hq,Hkv", [(2, 2), (8, 2), (8, 1)])
@pytest.mark.parametrize("Lq", [1, 3])
@pytest.mark.parametrize("splits", [1, 3])
def test_decode_contiguous(device, Hq, Hkv, Lq, splits):
    run_decode(device, F16, 2, Hq, Hkv, Lq, [50, 23], 32, splits=splits)


@pytest.mark.parametrize("page", [16, 32, 64])
@pytest.mark.parametrize("Lq", [1, 4])
def test_decode_paged(device, page, Lq):
    run_decode(device, F16, 3, 8, 2, Lq, [70, 5, 129], 64, page=page, splits=2)


def test_decode_fp8_kv(device):
    run_decode(device, F16, 2, 4, 1, 1, [40, 33], 64, kv_dtype=torch.float8_e4m3fn, splits=2)
    run_decode(device, F16, 2, 4, 1, 2, [40, 33], 64, page=16, kv_dtype=torch.float8_e4m3fn)


# v4: forced configs (split count, tile, combine mode), the split heuristic, the fused combine.
# CPU tiles are 16/32/64 tokens, one stage; "fused" = last-arriving program merges the slices;
# "pdl" (v5) is a plain second launch in the interpreter (programmatic dependent launch on the GPU).
@pytest.mark.parametrize("combine", ["fused", "kernel", "pdl"])
@pytest.mark.parametrize("splits,lens", [
    (64, [50, 23]),      # more splits than 16-token tiles: effective count = ceil(50 / 16) = 4
    (3, [50, 3]),        # a sequence shorter than one slice: its later slices are empty
    (7, [113, 64]),      # ragged, slice = 32 tokens; B=1 row ends exactly on a tile
    (2, [17, 16]),
])
@pytest.mark.parametrize("Hq,Hkv,Lq", [(4, 4, 1), (8, 2, 3), (8, 1, 2)])
def test_decode_forced_splits(device, combine, splits, lens, Hq, Hkv, Lq):
    cfg = DecodeConfig(16, 4, 1, splits, combine)
    run_decode(device, F16, 2, Hq, Hkv, Lq, lens, 32, config=cfg)


# v5: swap-AB (keys as the MMA's rows, query rows padded to 8): GQA 1/4/8, Lq 1/3, ragged lengths,
# contiguous + paged 16/32/64, fp16 + fp8 KV, one slice and several.
@pytest.mark.parametrize("Hq,Hkv,Lq", [(4, 4, 1), (8, 2, 1), (8, 2, 3), (8, 1, 1), (32, 4, 3)])
@pytest.mark.parametrize("page", [None, 16, 32, 64])
@pytest.mark.parametrize("splits", [1, 3])
def test_decode_swap(device, Hq, Hkv, Lq, page, splits):
    run_decode(device, F16, 2, Hq, Hkv, Lq, [90, 41], 32, page=page, config=DecodeConfig(16, 4, 1, splits, "pdl", True))


@pytest.mark.parametrize("page", [None, 16])
@pytest.mark.parametrize("block_n", [16, 32])
def test_decode_swap_fp8(device, page, block_n):
    run_decode(device, F16, 2, 8, 2, 1, [90, 41], 64, page=page, kv_dtype=torch.float8_e4m3fn,
            config=DecodeConfig(block_n, 4, 1, 2, None, True))


@pytest.mark.parametrize("combine", ["kernel", "pdl", "fused"])
def test_decode_combine_many_splits(device, combine):
    """69 slices at D=32: the merge runs two steps of 64 (online rescaling across steps); the
    second sequence's later slices are empty (LSE -inf), a whole step of them for the second."""
    run_decode(device, F16, 2, 8, 2, 1, [1100, 300], 32, config=DecodeConfig(16, 4, 1, 100, combine))


@pytest.mark.parametrize("page,block_n", [(16, 16), (16, 32), (16, 64), (32, 16), (32, 64), (64, 32), (64, 64)])
@pytest.mark.parametrize("combine", ["fused", "kernel"])
def test_decode_paged_tile_vs_page(device, page, block_n, combine):
    """block_n <= page: one scalar block-table load per tile; block_n > page: per-token gather."""
    run_decode(device, F16, 3, 8, 2, 2, [150, 5, 129], 32, page=page, config=(block_n, 4, 1, 3, combine))


@pytest.mark.parametrize("page", [None, 16, 64])
@pytest.mark.parametrize("cfg", [(32, 4, 1, 4, "fused"), (64, 4, 1, 2, "kernel"), (16, 4, 1, 3, None), (16, 4, 1, 1, None)])
def test_decode_fp8_kv_configs(device, page, cfg):
    run_decode(device, F16, 2, 8, 2, 1, [90, 41], 64, page=page, kv_dtype=torch.float8_e4m3fn, config=cfg)


# v6: fp8 converts pinned to the load layout (cvt 1 = V, 2 = K and V; the interpreter runs the
# plain convert, so on CPU this checks the plumbing) and the fused merge over a group's rows.
@pytest.mark.parametrize("page", [None, 16])
@pytest.mark.parametrize("cvt,swap,splits,combine", [(1, False, 1, None), (2, False, 3, "fused"), (2, True, 2, "kernel")])
def test_decode_fp8_cvt(device, page, cvt, swap, splits, combine):
    run_decode(device, F16, 2, 8, 2, 1, [90, 41], 64, page=page, kv_dtype=torch.float8_e4m3fn,
            config=DecodeConfig(32, 4, 1, splits, combine, swap, cvt))


@pytest.mark.parametrize("combine", ["fused", "kernel"])
def test_decode_fused_row_blocks(device, combine):
    """G*Lq = 64 rows at D=128: the fused merge walks two blocks of 32 rows (rows_tile), 5 slices."""
    assert ad.rows_tile(64, 5, 128) == (32, 2) and ad.rows_tile(4, 33, 128) == (4, 16)
    run_decode(device, F16, 1, 32, 1, 2, [150], 128, config=DecodeConfig(32, 4, 1, 5, combine))


# v8: the fused merge of attention_decode_combine._merge_group (chunks of SB splits loaded before any
# use, clamped indices, [T, VEC] tiles). On CPU: 4 "SMs", so per_sm >= 4 and fused_tile caps a chunk
# at 12 splits: 100 slices -> 9 chunks (the last with 8 clamped splits); G*Lq 1..64 rows (VEC 1..4,
# several row blocks), ragged lengths (empty slices: lse -inf), contiguous and paged.
@pytest.mark.parametrize("Hq,Hkv,Lq", [(4, 4, 1), (8, 2, 1), (8, 2, 3), (8, 1, 2), (32, 2, 4)])
@pytest.mark.parametrize("page", [None, 16])
@pytest.mark.parametrize("splits,lens", [(3, [50, 5]), (100, [1100, 300]), (7, [113, 64])])
def test_decode_fused_v8(device, Hq, Hkv, Lq, page, splits, lens):
    D = 32 if splits == 100 else 64
    run_decode(device, F16, 2, Hq, Hkv, Lq, lens, D, page=page, config=DecodeConfig(16, 4, 1, splits, "fused"))


def test_decode_fused_v8_tile():
    """fused_tile: rows x 4 values fill the threads; chunks sized by the programs each SM must hold."""
    assert ad.fused_tile(4, 32, 128, 4, 2) == (4, 32, 4)    # B1 L32k on an H200: one chunk of 32
    assert ad.fused_tile(4, 33, 128, 4, 2) == (4, 33, 4)
    assert ad.fused_tile(4, 66, 128, 4, 4) == (4, 11, 4)    # paged: 4 programs per SM -> 6 chunks
    assert ad.fused_tile(4, 32, 128, 8, 2) == (4, 16, 2)    # 8 warps: 2 values per thread
    assert ad.fused_tile(1, 5, 128, 4, 3) == (1, 5, 1)      # one row: 1 value per thread
    assert ad.fused_tile(64, 5, 128, 4, 3) == (4, 5, 4)     # 16 blocks of 4 rows


@pytest.mark.parametrize("merge", [1, 2])
def test_decode_fused_repeat_and_order(device, monkeypatch, merge):
    """Repeated fused calls on the same inputs (counters re-armed after each; v8 = 2 and v6 = 1
    merges) give identical outputs, close to the second-launch merge."""
    monkeypatch.setattr(ad, "_FUSED_MERGE", merge)
    torch.manual_seed(1)
    q = torch.randn(2, 8, 2, 32, dtype=F16, device=device)
    k, v = torch.randn(2, 2, 150, 32, dtype=F16, device=device), torch.randn(2, 2, 150, 32, dtype=F16, device=device)
    lens = torch.tensor([150, 37], dtype=torch.int32, device=device)
    outs = [attention_decode(q, k, v, lens, out=poisoned((2, 8, 2, 32), F16, device),
                             config=DecodeConfig(16, 4, 1, 9, "fused")) for _ in range(3)]
    assert all(torch.equal(outs[0], o) for o in outs[1:])
    assert all(int(c.abs().sum()) == 0 for c in ad._COUNTERS.values())
    ref = attention_decode(q, k, v, lens, config=DecodeConfig(16, 4, 1, 9, "kernel"))
    assert_close(outs[0], ref.float(), F16)
    assert_close(outs[0], attention_decode_ref(q, k, v, lens), F16)


def test_decode_default_splits_heuristic():
    # H200 numbers (132 SMs, Hkv=8, D=128): 2 (contiguous) / 4 (paged) programs per SM when
    # B*Hkv < 0.75 * SMs, slices >= 256 KiB of K+V
    assert default_splits(8, 131072, 128, 2, 132) == 33              # B1: ceil(264 / 8)
    assert default_splits(8, 131072, 128, 2, 132, paged=True) == 66  # paged: ceil(528 / 8)
    assert default_splits(8, 8192, 128, 2, 132) == 16                # capped by 512-token slices
    assert default_splits(8, 8192, 128, 1, 132) == 8                 # fp8: 1024-token slices
    assert default_splits(64, 4096, 128, 2, 132) == 5                # B8: ceil(264 / 64)
    assert default_splits(96, 4096, 128, 2, 132) == 3                # 96 < 0.75 * 132 = 99
    assert default_splits(128, 4096, 128, 2, 132) == 1               # B16: one wave already
    assert default_splits(8, 100, 128, 2, 132) == 1                  # shorter than one slice
    assert default_splits(1, 10**7, 128, 2, 100000) == 256           # capped


def test_decode_heuristic_path_splits(device, monkeypatch):
    """Default (no forced config) path with the heuristic choosing several splits + fused merge,
    called twice: the arrival counters must be re-armed (all zero) after every call."""
    monkeypatch.setattr(ad, "_MIN_SLICE_BYTES", 1024)  # 16-token slices at D=32 fp16
    assert default_splits(2, 70, 32, 2, sm_count(device)) > 1
    run_decode(device, F16, 2, 4, 1, 1, [70, 33], 32)  # default: second-launch merge
    for _ in range(2):
        run_decode(device, F16, 2, 4, 1, 1, [70, 33], 32, config=(16, 4, 1, None, "fused"))
    assert ad._COUNTERS and all(int(c.abs().sum()) == 0 for c in ad._COUNTERS.values())


# v7: persistent flat split kernel (attention_decode_split): P = persist x SMs programs (4 "SMs" on
# CPU) over the flattened (sequence, KV head, tile) space, program ranges crossing head boundaries,
# a per-row count of partials; ragged lengths (masked loads), EAGER loads at B=1, paged layouts with
# tiles inside / across pages, GQA 1/4/8, q_len > 1, swap-AB, fp8 KV.
sp = importlib.import_module("llmperf_kernels.attention_decode_split")


@pytest.mark.parametrize("Hq,Hkv,Lq", [(4, 4, 1), (8, 2, 3), (8, 1, 1), (8, 1, 2)])
@pytest.mark.parametrize("page,block_n", [(None, 16), (None, 32), (16, 16), (16, 32), (32, 16)])
@pytest.mark.parametrize("persist", [1, 3])
def test_decode_persist(device, Hq, Hkv, Lq, page, block_n, persist):
    cfg = DecodeConfig(block_n, 4, 1, None, "pdl" if persist == 3 else "kernel", persist=persist)
    run_decode(device, F16, 2, Hq, Hkv, Lq, [90, 41], 32, page=page, config=cfg)  # loads masked by kv_len
    run_decode(device, F16, 1, Hq, Hkv, Lq, [77], 32, page=page, config=cfg)       # contiguous: EAGER


@pytest.mark.parametrize("page", [None, 16])
@pytest.mark.parametrize("kv_dtype,swap", [(None, True), (torch.float8_e4m3fn, False), (torch.float8_e4m3fn, True)])
def test_decode_persist_swap_fp8(device, page, kv_dtype, swap):
    cfg = DecodeConfig(16, 4, 1, None, None, swap, 0, 3)
    run_decode(device, F16, 2, 8, 2, 1, [90, 41], 64, page=page, kv_dtype=kv_dtype, config=cfg)
    run_decode(device, F16, 1, 8, 2, 2, [50], 64, page=page, kv_dtype=kv_dtype, config=cfg)


def test_decode_persist_eager_ragged(device, monkeypatch):
    """EAGER at B > 1: loads bounded by max_kv_len only (dead tokens of the short sequence are
    read and masked out of the scores); repeated calls reuse nothing stale."""
    monkeypatch.setattr(sp, "_EAGER_MAX_BATCH", 8)
    for _ in range(2):
        run_decode(device, F16, 3, 8, 2, 1, [90, 41, 3], 32, config=DecodeConfig(16, 4, 1, None, None, persist=2))


def test_decode_persist_many_partials(device):
    """One tile per program: a head's 69 tiles give 69 partials, merged in two steps of 64; the
    second sequence's later partials are empty (-inf log-sum-exp)."""
    cfg = DecodeConfig(16, 4, 1, None, "kernel", persist=64)
    run_decode(device, F16, 2, 4, 1, 1, [1100, 300], 32, config=cfg)


def test_decode_persist_slots_bound():
    """flat_slots bounds the partials of every (sequence, KV head) (brute force over partitions)."""
    for bh in (1, 2, 3, 8, 13):
        for tph in (1, 2, 3, 7, 16, 33):
            T = bh * tph
            for P in range(1, T + 1):
                owner = [((x + 1) * P - 1) // T for x in range(T)]
                assert all(p * T // P <= x < (p + 1) * T // P for x, p in enumerate(owner))
                n = max(owner[h * tph + tph - 1] - owner[h * tph] + 1 for h in range(bh))
                assert n <= sp.flat_slots(tph, T, P), (bh, tph, P)


def test_decode_persist_rejects_fused():
    q = torch.randn(1, 4, 1, 32, dtype=F16)
    kv = torch.randn(1, 2, 8, 32, dtype=F16)
    with pytest.raises(ValueError, match="persist"):
        attention_decode(q, kv, kv, config=DecodeConfig(16, 4, 1, None, "fused", persist=1))


def test_decode_rejects_bad_config():
    q = torch.randn(1, 4, 1, 32, dtype=F16)
    kv = torch.randn(1, 2, 8, 32, dtype=F16)
    with pytest.raises(ValueError, match="combine"):
        attention_decode(q, kv, kv, config=(16, 4, 1, 2, "atomic"))
    with pytest.raises(ValueError, match="combine"):
        attention_decode(q, kv, kv, config=(16, 4, 1, 2, "PDL"))
    with pytest.raises(ValueError, match="block_n"):
        attention_decode(q, kv, kv, config=(24, 4, 1))
    with pytest.raises(ValueError, match="num_splits"):
        attention_decode(q, kv, kv, num_splits=0)
    with pytest.raises(ValueError, match="cvt"):
        attention_decode(q, kv, kv, config=DecodeConfig(16, 4, 1, 1, None, False, 3))


def test_decode_rejects_bad_input():
    q = torch.randn(1, 4, 1, 32, dtype=F16)
    kv = torch.randn(1, 2, 8, 32, dtype=F16)
    with pytest.raises(ValueError, match="kv_len"):
        attention_decode(q, kv, kv, torch.tensor([9], dtype=torch.int32))
    with pytest.raises(ValueError, match="kv_lens"):
        attention_decode(q, torch.randn(4, 16, 2, 32, dtype=F16), torch.randn(4, 16, 2, 32, dtype=F16),
                         block_table=torch.zeros(1, 1, dtype=torch.int32))
    with pytest.raises(ValueError, match="head_dim"):
        attention_decode(q, torch.randn(1, 2, 8, 16, dtype=F16), torch.randn(1, 2, 8, 16, dtype=F16))


def test_decode_bytes_formula():
    # B=2, Hq=32, Hkv=8, q_len=1, kv=1000, D=128, bf16: Q + O = 2*2*32*128*2, KV = 2*1000*8*256*2
    want = 2 * 2 * 32 * 128 * 2 + 2 * 1000 * 8 * 256 * 2
    assert attention_decode_bytes(2, 32, 8, 1, 1000, 128, 2, 2) == want
    # paged with block 16 adds 4 bytes per page: ceil(1000/16) = 63 pages per sequence
    assert attention_decode_bytes(2, 32, 8, 1, 1000, 128, 2, 2, page_size=16) == want + 2 * 63 * 4
    # per-sequence lengths are summed
    assert attention_decode_bytes(2, 32, 8, 1, [1000, 1000], 128, 2, 2) == want


def test_decode_reports_its_launch_count():
    """The calibration charges the launch floor per kernel: a split call launches the partial and
    the combine kernel (2), a single-slice call one."""
    from llmperf_kernels.attention_decode import LAST_LAUNCH, attention_decode

    h = torch.float16
    q = torch.randn(1, 4, 1, 16, dtype=h)
    k, v = torch.randn(1, 2, 200, 16, dtype=h), torch.randn(1, 2, 200, 16, dtype=h)
    attention_decode(q, k, v, num_splits=3)
    assert LAST_LAUNCH["kernels"] == 2
    attention_decode(q, k, v, num_splits=1)
    assert LAST_LAUNCH["kernels"] == 1


def test_random_decode_inputs_layouts():
    from llmperf_kernels.attention_decode import random_decode_inputs

    q, k, v, lens, bt = random_decode_inputs(2, 40, 4, 2, 16, None, torch.float16, torch.float16, "cpu")
    assert q.shape == (2, 4, 1, 16) and k.shape == v.shape == (2, 2, 40, 16) and bt is None
    assert lens.tolist() == [40, 40] and k.abs().sum() > 0
    q, k, v, lens, bt = random_decode_inputs(2, 40, 4, 2, 16, 16, torch.float16, torch.float16, "cpu")
    assert k.shape == (6, 16, 2, 16) and bt.shape == (2, 3)
    assert sorted(bt.flatten().tolist()) == list(range(6))  # every page used once
    out = attention_decode(q, k, v, lens, bt)
    assert_close(out, attention_decode_ref(q, k, v, lens, bt), torch.float16)
