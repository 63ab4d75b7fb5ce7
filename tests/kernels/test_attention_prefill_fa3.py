"""The Gluon FA3-style prefill kernel (kernels/attention_prefill_fa3.py).

CPU: the kernel compiles for sm_90a with the installed Triton, and the compiled code has the schedule
the file describes (warp-specialized: 3 warpgroups with re-balanced registers; TMA copies; S waited for
with the PV wgmma still in flight; shared memory within Hopper's 227 KiB); candidate plumbing and
input checks. GPU (@gpu, Hopper only): every config against the fp32 reference -- causal / full,
chunked (Sq < Skv), ragged lengths, GQA 1 / 4 / 8, D 64 / 128, bf16 and fp16, output poisoned first.
The Triton interpreter cannot run Gluon, so there is no CPU numerics test of this kernel.
"""

import json
import os
import subprocess
import sys

import pytest
import torch

import llmperf_kernels.attention_prefill as ap  # noqa: F401 - the module (the package exports the function)
from llmperf_kernels import attention_prefill, attention_prefill_ref
from llmperf_kernels.attention_prefill_fa3 import FA3_CONFIGS, FA3_DEFAULT, fa3_supported

from kernel_testutil import assert_close, poisoned

_ap = sys.modules["llmperf_kernels.attention_prefill"]
HOPPER = torch.cuda.is_available() and torch.cuda.get_device_capability()[0] == 9
hopper = pytest.mark.skipif(not HOPPER, reason="needs a Hopper GPU (sm_90)")
ALL = [(D, c) for D, cs in FA3_CONFIGS.items() for c in cs]


@pytest.fixture(scope="module")
def probed():
    # every entry causal (the masked loop), the default and persistent ones also without a mask (~6 s a compile)
    cfgs = [[D, c[1], c[3], causal, "pp" in c[5:], "u2" in c[5:], "ps" in c[5:]] for D, c in ALL
            for causal in ((True, False) if c in FA3_DEFAULT[D] or "ps" in c else (True,))]
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    n_proc = max(1, min(len(cfgs), os.cpu_count() or 1))  # one probe process per core, configs dealt round-robin
    procs = [subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "fa3_probe.py"),
                               json.dumps(cfgs[i::n_proc])], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for i in range(n_proc)]
    done = [(p, *p.communicate(timeout=900)) for p in procs]  # every process finished before any verdict
    configs = []
    for p, out, err in done:
        assert p.returncode == 0, err[-2000:]
        res = json.loads(out.strip().splitlines()[-1])
        if "skip" in res:
            pytest.skip(res["skip"])
        configs += res["configs"]
    assert len(configs) == len(cfgs)
    return configs


def test_fa3_compiles_with_the_fa3_schedule(probed):
    for p in probed:
        assert "error" not in p, p
        assert p["threads"] == 384, p              # producer + two consumer warpgroups
        # registers: the three warpgroups' counts must fit the pool the CTA was launched with (maxnreg x
        # threads), or a setmaxnreg.inc waits forever -- a hang, not an error. Triton 3.6 gives the default
        # partition 256 whatever the workers ask for, so they may ask for at most 3 x 168 - 256 in all.
        consumer, producer = p["worker_regs"]
        assert consumer >= 200 and producer <= 40, p
        assert (p["default_regs"] + consumer + producer) * 128 <= p["maxnreg"] * p["threads"], p
        assert p["tma_loads"] >= 4, p              # Q (2 boxes), K, V through TMA
        assert 1 in p["wgmma_wait"], p             # S_j waited for with O += P V still in flight
        assert not p["local_memory"], p
        assert p["shared_bytes"] <= 232448, p      # Hopper's 227 KiB per block


