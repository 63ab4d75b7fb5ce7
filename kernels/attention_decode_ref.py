"""Decode attention's plain-torch side: the fp32 reference, the paged-cache gather it uses, random
benchmark inputs and the compulsory-bytes formula (the floor the decode targets are measured
against). Layouts as in attention_decode.py; re-exported there."""

from __future__ import annotations

import math

import numpy as np
import torch
import triton


def random_decode_inputs(batch: int, kv_len: int, q_heads: int, kv_heads: int, head_dim: int,
                         page: int | None = None, kv_dtype=torch.bfloat16, q_dtype=torch.bfloat16,
                         device="cuda"):
    """Random decode inputs for benchmarks: (q [B, Hq, 1, D], k, v, kv_lens int32 [B], block_table).

    Contiguous K/V [B, Hkv, L, D] when ``page`` is None, else a paged pool [B * ceil(L / page),
    page, Hkv, D] whose pages are scattered at random over the pool (block_table int32 [B, pages])."""
    q = torch.randn(batch, q_heads, 1, head_dim, dtype=q_dtype, device=device)
    lens = torch.full((batch,), kv_len, dtype=torch.int32, device=device)
    if page is None:
        shape, table = (batch, kv_heads, kv_len, head_dim), None
    else:
        pages = triton.cdiv(kv_len, page)
        shape = (batch * pages, page, kv_heads, head_dim)
        table = torch.randperm(batch * pages, device=device).view(batch, pages).int()
    k = torch.randn(shape, device=device).to(kv_dtype)
    v = torch.randn(shape, device=device).to(kv_dtype)
    return q, k, v, lens, table


def gather_paged(cache, block_table, kv_lens):
    """Contiguous [B, Hkv, S_max, D] copy of a paged cache (for references and tests)."""
    B = block_table.shape[0]
    page, Hkv, D = cache.shape[1], cache.shape[2], cache.shape[3]
    s_max = block_table.shape[1] * page
    dense = cache[block_table.long()].reshape(B, s_max, Hkv, D)
    return dense.permute(0, 2, 1, 3)


def attention_decode_ref(q, k, v, kv_lens=None, block_table=None, sm_scale=None, k_scale=1.0, v_scale=1.0):
    """fp32 reference (expands K/V per query head and masks by kv_lens)."""
    if block_table is not None:
        k, v = gather_paged(k, block_table, kv_lens), gather_paged(v, block_table, kv_lens)
    B, Hq, Lq, D = q.shape
    S = k.shape[2]
    g = Hq // k.shape[1]
    kf = k.float().repeat_interleave(g, dim=1) * k_scale
    vf = v.float().repeat_interleave(g, dim=1) * v_scale
    lens = torch.full((B,), S, device=q.device) if kv_lens is None else kv_lens.long()
    scale = (1.0 / math.sqrt(D)) if sm_scale is None else sm_scale
    s = (q.float() @ kf.transpose(-1, -2)) * scale
    pos = lens[:, None] - Lq + torch.arange(Lq, device=q.device)[None, :]  # [B, Lq]
    j = torch.arange(S, device=q.device)
    mask = j[None, None, :] <= pos[:, :, None]  # [B, Lq, S]
    s = s.masked_fill(~mask[:, None], float("-inf"))
    return torch.softmax(s, dim=-1) @ vf


def attention_decode_bytes(batch, num_q_heads, num_kv_heads, q_len, kv_len, head_dim,
                           act_bytes_per_elem, kv_bytes_per_elem, page_size=None):
    """Compulsory bytes of decode attention: llmperf's attention_io_bytes plus, when paged, the
    block-table entries (4 bytes per page per sequence). kv_len may be an array (summed here)."""
    from ._formulas import attention_io_bytes

    kv = np.asarray(kv_len, dtype=float)
    base = attention_io_bytes(1, num_q_heads, num_kv_heads, q_len, kv, head_dim, head_dim,
                              act_bytes_per_elem, kv_bytes_per_elem)
    total = float(np.sum(base)) if kv.ndim else float(base) * batch
    if page_size:
        total += 4.0 * float(np.sum(np.ceil(kv / page_size))) * (1 if kv.ndim else batch)
    return total
