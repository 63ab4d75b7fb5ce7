"""Speculative decoding: a cheap proposer drafts ``k`` tokens, the target model verifies them in
one step of ``k + 1`` new tokens per sequence, and keeps the longest accepted prefix plus one
token of its own (Leviathan et al., "Fast Inference from Transformers via Speculative
Decoding", arXiv:2211.17192 §3; Chen et al. arXiv:2302.01318).

With each draft token accepted independently with probability ``a`` (the paper's alpha), a
round yields in expectation (Leviathan et al. eq. 1)

    E[tokens per round] = (1 - a^(k+1)) / (1 - a)        (k + 1 when a = 1)

and takes ``k`` decode steps of the draft model (none for draft-free proposers such as n-gram /
prompt lookup) plus the target's verification step (q_len = k + 1 at the round's context). The
reported TPOT is the round's time / E[tokens per round] (mean time per generated token); TTFT adds
the draft's prefill of the prompt (its uncached part); memory adds the draft's weights and KV
cache, and ``k`` speculative slots to each sequence's cache. The draft runs on the same devices
with the same workload (dtypes, tensor parallelism), as vLLM runs a draft model by default.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from llmperf.errors import LlmperfError
from llmperf.specs.model import ModelSpec

MAX_SPECULATIVE_TOKENS = 15  # engines draft a few tokens per round (vLLM configs use 1-8); 15 is a guard


@dataclasses.dataclass(frozen=True)
class Speculation:
    """``tokens`` drafted per round, each accepted with probability ``acceptance_rate``;
    ``draft`` the draft model (a ModelSpec, a bundled name or a path; None or ``"ngram"``: a
    draft-free proposer such as n-gram / prompt lookup, whose drafting time is not counted)."""

    tokens: int
    acceptance_rate: float
    draft: ModelSpec | None = None

    def __post_init__(self):
        if isinstance(self.draft, str) and self.draft != "ngram":  # a bundled name or a path
            from llmperf.catalog import load_model

            object.__setattr__(self, "draft", load_model(self.draft))
        elif self.draft == "ngram":
            object.__setattr__(self, "draft", None)
        if self.draft is not None and not isinstance(self.draft, ModelSpec):
            raise TypeError(f"Speculation: draft must be a ModelSpec, a bundled name, a path or "
                            f"'ngram', got {type(self.draft).__name__}")
        try:
            object.__setattr__(self, "acceptance_rate", float(self.acceptance_rate))
            whole = int(self.tokens) == float(self.tokens)
        except (TypeError, ValueError):
            raise LlmperfError(f"speculation needs a number of tokens and an acceptance rate, got "
                               f"{self.tokens!r} and {self.acceptance_rate!r}") from None
        if not whole or not 1 <= self.tokens <= MAX_SPECULATIVE_TOKENS:
            raise LlmperfError(f"--spec-tokens must be a whole number from 1 to "
                               f"{MAX_SPECULATIVE_TOKENS}, got {self.tokens}")
        if not (np.isfinite(self.acceptance_rate) and 0.0 <= self.acceptance_rate <= 1.0):
            raise LlmperfError(f"--acceptance must be a probability from 0 to 1, got "
                               f"{self.acceptance_rate}")

    @property
    def tokens_per_round(self) -> float:
        """Expected tokens one verification round emits (Leviathan et al. eq. 1)."""
        a, k = float(self.acceptance_rate), int(self.tokens)
        if a == 1.0:
            return k + 1.0
        return (1.0 - a ** (k + 1)) / (1.0 - a)

    @property
    def draft_name(self) -> str:
        return "ngram" if self.draft is None else self.draft.name


def round_time_s(model: ModelSpec, hardware, workload, speculation: Speculation, batch, context_len,
                 calibration, overlap: str = "max") -> tuple:
    """(round time, verification StepCost, draft time) of one speculative round for ``batch``
    sequences holding ``context_len`` tokens: the draft's k decode steps at contexts c .. c+k-1
    and the target's verification of k + 1 tokens at context c."""
    from llmperf.estimators.latency import step_cost
    from llmperf.specs.workload import Step

    k = int(speculation.tokens)
    verify = step_cost(model, hardware, workload, Step.decode(batch, context_len, q_len=k + 1),
                       calibration, overlap, decode=True)
    draft_s = np.zeros(verify.step_time_s.shape)
    if speculation.draft is not None:
        ctx = np.asarray(context_len, dtype=float)
        for j in range(k):
            draft_s = draft_s + step_cost(speculation.draft, hardware, workload,
                                          Step.decode(batch, ctx + j), calibration,
                                          overlap).step_time_s
    return verify.step_time_s + draft_s, verify, draft_s