def test_fa3_candidates_default_all_or_none():
    assert _ap.fa3_candidates(128, "") == FA3_DEFAULT[128] and _ap.fa3_candidates(128, "1") == FA3_CONFIGS[128]
    assert _ap.fa3_candidates(128, "0") == [] and _ap.fa3_candidates(256, "1") == [] and _ap.fa3_candidates(256, "") == []
    assert all(c in FA3_CONFIGS[D] for D, cs in FA3_DEFAULT.items() for c in cs)


def test_fa3_rejects_a_config_it_has_no_layout_for():
    """The consumers' layouts are written for 4 warps and 64 rows each: other tiles get one clear line."""
    from llmperf_kernels.attention_prefill_fa3 import attention_prefill_fa3
    q = torch.randn(1, 2, 16, 64, dtype=torch.float16)
    for bad in [(256, 128, 4, 2, "fa3"), (128, 128, 8, 2, "fa3"), (128, 128, 4, 2, "fa3", "xx"),
                (128, 128, 4, 2, "fa3", "ps", "pp")]:
        with pytest.raises(ValueError, match="Gluon FA3"):
            attention_prefill_fa3(q, q, q, torch.empty_like(q), True, 0.125, bad)


def test_fa3_forced_without_hopper_is_a_clear_error():
    q = torch.randn(1, 2, 16, 64, dtype=torch.float16)
    assert not fa3_supported(q, q, q, None)
    if not HOPPER:
        with pytest.raises(ValueError, match="Gluon FA3"):
            attention_prefill(q, q, q, True, config=(128, 128, 4, 2, "fa3"))


# ---------------------------------------------------------------- GPU (Hopper), realistic shapes
CASES = [  # B, Hq, Hkv, Sq, Skv, causal
    (2, 8, 2, 1000, 1000, True), (2, 8, 2, 1000, 1000, False),     # ragged, GQA 4
    (1, 8, 8, 2048, 2048, True), (1, 8, 1, 512, 512, False),       # GQA 1 / MQA, tile multiples
    (1, 32, 4, 300, 1324, True), (1, 16, 2, 77, 777, False),       # chunked prefill (Sq < Skv), GQA 8
    (3, 4, 4, 64, 64, True), (1, 8, 8, 1, 200, True),              # one partial tile; one query
    # many row tiles per SM (the persistent entries walk several, the K / V ring running on across them)
    (2, 32, 8, 1500, 1500, True), (2, 32, 4, 900, 2500, True), (1, 64, 8, 700, 2100, False),
]


@pytest.mark.gpu
@hopper
@pytest.mark.parametrize("D,cfg", ALL, ids=[f"D{D}-" + "-".join(map(str, c)) for D, c in ALL])
@pytest.mark.parametrize("case", CASES, ids=["x".join(map(str, c)) for c in CASES])
def test_fa3_gpu(D, cfg, case):
    B, Hq, Hkv, Sq, Skv, causal = case
    q = torch.randn(B, Hq, Sq, D, dtype=torch.bfloat16, device="cuda")
    k = torch.randn(B, Hkv, Skv, D, dtype=torch.bfloat16, device="cuda")
    v = torch.randn(B, Hkv, Skv, D, dtype=torch.bfloat16, device="cuda")
    o = attention_prefill(q, k, v, causal, out=poisoned(q.shape, torch.bfloat16, "cuda"), config=cfg)
    assert_close(o, attention_prefill_ref(q, k, v, causal), torch.bfloat16)


@pytest.mark.gpu
@hopper
@pytest.mark.parametrize("causal", [True, False])
def test_fa3_gpu_fp16_long(causal):
    q = torch.randn(1, 32, 4096 - 5, 128, dtype=torch.float16, device="cuda")
    k = torch.randn(1, 8, 4096 - 5, 128, dtype=torch.float16, device="cuda")
    v = torch.randn(1, 8, 4096 - 5, 128, dtype=torch.float16, device="cuda")
    o = attention_prefill(q, k, v, causal, out=poisoned(q.shape, torch.float16, "cuda"), config=FA3_CONFIGS[128][0])
    assert_close(o, attention_prefill_ref(q, k, v, causal), torch.float16)
