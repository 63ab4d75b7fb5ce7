"""A Hugging Face transformers model of a bundled spec, behind the reference decoder's interface.

``llmperf validate`` measures two implementations of the same spec: our compact reference decoder
(kernels/reference_model.py, CUDA-graph decode) and, where transformers installs, the
transformers model class of the spec's ``model_type`` built from the same config.json fields
(random bf16 weights, ``attn_implementation="sdpa"``), run the way ``generate()`` runs it:

* prefill: one eager forward over the prompt into a fresh ``DynamicCache``, logits of the last
  token only (``logits_to_keep=1``);
* decode: one eager forward of one token per sequence on top of a ``DynamicCache`` holding C
  random tokens. ``DynamicLayer.update`` appends with ``torch.cat``, so every decode step copies
  the whole cache of every layer (read C tokens, write C + 1); the ``hf-transformers`` engine
  profile models that traffic. Before each timed step every layer's K/V are set back to the same
  contiguous C-token tensors (an attribute assignment, no kernel: ``torch.cat`` never writes its
  inputs), so every repetition times the same step from the state a real previous step leaves.
  (Cropping with a view instead would hand ``torch.cat`` a strided input and time its slow
  non-vectorized path, which generate() never takes.)

No CUDA graph (``generate()`` runs eagerly by default), no sampling or logits processing (the
forward only).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import torch
import yaml

from llmperf.catalog import model_dir


def _unshadow_pypi_kernels() -> None:
    """Run from a checkout (the working directory or PYTHONPATH holding the repo root), ``import
    kernels`` finds this package's directory instead of the PyPI package "kernels" (Hugging Face
    hub kernels) that transformers >= 5 imports when installed: "cannot import name
    'CUDAProperties' from 'kernels'". Import the installed one first, with the root off sys.path
    for that one import, so transformers finds it in sys.modules. No-op elsewhere."""
    if "kernels" in sys.modules:
        return
    spec = importlib.util.find_spec("kernels")
    here = Path(__file__).resolve().parent
    if spec is None or spec.origin is None or Path(spec.origin).resolve().parent != here:
        return
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here.parent]
    try:
        importlib.import_module("kernels")  # the PyPI package, where installed
    except ImportError:
        pass  # not installed: transformers then finds no viable "kernels" distribution either
    finally:
        sys.path[:] = saved


def hf_config_dict(name: str) -> dict:
    """The bundled YAML as a config.json mapping (Hugging Face field names, ``llmperf:`` dropped)."""
    data = yaml.safe_load((model_dir() / f"{name}.yaml").read_text())
    data.pop("llmperf", None)
    return data


def tiny_llama_config(layers: int):
    """A tiny Llama config (hidden 256, 8/2 heads of 32, vocab 512) for host-rate measurements."""
    _unshadow_pypi_kernels()
    from transformers import LlamaConfig

    return LlamaConfig(hidden_size=256, intermediate_size=512, num_hidden_layers=layers,
                       num_attention_heads=8, num_key_value_heads=2, head_dim=32, vocab_size=512,
                       max_position_embeddings=4096)


class HFDecoder:
    """transformers ``AutoModelForCausalLM`` from a config, with ReferenceDecoder's methods.

    ``prefill(tokens [B, T], cache) -> logits [B, V]``; ``decode(tokens [B], cache, pos) -> logits``;
    ``new_cache(batch, max_seq, fill)``; ``before_step(cache, pos)`` (untimed crop to ``pos``).
    """

    graphable = False  # generate() runs eagerly: no CUDA graph capture

    def __init__(self, config, device="cuda", dtype=torch.bfloat16, seed: int = 0):
        _unshadow_pypi_kernels()
        import transformers
        from transformers import AutoModelForCausalLM

        transformers.logging.set_verbosity_error()
        if isinstance(config, dict):
            from transformers import AutoConfig

            rest = dict(config)
            config = AutoConfig.for_model(rest.pop("model_type"), **rest)
        config._attn_implementation = "sdpa"
        torch.manual_seed(seed)
        self.device, self.dtype = torch.device(device), dtype
        with self.device:
            self.model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")
        self.model.eval()
        self.config = self.model.config
        text = self.config.get_text_config()
        self.V, self.L = text.vocab_size, text.num_hidden_layers
        self.Hkv = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
        self.D = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads

    def weight_bytes(self) -> int:
        seen, total = set(), 0
        for p in self.model.parameters():
            if p.data_ptr() not in seen:
                seen.add(p.data_ptr())
                total += p.numel() * p.element_size()
        return total

    def kv_cache_bytes(self, batch: int, seq: int) -> int:
        """Cache bytes, doubled: each DynamicCache append holds the old and the new copy at once."""
        return 2 * (2 * self.L * batch * self.Hkv * seq * self.D * torch.finfo(self.dtype).bits // 8)

    def new_cache(self, batch: int, max_seq: int, fill: str = "random"):
        """A DynamicCache; with ``fill="random"`` it holds ``max_seq - 1`` random tokens per layer
        (the decode point's context), else it is empty (prefill fills it)."""
        from transformers import DynamicCache

        cache = DynamicCache(config=self.config)
        if fill == "random":
            for layer in range(self.L):
                shape = (batch, self.Hkv, max_seq - 1, self.D)
                k = torch.randn(shape, device=self.device, dtype=self.dtype)
                v = torch.randn(shape, device=self.device, dtype=self.dtype)
                cache.update(k, v, layer)
            cache.llmperf_base = [(layer.keys, layer.values) for layer in cache.layers]
        return cache

    @torch.inference_mode()
    def prefill(self, tokens: torch.Tensor, cache=None) -> torch.Tensor:
        """tokens [B, T] -> last-token logits [B, V], into a fresh DynamicCache (as generate())."""
        from transformers import DynamicCache

        out = self.model(input_ids=tokens, past_key_values=DynamicCache(config=self.config),
                         use_cache=True, logits_to_keep=1)
        return out.logits[:, -1]

    def before_step(self, cache, pos: int) -> None:
        """Set every layer back to the same contiguous ``pos``-token K/V (no kernel once the base
        exists), so each timed step is the same. DynamicLayer (transformers 5): keys/values
        [B, Hkv, S, D]."""
        base = getattr(cache, "llmperf_base", None)
        if base is None or base[0][0].shape[-2] != pos:  # a cache filled by a forward: copy once
            base = [(layer.keys[..., :pos, :].contiguous(), layer.values[..., :pos, :].contiguous())
                    for layer in cache.layers]
            cache.llmperf_base = base
        for layer, (k, v) in zip(cache.layers, base):
            layer.keys, layer.values = k, v

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor, cache, pos: int) -> torch.Tensor:
        """tokens [B] as position ``pos`` (``pos`` tokens cached) -> logits [B, V]; appends to cache."""
        self.before_step(cache, pos)
        out = self.model(input_ids=tokens[:, None], past_key_values=cache, use_cache=True,
                         logits_to_keep=1)
        return out.logits[:, -1]
