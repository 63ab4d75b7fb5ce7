"""The Hugging Face side of ``llmperf validate`` (kernels/hf_reference.py) on CPU in fp32.

Decoding one token on top of a DynamicCache must give the logits of a full prefill of the same
sequence; repeating the step (the timing loop does) must give them again, which checks that the
untimed crop restores the cache; a random-filled cache has the context length asked for.
"""

import pytest
import torch

transformers = pytest.importorskip("transformers")

from llmperf_kernels.hf_reference import HFDecoder, hf_config_dict, tiny_llama_config  # noqa: E402


def test_decode_after_prefill_equals_full_prefill_and_repeats():
    model = HFDecoder(tiny_llama_config(2), "cpu", torch.float32, seed=1)
    B, T = 2, 9
    tokens = torch.randint(0, model.V, (B, T))
    full = model.prefill(tokens)
    assert full.shape == (B, model.V) and torch.isfinite(full).all()
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    with torch.inference_mode():
        model.model(input_ids=tokens[:, :T - 1], past_key_values=cache, use_cache=True)
    first = model.decode(tokens[:, T - 1], cache, T - 1).clone()
    assert cache.get_seq_length() == T  # the step appended one token
    again = model.decode(tokens[:, T - 1], cache, T - 1)
    torch.testing.assert_close(first, full, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(again, first, rtol=0, atol=0)


def test_random_cache_has_the_context_and_sizes():
    model = HFDecoder(tiny_llama_config(3), "cpu", torch.float32)
    cache = model.new_cache(2, 17, fill="random")
    assert cache.get_seq_length() == 16 and len(cache.layers) == 3
    assert float(cache.layers[0].keys.abs().sum()) > 0  # random, not zeros
    # 2 copies (old + new) of K and V: 3 layers x 2 x B2 x Hkv2 x S17 x D32 x 4 bytes
    assert model.kv_cache_bytes(2, 17) == 2 * (2 * 3 * 2 * 2 * 17 * 32 * 4)
    params = sum(p.numel() for p in model.model.parameters())
    assert model.weight_bytes() == 4 * params


def test_bundled_config_builds_the_architecture():
    cfg = hf_config_dict("qwen3-8b")
    assert cfg["model_type"] == "qwen3" and "llmperf" not in cfg


def test_measure_e2e_cpu_dry_run_of_the_transformers_model(tmp_path):
    import pandas as pd

    from llmperf_kernels import measure_e2e

    out = tmp_path / "hf_cpu.csv"
    assert measure_e2e.main(["--cpu-dry-run", "--impl", "hf", "--out", str(out)]) == 0
    rows = pd.read_csv(out)
    assert set(rows["method"]) == {"hf_eager"} and set(rows["phase"]) == {"prefill", "decode"}
    assert {"host_s_per_kernel", "host_s_per_step"} <= set(rows.columns)
    assert (rows["time_s"] > 0).all() and (rows["kernels_per_step"] > 0).all()
    assert (tmp_path / "kernels_hf_cpu.txt").exists()


def test_builds_a_model_from_the_repo_root():
    """Run from the checkout (the repo root first on sys.path, as ``python -c`` there puts it), the
    repo's kernels/ must not shadow the PyPI package "kernels" that transformers >= 5 imports when
    it is installed (it was: "cannot import name 'CUDAProperties' from 'kernels'"). Where that
    package is not installed this still builds the model, the same call users make."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = ("import torch; from llmperf_kernels.hf_reference import HFDecoder, tiny_llama_config; "
            "HFDecoder(tiny_llama_config(1), 'cpu', torch.float32); print('built')")
    r = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "built" in r.stdout, r.stderr[-2000:]
