"""A compact pure-PyTorch reference decoder built from an llmperf ``ModelSpec`` (for end-to-end timing).

What: the forward pass of a Llama-family decoder (Llama-2/3.x, Mistral, Qwen2/2.5 with q/k/v bias,
Qwen3 with per-head q/k RMSNorm, Qwen3-MoE) with RANDOM weights (normal, std 0.02; norm weights
1 + 0.02 N(0,1)), run the way a lean serving engine runs it:

* one fused QKV GEMM and one fused gate_up GEMM per layer (``F.linear``, cuBLAS);
* RMSNorm and RoPE in plain torch ops (HF's formulation: RMSNorm in fp32, cast back, times weight;
  RoPE by ``rotate_half``);
* attention through ``F.scaled_dot_product_attention`` with ``enable_gqa=True`` -- prefill
  ``is_causal=True`` over the prompt's fresh K/V; decode q_len 1 against the static cache slice
  ``[:, :, :pos+1]`` (no mask needed: every cached position is visible);
* a STATIC preallocated KV cache, one ``[B, Hkv, S_max, D]`` K and V tensor per layer, written in
  place (slice assignment, one copy kernel each);
* logits for the last token only (``lm_head`` on ``[B, H]``), no sampling;
* MoE layers (Qwen3-MoE): router GEMM -> fp32 softmax -> top-k -> renormalised weights
  (``norm_topk_prob``) -> experts. ``moe_impl="grouped_mm"`` sorts the (token, expert) pairs by
  expert (``argsort``), gathers the rows, counts rows per expert (``scatter_add_``) and runs the
  experts' gate_up and down projections as two ``torch._grouped_mm`` calls (CUTLASS grouped GEMM
  on sm90) with device-side offsets, then un-permutes and sums the k weighted outputs. No step of
  it reads a value on the host, so a decode step with MoE is CUDA-graph capturable.
  ``moe_impl="dense"`` computes every expert on every token and weights the results by a sparse
  gate matrix (the same function, E/k times the FLOPs): the correctness reference for tests.

The decode step has static shapes for a given (batch, pos), so :func:`capture_decode` captures it
in a CUDA graph (one graph per (batch, context) point) and the caller times ``graph.replay()``.

Not supported (raises): MLA, sliding-window layers, LayerNorm, non-gated MLPs, shared experts,
biases other than q/k/v. Source of the layer math: the HF transformers Llama/Qwen2/Qwen3/Qwen3-MoE
modelling code (``modeling_llama.py``, ``modeling_qwen3_moe.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

INIT_STD = 0.02


def check_supported(spec) -> None:
    """Raise NotImplementedError for a spec this reference does not model."""
    bad = []
    if spec.attention != "gqa":
        bad.append("MLA attention")
    if "sliding" in spec.layer_types:
        bad.append("sliding-window layers")
    if spec.norm != "rmsnorm":
        bad.append(f"{spec.norm}")
    if not spec.gated_mlp or spec.hidden_act != "silu":
        bad.append("non-SiLU-gated MLP")
    if spec.shared_expert_intermediate_size or spec.router_score_bias:
        bad.append("shared experts / router score bias")
    if spec.o_bias or spec.mlp_bias or spec.parallel_attention or spec.learned_position_embeddings:
        bad.append("o/mlp bias, parallel attention or learned positions")
    if spec.head_dim != spec.v_head_dim:
        bad.append("v_head_dim != head_dim")
    if bad:
        raise NotImplementedError(f"{spec.name}: reference decoder does not model {', '.join(bad)}")


def grouped_mm_available(device) -> bool:
    """True when ``torch._grouped_mm`` runs in bf16 (CUDA) or fp32 (CPU) on ``device``."""
    if not hasattr(torch, "_grouped_mm"):
        return False
    dt = torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    try:
        a = torch.randn(24, 32, device=device, dtype=dt)
        b = torch.randn(3, 16, 32, device=device, dtype=dt)
        offs = torch.tensor([5, 5, 24], device=device, dtype=torch.int32)
        y = torch._grouped_mm(a, b.transpose(-2, -1), offs=offs)
        ref = torch.cat([a[:5] @ b[0].T, a[5:24] @ b[2].T]).float()
        return bool(torch.allclose(y.float(), ref, rtol=2e-2, atol=2e-2 * ref.abs().max().item()))
    except Exception:  # noqa: BLE001 - not built for this device / dtype
        return False


def rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    """HF LlamaRMSNorm: normalise in fp32, cast back, multiply by the weight."""
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return w * xf.to(x.dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: [B, T, h, D]; cos/sin: [T, D] (broadcast over batch and heads)."""
    cos, sin = cos[:, None, :], sin[:, None, :]
    return x * cos + rotate_half(x) * sin


