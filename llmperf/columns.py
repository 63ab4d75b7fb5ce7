"""Column lists of every DataFrame llmperf returns, defined once (DESIGN.md rule 8).

Numeric columns carry their unit in the name (``_s``, ``_bytes``, ``_flops``, ``_per_s``,
``_usd``); counts (params, tokens, batch) are plain numbers.
"""

SCENARIO_COLUMNS = ["batch", "prompt_len", "cached_prompt_len", "output_len", "context_len"]

# The JSON contract of `llmperf estimate` (README "JSON contract"); sweep rows use the same keys.
# *_low/*_high: the interval from a measured calibration's held-out residuals (null for ideal).
ESTIMATE_COLUMNS = [
    "model", "hardware", "calibration", "weights", "activations", "kv_cache", "tensor_parallel",
    "pipeline_parallel", "draft_model", "speculative_tokens", "acceptance_rate", "tokens_per_round",
    *SCENARIO_COLUMNS,
    "params_total", "params_active", "weight_bytes", "kv_cache_bytes", "activation_bytes",
    "total_memory_bytes", "usable_memory_bytes", "memory_capacity_bytes", "fits",
    "kv_cache_bytes_per_token", "prefill_flops", "decode_flops",
    "ttft_s", "tpot_s", "mean_tpot_s", "request_latency_s",
    "ttft_s_low", "ttft_s_high", "tpot_s_low", "tpot_s_high",
    "request_latency_s_low", "request_latency_s_high",
    "throughput_tokens_per_s", "decode_tokens_per_s", "prefill_tokens_per_s",
    "prefill_bound", "decode_bound",
    "price_usd_per_hour", "cost_usd_per_1m_input_tokens", "cost_usd_per_1m_output_tokens",
]

OP_COLUMNS = [
    "model", "hardware", "calibration", "group", "op", "kind", "count", "compute_dtype",
    "weight_dtype", "m", "n", "k", "flops", "vector_flops", "weight_bytes", "act_in_bytes",
    "act_out_bytes", "kv_read_bytes", "kv_write_bytes", "comm_bytes", "memory_bytes",
    "arithmetic_intensity_flop_per_byte", "compute_time_s", "memory_time_s", "comm_time_s",
    "overhead_s", "time_s", "total_time_s", "time_share", "bound",
]
