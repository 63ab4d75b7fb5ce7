"""Structure of the compiled decode loop, checked on any machine: the kernel is compiled for sm_90a
to TTGIR (Triton's own passes, no GPU, no ptxas) in a subprocess without TRITON_INTERPRET, and the
shared-memory ring of the K/V tiles is read back (tests/kernels/ttgir_probe.py).

Why (kernels/NOTES.md, decode, session 10): Triton's software pipeliner gives a paged tile's
block-table gather its own stage ahead of the K/V loads it addresses, so at num_stages 3-4 a paged
K/V tile is single-buffered -- the loop waits for every load (async_wait 0) before it computes, and
nothing streams during the compute. The paged fp8 candidates the tuner tries first must keep a
second tile in flight."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ad = pytest.importorskip("llmperf_kernels.attention_decode")
triton = pytest.importorskip("triton")
pytest.importorskip("triton.backends.nvidia")

PROBE = Path(__file__).with_name("ttgir_probe.py")


def _rings(cfgs):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    run = subprocess.run([sys.executable, str(PROBE), json.dumps(cfgs)], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    if "skip" in out:
        pytest.skip(out["skip"])
    return out["rings"]


def test_paged_deep_candidates_double_buffer_kv():
    deep = [(c, True) for c in ad._PAGED_DEEP] + [(ad.DecodeConfig(64, 4, 5), False)]  # + a bf16 tile
    cfgs = [[True, fp8, c.block_n, c.num_warps, c.num_stages, c.swap, c.cvt] for c, fp8 in deep]
    # controls: the session-9 paged fp8 pick (single-buffered) and the same tile on contiguous KV
    cfgs += [[True, True, 128, 4, 3, False, 1], [False, True, 128, 4, 3, False, 1]]
    rings = _rings(cfgs)
    for (c, fp8), r in zip(deep, rings):
        assert r["ring"] >= 2 and r["wait"] >= 1, (c, fp8, r)
    if triton.__version__.startswith(("3.6.", "3.9.")):  # the cause, seen in these versions' pipeliner
        assert rings[-2]["ring"] == 1 and rings[-2]["wait"] == 0, rings[-2]
    assert rings[-1]["ring"] >= 2, rings[-1]
    # the deep candidates lead the paged fp8 list
    assert ad._CANDS_FP8_PAGED[:len(ad._PAGED_DEEP)] == ad._PAGED_DEEP