def route_topk(logits: torch.Tensor, top_k: int):
    """Qwen3-MoE routing: logits [N, E] -> (weights [N, k] in the logits' dtype, experts [N, k]
    int64): fp32 softmax, top-k, renormalised over the k chosen (``norm_topk_prob``)."""
    probs = logits.float().softmax(dim=-1)
    topw, topi = probs.topk(top_k, dim=-1)
    topw = topw / topw.sum(dim=-1, keepdim=True)
    return topw.to(logits.dtype), topi


def sort_by_expert(topi: torch.Tensor, experts: int):
    """Group the (token, slot) pairs of ``topi`` [N, k] by expert, on the device (no host sync):
    (order [N*k] pair index in expert order, rows [N*k] token of each sorted pair, offs [E] int32
    end of each expert's group -- the ``offs`` of ``torch._grouped_mm``)."""
    flat = topi.reshape(-1)
    order = flat.argsort(stable=True)
    counts = torch.zeros(experts, device=topi.device, dtype=torch.int64).scatter_add_(0, flat, torch.ones_like(flat))
    return order, order // topi.shape[1], counts.cumsum(0).to(torch.int32)


def unpermute(y: torch.Tensor, order: torch.Tensor, topw: torch.Tensor) -> torch.Tensor:
    """Expert outputs y [N*k, H] in expert order -> [N, k, H] in (token, slot) order, each row
    times its routing weight (topw [N, k]): an index_copy and a broadcast multiply."""
    n, k = topw.shape
    return torch.empty_like(y).index_copy_(0, order, y).view(n, k, y.shape[-1]) * topw.unsqueeze(-1)


