"""Wall time of CLI invocations as a user runs them: a fresh process per call, median of N.

Target (issue "CLI reports ... the first minute"): ``llmperf --help`` and
``llmperf estimate -m llama-3.1-8b -g h100-sxm`` each finish in <= 0.5 s. Baselines show what
the interpreter and ``import llmperf`` cost on their own. Commands run through the console
script installed beside this interpreter (``pip install -e .``), or ``python -m llmperf.cli``
if there is none; a version-manager shim on PATH (pyenv) adds its own startup on top.

    python benchmarks/cli_startup.py [--repeat 5] [--csv benchmarks/results/cli_startup.csv]

Prints a table and writes one CSV row per command (times in seconds).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.5
ROOT = Path(__file__).resolve().parent.parent


def cli_prefix() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m llmperf.cli``."""
    script = Path(sys.executable).with_name("llmperf")
    return [str(script)] if script.exists() else [sys.executable, "-m", "llmperf.cli"]


def cases() -> list[tuple[str, list[str], bool]]:
    """(label, argv, has a target)."""
    cli = cli_prefix()
    return [
        ("python -c pass", [sys.executable, "-c", "pass"], False),
        ("python -c 'import llmperf'", [sys.executable, "-c", "import llmperf"], False),
        ("python -c 'import llmperf.cli'", [sys.executable, "-c", "import llmperf.cli"], False),
        ("llmperf --help", cli + ["--help"], True),
        ("llmperf estimate -m llama-3.1-8b -g h100-sxm",
         cli + ["estimate", "-m", "llama-3.1-8b", "-g", "h100-sxm"], True),
        ("llmperf estimate ... --format json",
         cli + ["estimate", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--format", "json"], False),
    ]


def time_once(argv: list[str]) -> float:
    """Seconds from spawn to exit of one process (output discarded, must succeed)."""
    env = {**os.environ, "COLUMNS": "120"}
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True, env=env,
                   cwd=ROOT)
    return time.perf_counter() - start


def measure(repeat: int) -> list[dict]:
    rows = []
    for label, argv, targeted in cases():
        time_once(argv)  # warm the page cache and .pyc files; not counted
        times = [time_once(argv) for _ in range(repeat)]
        median = statistics.median(times)
        rows.append({
            "command": label, "median_s": round(median, 4), "min_s": round(min(times), 4),
            "max_s": round(max(times), 4), "repeat": repeat,
            "target_s": TARGET_S if targeted else "",
            "meets_target": (median <= TARGET_S) if targeted else "",
            "load_avg_1min": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
            "python": platform.python_version(), "machine": platform.machine(),
        })
    return rows


def print_table(rows: list[dict]) -> None:
    width = max(len(r["command"]) for r in rows)
    print(f"{'command':<{width}}  {'median':>8}  {'min':>8}  {'max':>8}  target")
    for r in rows:
        verdict = "" if r["target_s"] == "" else ("ok" if r["meets_target"] else "SLOW")
        print(f"{r['command']:<{width}}  {r['median_s']:>7.3f}s  {r['min_s']:>7.3f}s  "
              f"{r['max_s']:>7.3f}s  {verdict}")
    print(f"(median of {rows[0]['repeat']}, {rows[0]['cpus']} CPUs, 1-min load average "
          f"{rows[-1]['load_avg_1min']}; target <= {TARGET_S} s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--csv", type=Path, default=ROOT / "benchmarks/results/cli_startup.csv")
    args = parser.parse_args()
    rows = measure(args.repeat)
    print_table(rows)
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