def check_speculation(workload, speculation: Speculation | None) -> None:
    """Speculation is modelled on one pipeline stage only."""
    if speculation is not None and int(workload.pipeline_parallel) > 1:
        raise LlmperfError("speculative decoding is modelled without pipeline parallelism; "
                           "drop --pp or the --spec-tokens options")


def speculative_metrics(model: ModelSpec, hardware, workload, speculation: Speculation, batch,
                        prompt_len, output_len, context_len, calibration, overlap: str,
                        request: dict, cached_prompt_len=0) -> dict:
    """TTFT, TPOT (per generated token), request latency and throughput under speculation,
    from the plain ``request`` metrics (:func:`llmperf.estimators.latency.request_metrics`).

    The request's O - 1 decode tokens take (O - 1) / E[tokens per round] rounds, costed at the
    middle context of the request (as the plain closed form takes its efficiencies there).
    ``decode_flops`` are one round's on one device (k draft steps + the verification);
    ``prefill_flops`` include the draft's prefill.
    """
    from llmperf.estimators.latency import prefill_step, step_cost
    from llmperf.specs.workload import Step

    b, p, o = (np.asarray(x, dtype=float) for x in (batch, prompt_len, output_len))
    per_round = speculation.tokens_per_round
    round_s, verify, _ = round_time_s(model, hardware, workload, speculation, b, context_len,
                                      calibration, overlap)
    n = np.maximum(o - 1, 0.0)
    mid = p + np.floor(np.maximum(n - 1, 0.0) / 2)
    decode_total = n / per_round * round_time_s(model, hardware, workload, speculation, b, mid,
                                                calibration, overlap)[0]
    ttft, prefill_flops = request["ttft_s"], request["prefill_flops"]
    flops = verify.device_total("flops")
    if speculation.draft is not None:
        draft = speculation.draft
        draft_prefill = step_cost(draft, hardware, workload, prefill_step(b, p, cached_prompt_len),
                                  calibration, overlap, decode=False)
        ttft = ttft + draft_prefill.step_time_s
        prefill_flops = prefill_flops + draft_prefill.device_total("flops")
        flops = flops + sum(step_cost(draft, hardware, workload, Step.decode(b, context_len + j),
                                      calibration, overlap).device_total("flops")
                            for j in range(int(speculation.tokens)))
    latency = ttft + decode_total
    return {
        "ttft_s": ttft, "tpot_s": round_s / per_round, "decode_time_s": decode_total,
        "mean_tpot_s": np.where(o > 1, decode_total / np.maximum(n, 1), 0.0),
        "request_latency_s": latency, "throughput_tokens_per_s": b * o / latency,
        "prefill_tokens_per_s": b * p / ttft, "decode_flops": flops, "prefill_flops": prefill_flops,
        "decode_bound": verify.step_bound, "verify_cost": verify,
    }


def speculative_memory(memory: dict, model_draft: ModelSpec | None, workload, batch,
                       kv_tokens) -> dict:
    """``memory`` (:func:`llmperf.estimators.memory.memory_breakdown`, sized for ``kv_tokens``
    already including the k speculative slots) plus the draft model's weights and KV cache."""
    if model_draft is None:
        return memory
    from llmperf.estimators.memory import kv_bytes, weight_bytes

    out = dict(memory)
    w = weight_bytes(model_draft, workload)
    kv = kv_bytes(model_draft, workload, batch, kv_tokens)
    out["weight_bytes"] = memory["weight_bytes"] + w
    out["kv_cache_bytes"] = memory["kv_cache_bytes"] + kv
    out["total_memory_bytes"] = memory["total_memory_bytes"] + w + kv
    out["fits"] = out["total_memory_bytes"] <= memory["usable_memory_bytes"]
    return out