class ReferenceDecoder:
    """Random-weight decoder for one ModelSpec. ``prefill``/``decode`` return last-token logits."""

    def __init__(self, spec, device="cuda", dtype=torch.bfloat16, *, moe_impl: str | None = None,
                 seed: int = 0, eps: float = 1e-6, rope_theta: float = 10000.0, max_positions: int = 4096):
        check_supported(spec)
        self.spec, self.device, self.dtype, self.eps = spec, torch.device(device), dtype, eps
        s = spec
        self.L, self.H, self.Hq, self.Hkv, self.D = s.num_layers, s.hidden_size, s.num_attention_heads, s.num_kv_heads, s.head_dim
        self.V, self.E, self.topk = s.vocab_size, s.num_experts, s.experts_per_token
        if moe_impl is None:
            moe_impl = "grouped_mm" if (s.is_moe and grouped_mm_available(self.device)) else "dense"
        if moe_impl not in ("grouped_mm", "dense"):
            raise ValueError(f"moe_impl must be grouped_mm or dense, not {moe_impl}")
        self.moe_impl = moe_impl
        self.rope_theta = rope_theta
        g = torch.Generator(device=self.device).manual_seed(seed)

        def rand(*shape):
            t = torch.empty(*shape, device=self.device, dtype=dtype)
            return t.normal_(0.0, INIT_STD, generator=g)

        def norm_w(n):
            return 1.0 + rand(n)

        qkv_out = (self.Hq + 2 * self.Hkv) * self.D
        self.embed = rand(self.V, self.H)
        self.layers = []
        for i in range(self.L):
            lw = dict(ln1=norm_w(self.H), ln2=norm_w(self.H), wqkv=rand(qkv_out, self.H),
                      wo=rand(self.H, self.Hq * self.D))
            if s.qkv_bias:
                lw["bqkv"] = rand(qkv_out)
            if s.qk_norm:
                lw["q_norm"], lw["k_norm"] = norm_w(self.D), norm_w(self.D)
            if s.moe_layers[i]:
                im = s.moe_intermediate_size
                lw["router"] = rand(self.E, self.H)
                lw["w_gu"] = rand(self.E, 2 * im, self.H)   # per expert [gate; up] x H (nn.Linear layout)
                lw["w_down"] = rand(self.E, self.H, im)
            else:
                lw["w_gu"] = rand(2 * s.intermediate_size, self.H)
                lw["w_down"] = rand(self.H, s.intermediate_size)
            self.layers.append(lw)
        self.final_norm = norm_w(self.H)
        self.lm_head = self.embed if s.tie_word_embeddings else rand(self.V, self.H)
        self._rope_len = 0
        self._ensure_rope(max_positions)

    # ---- sizes -------------------------------------------------------------------------------
    def weight_bytes(self) -> int:
        seen, total = set(), 0
        for t in [self.embed, self.final_norm, self.lm_head] + [t for lw in self.layers for t in lw.values()]:
            if t.data_ptr() not in seen:
                seen.add(t.data_ptr())
                total += t.numel() * t.element_size()
        return total

    def kv_cache_bytes(self, batch: int, seq: int) -> int:
        return 2 * self.L * batch * self.Hkv * seq * self.D * torch.finfo(self.dtype).bits // 8

    def new_cache(self, batch: int, max_seq: int, fill: str = "random"):
        """Static KV cache: (k_list, v_list), each tensor [B, Hkv, max_seq, D]; random, not zeros."""
        self._ensure_rope(max_seq)
        ks, vs = [], []
        for _ in range(self.L):
            for lst in (ks, vs):
                t = torch.empty(batch, self.Hkv, max_seq, self.D, device=self.device, dtype=self.dtype)
                if fill == "random":
                    t.normal_()
                lst.append(t)
        return ks, vs

    def _ensure_rope(self, n: int):
        if n <= self._rope_len:
            return
        n = max(n, 2 * self._rope_len)
        inv = 1.0 / (self.rope_theta ** (torch.arange(0, self.D, 2, device=self.device, dtype=torch.float32) / self.D))
        f = torch.outer(torch.arange(n, device=self.device, dtype=torch.float32), inv)
        emb = torch.cat((f, f), dim=-1)
        self.cos, self.sin = emb.cos().to(self.dtype), emb.sin().to(self.dtype)
        self._rope_len = n

    # ---- layers ------------------------------------------------------------------------------
    def _attention(self, x, lw, kc, vc, start: int):
        B, T, _ = x.shape
        Hq, Hkv, D = self.Hq, self.Hkv, self.D
        qkv = F.linear(x, lw["wqkv"], lw.get("bqkv"))
        q, k, v = qkv.split([Hq * D, Hkv * D, Hkv * D], dim=-1)
        q, k, v = q.view(B, T, Hq, D), k.view(B, T, Hkv, D), v.view(B, T, Hkv, D)
        if "q_norm" in lw:
            q, k = rms_norm(q, lw["q_norm"], self.eps), rms_norm(k, lw["k_norm"], self.eps)
        cos, sin = self.cos[start:start + T], self.sin[start:start + T]
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, h, T, D]
        kc[:, :, start:start + T] = k
        vc[:, :, start:start + T] = v
        if T > 1:
            if start != 0:
                raise NotImplementedError("chunked prefill (start > 0 with T > 1) is not modelled")
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        else:
            o = F.scaled_dot_product_attention(q, kc[:, :, :start + 1], vc[:, :, :start + 1], enable_gqa=True)
        o = o.transpose(1, 2).reshape(B, T, Hq * D)
        return F.linear(o, lw["wo"])

    def _dense_mlp(self, x, lw):
        g, u = F.linear(x, lw["w_gu"]).chunk(2, dim=-1)
        return F.linear(F.silu(g) * u, lw["w_down"])

    def _moe(self, x, lw):
        shape = x.shape
        h = x.reshape(-1, self.H)
        N, k = h.shape[0], self.topk
        topw, topi = route_topk(F.linear(h, lw["router"]), k)
        if self.moe_impl == "dense":
            gates = torch.zeros(N, self.E, device=h.device, dtype=h.dtype).scatter_(1, topi, topw)
            gu = torch.einsum("nh,eoh->eno", h, lw["w_gu"])
            g, u = gu.chunk(2, dim=-1)
            y = torch.einsum("eni,ehi->enh", F.silu(g) * u, lw["w_down"])
            return torch.einsum("enh,ne->nh", y, gates).reshape(shape)
        order, rows, offs = sort_by_expert(topi, self.E)
        xs = h.index_select(0, rows)                              # gathered token rows
        g, u = torch._grouped_mm(xs, lw["w_gu"].transpose(-2, -1), offs=offs).chunk(2, dim=-1)
        y = torch._grouped_mm(F.silu(g) * u, lw["w_down"].transpose(-2, -1), offs=offs)
        return unpermute(y, order, topw).sum(dim=1).reshape(shape)  # sum over the k slots

    def _forward(self, tokens, cache, start: int):
        ks, vs = cache
        x = self.embed[tokens]                                    # [B, T, H]
        for i, lw in enumerate(self.layers):
            x = x + self._attention(rms_norm(x, lw["ln1"], self.eps), lw, ks[i], vs[i], start)
            h = rms_norm(x, lw["ln2"], self.eps)
            x = x + (self._moe(h, lw) if "router" in lw else self._dense_mlp(h, lw))
        last = rms_norm(x[:, -1], self.final_norm, self.eps)      # [B, H]: last token only
        return F.linear(last, self.lm_head)                       # [B, V]

    # ---- public steps ------------------------------------------------------------------------
    @torch.inference_mode()
    def prefill(self, tokens: torch.Tensor, cache) -> torch.Tensor:
        """tokens [B, T] -> last-token logits [B, V]; writes cache positions [0, T)."""
        return self._forward(tokens, cache, 0)

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor, cache, pos: int) -> torch.Tensor:
        """tokens [B] at position ``pos`` (pos tokens already cached) -> logits [B, V]."""
        return self._forward(tokens[:, None], cache, pos)


