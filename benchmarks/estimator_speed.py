"""How fast llmperf evaluates scenario grids (target: >= 1,000,000 decode scenarios in <= 2 s).

Usage: python benchmarks/estimator_speed.py [--out benchmarks/results/estimator_speed.csv]

Times (median of 3, wall clock on this machine) for one model + GPU:
  decode_tpot   1000 batches x 1000 contexts decode steps: build ops + cost model + step totals
  estimate      the full report (TTFT, TPOT, request latency, memory) over 100 x 100 scenarios
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

import llmperf
from llmperf.cost import cost_ops


def _median_time(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/estimator_speed.csv")
    args = parser.parse_args()
    rows = []
    for model_name, hw_name in [("llama-3.1-8b", "h100-sxm5-80gb"), ("mixtral-8x7b", "h200-sxm-141gb"),
                                ("deepseek-v3", "b200")]:
        model, hw = llmperf.load_model(model_name), llmperf.load_hardware(hw_name)
        batch, ctx = np.meshgrid(np.arange(1, 1001, dtype=float), np.linspace(128, 131072, 1000).round())

        def decode():
            ops = llmperf.build_step_ops(model, llmperf.Workload(), llmperf.Step.decode(batch, ctx))
            cost = cost_ops(ops, hw)
            return cost.step_time_s, cost.step_bound

        t = _median_time(decode)
        rows.append({"model": model_name, "hardware": hw_name, "what": "decode_tpot",
                     "scenarios": batch.size, "wall_s": t, "scenarios_per_s": batch.size / t})
        b2, p2 = np.meshgrid(np.arange(1, 101, dtype=float), np.arange(1, 101, dtype=float) * 64)
        t = _median_time(lambda: llmperf.estimate_frame(model, hw, batch=b2, prompt_len=p2,
                                                        output_len=256, allow_long_context=True))
        rows.append({"model": model_name, "hardware": hw_name, "what": "estimate_report",
                     "scenarios": b2.size, "wall_s": t, "scenarios_per_s": b2.size / t})
    frame = pd.DataFrame(rows)
    frame["machine"] = f"{platform.machine()} {platform.processor() or ''} cpus={__import__('os').cpu_count()}".strip()
    frame["date"] = time.strftime("%Y-%m-%d")
    print(frame.to_string(index=False, formatters={"wall_s": "{:.3f}".format,
                                                   "scenarios_per_s": "{:,.0f}".format}))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
