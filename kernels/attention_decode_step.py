"""The online-softmax step of decode attention, shared by the grid kernel (:mod:`.attention_decode`)
and the persistent flat kernel (:mod:`.attention_decode_split`).

One step folds a tile of N keys into the running state of R query rows (FlashAttention's online
softmax, Dao et al. 2022; base-2 exponentials with log2(e) folded into the score scale, as in
FlashAttention-2): m = running max, l = running sum of exp2(s - m), acc = running sum of
exp2(s - m) v. A key counts when ``inb`` (inside the loaded range) and ``kn <= pos`` (causal
position of the row's query token; implies kn < kv_len). ``SCALED``: multiply the scores by
``qk_scale`` here (the flat kernel keeps q unscaled); otherwise q comes pre-scaled.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def update_rows(q, k, v, kn, inb, pos, m_i, l_i, acc, qk_scale, SCALED: tl.constexpr):
    """Online-softmax step with query rows as the MMA's M: q [R, D], k/v [N, D], kn/inb [N],
    pos/m_i/l_i [R], acc [R, D] fp32. Returns the new (m_i, l_i, acc)."""
    qk = tl.dot(q, tl.trans(k))
    if SCALED:
        qk = qk * qk_scale
    qk = tl.where(inb[None, :] & (kn[None, :] <= pos[:, None]), qk, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(qk, 1))
    m_sub = tl.where(m_new == float("-inf"), 0.0, m_new)
    p = tl.exp2(qk - m_sub[:, None])
    alpha = tl.exp2(m_i - m_sub)
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None] + tl.dot(p.to(k.dtype), v).to(tl.float32)
    return m_new, l_i, acc


@triton.jit
def update_keys(qt, k, v, kn, inb, pos, m_i, l_i, acct, qk_scale, SCALED: tl.constexpr):
    """The same step transposed (swap-AB): S^T = K Q^T, O^T += V^T P^T. Keys are the MMA's M rows
    and the R query rows its N columns (an n8 MMA needs R >= 8, not 16 as rows):
    qt [D, R], k/v [N, D], acct [D, R] fp32."""
    st = tl.dot(k, qt)
    if SCALED:
        st = st * qk_scale
    st = tl.where(inb[:, None] & (kn[:, None] <= pos[None, :]), st, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(st, 0))
    m_sub = tl.where(m_new == float("-inf"), 0.0, m_new)
    p = tl.exp2(st - m_sub[None, :])
    alpha = tl.exp2(m_i - m_sub)
    l_i = l_i * alpha + tl.sum(p, 0)
    acct = acct * alpha[None, :] + tl.dot(tl.trans(v), p.to(k.dtype)).to(tl.float32)
    return m_new, l_i, acct