def capture_decode(model: ReferenceDecoder, tokens: torch.Tensor, cache, pos: int, warmup: int = 2):
    """Capture one decode step (static batch, static pos) in a CUDA graph. Returns (graph, logits)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            model.decode(tokens, cache, pos)
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = model.decode(tokens, cache, pos)
    torch.cuda.synchronize()
    return graph, out


def prefill_activation_bytes(spec, tokens: int, bytes_per: int = 2) -> int:
    """Rough upper bound of the transient activations of one prefill forward (for grid filtering)."""
    qkv = (spec.num_attention_heads + 2 * spec.num_kv_heads) * spec.head_dim
    per_tok = 6 * spec.hidden_size + 2 * qkv
    if spec.is_moe:
        k, im = spec.experts_per_token, spec.moe_intermediate_size
        per_tok += k * (3 * spec.hidden_size + 5 * im) + 3 * spec.num_experts * 2 + 8 * k
    else:
        per_tok += 5 * spec.intermediate_size
    return int(tokens * per_tok * bytes_per + (1 << 30))


__all__ = ["ReferenceDecoder", "capture_decode", "check_supported", "grouped_mm_available",
           "prefill_activation_bytes", "rms_norm", "apply_rope", "route_topk", "sort_by_expert", "unpermute", "INIT_STD"]
